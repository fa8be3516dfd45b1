/*
 * Casting copies between the 15 castable dtypes, through the public API.
 *
 * Every pair is checked bit for bit against a reference computed here by a
 * different method from the library's: source elements become exact values
 * (sign, 64-bit magnitude, binary exponent); a float target's answer is found
 * by binary search over its ordered bit patterns and an exact comparison with
 * the midpoint to the next pattern; integer targets use integer truncation,
 * saturation and wrapping. No long double anywhere: valgrind runs x87
 * arithmetic at double precision, which would make such a reference inexact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "tensorbridge/tensorbridge.h"

/* ------------------------------------------------------------------------ */
/* The castable dtypes                                                      */
/* ------------------------------------------------------------------------ */

typedef enum kind_class { C_BOOL, C_SINT, C_UINT, C_FLOAT, C_COMPLEX } kind_class;

/* A binary floating-point format: 1 sign bit, exp_bits, man_bits. */
typedef struct fmt {
  int exp_bits, man_bits;
} fmt;

#define FMT_F16 \
  { 5, 10 }
#define FMT_BF16 \
  { 8, 7 }
#define FMT_F32 \
  { 8, 23 }
#define FMT_F64 \
  { 11, 52 }

typedef struct kind {
  const char *name;
  uint8_t code, bits;
  kind_class cls;
  size_t size;
  fmt f; /* C_FLOAT: the format; C_COMPLEX: each part's */
} kind;

static const kind kinds[] = {
    {"bool", TB_DL_BOOL, 8, C_BOOL, 1, {0, 0}},
    {"int8", TB_DL_INT, 8, C_SINT, 1, {0, 0}},
    {"int16", TB_DL_INT, 16, C_SINT, 2, {0, 0}},
    {"int32", TB_DL_INT, 32, C_SINT, 4, {0, 0}},
    {"int64", TB_DL_INT, 64, C_SINT, 8, {0, 0}},
    {"uint8", TB_DL_UINT, 8, C_UINT, 1, {0, 0}},
    {"uint16", TB_DL_UINT, 16, C_UINT, 2, {0, 0}},
    {"uint32", TB_DL_UINT, 32, C_UINT, 4, {0, 0}},
    {"uint64", TB_DL_UINT, 64, C_UINT, 8, {0, 0}},
    {"float16", TB_DL_FLOAT, 16, C_FLOAT, 2, FMT_F16},
    {"bfloat16", TB_DL_BFLOAT, 16, C_FLOAT, 2, FMT_BF16},
    {"float32", TB_DL_FLOAT, 32, C_FLOAT, 4, FMT_F32},
    {"float64", TB_DL_FLOAT, 64, C_FLOAT, 8, FMT_F64},
    {"complex64", TB_DL_COMPLEX, 64, C_COMPLEX, 8, FMT_F32},
    {"complex128", TB_DL_COMPLEX, 128, C_COMPLEX, 16, FMT_F64},
};
#define KIND_COUNT (sizeof kinds / sizeof kinds[0])

static const kind *kind_named(const char *name) {
  for (size_t i = 0; i < KIND_COUNT; i++) {
    if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
  }
  fail_msg("no kind named %s", name);
  return NULL;
}

static DLDataType kind_dtype(const kind *k) { return tb_dtype(k->code, k->bits); }

static int kind_parts(const kind *k) { return k->cls == C_COMPLEX ? 2 : 1; }

/* ------------------------------------------------------------------------ */
/* Exact values and formats                                                 */
/* ------------------------------------------------------------------------ */

typedef enum xclass { X_FINITE, X_INF, X_NAN } xclass;

/* A real number held exactly: (-1)^neg * mag * 2^exp, or +-inf, or NaN. */
typedef struct exact {
  xclass what;
  bool neg;
  uint64_t mag;
  int exp;
} exact;

static int bit_length(uint64_t x) { return x == 0 ? 0 : 64 - __builtin_clzll(x); }

/* Compares am * 2^ae with bm * 2^be: -1, 0 or 1. Equal leading-bit positions
 * leave both magnitudes left-aligned in 64 bits, where they compare exactly. */
static int compare_magnitudes(uint64_t am, int ae, uint64_t bm, int be) {
  if (am == 0 || bm == 0) return (am != 0) - (bm != 0);
  const int a_top = bit_length(am) + ae, b_top = bit_length(bm) + be;
  if (a_top != b_top) return a_top < b_top ? -1 : 1;
  const uint64_t a = am << (64 - bit_length(am)), b = bm << (64 - bit_length(bm));
  return (a > b) - (a < b);
}

static uint64_t fmt_sign_bit(fmt f) { return UINT64_C(1) << (f.exp_bits + f.man_bits); }

static uint64_t fmt_inf(fmt f) { return ((UINT64_C(1) << f.exp_bits) - 1) << f.man_bits; }

/* All the format's bits set (also right for 64-bit formats: the shift wraps). */
static uint64_t fmt_all_bits(fmt f) { return (fmt_sign_bit(f) << 1) - 1; }

/* The exact value of a bit pattern, by IEEE 754's definition. */
static exact fmt_decode(fmt f, uint64_t bits) {
  const uint64_t field = (bits >> f.man_bits) & ((UINT64_C(1) << f.exp_bits) - 1);
  const uint64_t frac = bits & ((UINT64_C(1) << f.man_bits) - 1);
  const int bias = (1 << (f.exp_bits - 1)) - 1;
  exact x = {X_FINITE, (bits & fmt_sign_bit(f)) != 0, 0, 0};
  if (field == (UINT64_C(1) << f.exp_bits) - 1) {
    x.what = frac != 0 ? X_NAN : X_INF;
    return x;
  }
  x.mag = field != 0 ? frac | (UINT64_C(1) << f.man_bits) : frac;
  x.exp = (field != 0 ? (int)field : 1) - bias - f.man_bits;
  return x;
}

/*
 * The magnitude pattern nearest to mag * 2^exp. Patterns of one sign are
 * ordered like their values, so a binary search finds the largest finite one
 * not above the value; the next pattern lies one unit of its last place
 * higher, and the value is compared with the midpoint (2 * m + 1) * 2^(e - 1).
 * Ties go to the even pattern. Past the largest finite value the next pattern
 * is infinity, which is IEEE's overflow rule (the largest finite pattern is
 * odd, so the threshold itself overflows).
 */
static uint64_t fmt_nearest_magnitude(fmt f, uint64_t mag, int exp) {
  uint64_t lo = 0, hi = fmt_inf(f) - 1;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    const exact m = fmt_decode(f, mid);
    if (compare_magnitudes(m.mag, m.exp, mag, exp) <= 0) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const exact below = fmt_decode(f, lo);
  if (compare_magnitudes(below.mag, below.exp, mag, exp) == 0) return lo;
  const int c = compare_magnitudes(mag, exp, 2 * below.mag + 1, below.exp - 1);
  return c < 0 ? lo : c > 0 ? lo + 1 : lo + (lo & 1);
}

/* x rounded into f. A NaN comes back as some NaN pattern with x's sign and
 * *nan set: only NaN-ness and sign are compared. */
static uint64_t fmt_round(fmt f, exact x, bool *nan) {
  const uint64_t sign = x.neg ? fmt_sign_bit(f) : 0;
  *nan = x.what == X_NAN;
  if (x.what == X_NAN) return sign | fmt_inf(f) | 1;
  if (x.what == X_INF) return sign | fmt_inf(f);
  return sign | fmt_nearest_magnitude(f, x.mag, x.exp);
}

static uint64_t fmt_from_double(fmt f, double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  bool nan;
  return fmt_round(f, fmt_decode((fmt)FMT_F64, bits), &nan);
}

/* x truncated toward zero, saturated into a `bits`-wide integer (NaN: 0);
 * returns the result's bit pattern. */
static uint64_t int_from_exact(exact x, int bits, bool is_signed) {
  const uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
  const uint64_t max = is_signed ? mask >> 1 : mask;
  const uint64_t min_mag = is_signed ? max + 1 : 0; /* magnitude of the minimum */
  if (x.what == X_NAN) return 0;
  bool huge = x.what == X_INF;
  uint64_t t = 0;
  if (!huge && x.mag != 0) {
    if (x.exp >= 0) {
      huge = bit_length(x.mag) + x.exp > 64;
      if (!huge) t = x.mag << x.exp;
    } else {
      t = x.exp <= -64 ? 0 : x.mag >> -x.exp;
    }
  }
  if (x.neg) return (huge || t > min_mag ? 0 - min_mag : 0 - t) & mask;
  return huge || t > max ? max : t;
}

/* ------------------------------------------------------------------------ */
/* Elements: raw bits, source values, expected results                      */
/* ------------------------------------------------------------------------ */

static uint64_t load_bits(const uint8_t *p, size_t size) {
  uint8_t b8;
  uint16_t b16;
  uint32_t b32;
  uint64_t b64;
  switch (size) {
    case 1: memcpy(&b8, p, 1); return b8;
    case 2: memcpy(&b16, p, 2); return b16;
    case 4: memcpy(&b32, p, 4); return b32;
    default: memcpy(&b64, p, 8); return b64;
  }
}

static void store_bits(uint8_t *p, size_t size, uint64_t bits) {
  const uint8_t b8 = (uint8_t)bits;
  const uint16_t b16 = (uint16_t)bits;
  const uint32_t b32 = (uint32_t)bits;
  switch (size) {
    case 1: memcpy(p, &b8, 1); break;
    case 2: memcpy(p, &b16, 2); break;
    case 4: memcpy(p, &b32, 4); break;
    default: memcpy(p, &bits, 8); break;
  }
}

/* One source element as the reference sees it. */
typedef struct value {
  bool is_int;    /* bool or integer */
  uint64_t ibits; /* is_int: the value modulo 2^64 */
  exact re, im;   /* im is +0 for real kinds */
} value;

static value value_of(const kind *k, const uint8_t *p) {
  value v = {false, 0, {X_FINITE, false, 0, 0}, {X_FINITE, false, 0, 0}};
  const size_t half = k->size / 2;
  switch (k->cls) {
    case C_BOOL:
      v.is_int = true;
      v.ibits = p[0] != 0;
      v.re.mag = v.ibits;
      break;
    case C_SINT: {
      const uint64_t top = UINT64_C(1) << (k->bits - 1);
      v.is_int = true;
      v.ibits = (load_bits(p, k->size) ^ top) - top; /* sign-extends */
      v.re.neg = (v.ibits >> 63) != 0;
      v.re.mag = v.re.neg ? 0 - v.ibits : v.ibits;
      break;
    }
    case C_UINT:
      v.is_int = true;
      v.ibits = load_bits(p, k->size);
      v.re.mag = v.ibits;
      break;
    case C_FLOAT: v.re = fmt_decode(k->f, load_bits(p, k->size)); break;
    case C_COMPLEX:
      v.re = fmt_decode(k->f, load_bits(p, half));
      v.im = fmt_decode(k->f, load_bits(p + half, half));
      break;
  }
  return v;
}

typedef struct expected {
  uint64_t part[2]; /* bit pattern of each part (one for real kinds) */
  bool nan[2];      /* the part is a NaN: compare NaN-ness and sign only */
} expected;

static bool exact_nonzero(exact x) { return x.what != X_FINITE || x.mag != 0; }

static expected expect(const kind *to, const value *v) {
  expected e = {{0, 0}, {false, false}};
  const uint64_t mask = to->bits >= 64 ? UINT64_MAX : (UINT64_C(1) << to->bits) - 1;
  switch (to->cls) {
    case C_BOOL:
      e.part[0] = v->is_int ? v->ibits != 0 : exact_nonzero(v->re) || exact_nonzero(v->im);
      break;
    case C_SINT:
    case C_UINT:
      e.part[0] = v->is_int ? v->ibits & mask : int_from_exact(v->re, to->bits, to->cls == C_SINT);
      break;
    case C_FLOAT: e.part[0] = fmt_round(to->f, v->re, &e.nan[0]); break;
    case C_COMPLEX:
      e.part[0] = fmt_round(to->f, v->re, &e.nan[0]);
      e.part[1] = fmt_round(to->f, v->im, &e.nan[1]);
      break;
  }
  return e;
}

static bool element_matches(const kind *to, const uint8_t *got, const expected *e) {
  const size_t psize = to->size / (size_t)kind_parts(to);
  for (int k = 0; k < kind_parts(to); k++) {
    const uint64_t g = load_bits(got + (size_t)k * psize, psize);
    if (e->nan[k]) {
      const exact x = fmt_decode(to->f, g);
      const bool want_neg = (e->part[k] & fmt_sign_bit(to->f)) != 0;
      if (x.what != X_NAN || x.neg != want_neg) return false;
    } else if (g != e->part[k]) {
      return false;
    }
  }
  return true;
}

/* "0x3c00" or "0x3f800000/0x80000000" (real/imaginary bits). */
static void format_element(const kind *k, const uint8_t *p, char *buf, size_t cap) {
  const size_t psize = k->size / (size_t)kind_parts(k);
  const int digits = (int)(2 * psize);
  if (kind_parts(k) == 1) {
    snprintf(buf, cap, "0x%0*llx", digits, (unsigned long long)load_bits(p, psize));
  } else {
    snprintf(buf, cap, "0x%0*llx/0x%0*llx", digits, (unsigned long long)load_bits(p, psize), digits,
             (unsigned long long)load_bits(p + psize, psize));
  }
}

static void format_expected(const kind *k, const expected *e, char *buf, size_t cap) {
  uint8_t bytes[16];
  const size_t psize = k->size / (size_t)kind_parts(k);
  for (int i = 0; i < kind_parts(k); i++) store_bits(bytes + (size_t)i * psize, psize, e->part[i]);
  format_element(k, bytes, buf, cap);
  if (e->nan[0] || e->nan[1]) strncat(buf, " (a NaN of that sign)", cap - strlen(buf) - 1);
}

/* ------------------------------------------------------------------------ */
/* Deterministic inputs                                                     */
/* ------------------------------------------------------------------------ */

typedef struct rng {
  uint64_t state;
} rng;

/* splitmix64 */
static uint64_t rng_next(rng *r) {
  uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

static int rng_step(rng *r) { return (int)rng_below(r, 3) - 1; } /* -1, 0 or 1 */

#define POW2(k) (UINT64_C(1) << (k))

/* Special integers, taken modulo 2^bits of the kind. Halfway points of
 * float16 (11-bit significands), bfloat16 (8), float32 (24) and float64 (53)
 * sit next to them. */
/* clang-format off */
static const uint64_t int_specials[] = {
    0, 1, UINT64_MAX, 2, UINT64_MAX - 1, 44, 127, 128, 0 - UINT64_C(128), 0 - UINT64_C(129), 255,
    256, 300, 0 - UINT64_C(300), 257, 259, 2049, 2051, 4097, 32767, 32768, 65504, 65519, 65520,
    65535, 65536, POW2(24) + 1, POW2(24) + 3, POW2(31) - 1, POW2(31), POW2(32) - 1, POW2(32),
    POW2(53) + 1, POW2(53) + 3, POW2(60) + POW2(52), POW2(60) + POW2(52) + 1,
    POW2(60) + 3 * POW2(52), 0 - (POW2(60) + POW2(52) + 1), POW2(63) - 1, POW2(63), POW2(63) + 1,
    POW2(63) + POW2(39), POW2(63) + POW2(39) + 1, UINT64_MAX - POW2(10), UINT64_MAX - POW2(39),
};
/* clang-format on */
#define INT_SPECIAL_COUNT (sizeof int_specials / sizeof int_specials[0])
#define INT_BOUND_COUNT 4

/* The i-th input of an integer kind: specials first, then random picks. */
static uint64_t gen_int(const kind *k, rng *r, size_t i) {
  const bool is_signed = k->cls == C_SINT;
  const int n = k->bits;
  const uint64_t mask = n == 64 ? UINT64_MAX : POW2(n) - 1;
  const uint64_t min = is_signed ? POW2(n - 1) : 0;
  const uint64_t max = is_signed ? POW2(n - 1) - 1 : mask;
  const uint64_t negate = is_signed && (rng_next(r) & 1) != 0 ? UINT64_MAX : 0;
  if (i < INT_BOUND_COUNT) {
    const uint64_t bounds[INT_BOUND_COUNT] = {min, max, min + 1, max - 1};
    return bounds[i] & mask;
  }
  if (i < INT_BOUND_COUNT + INT_SPECIAL_COUNT) return int_specials[i - INT_BOUND_COUNT] & mask;
  uint64_t x;
  switch (rng_below(r, 6)) {
    case 0: /* any bits */ x = rng_next(r); break;
    case 1: /* small */ x = rng_below(r, 601) - 300; break;
    case 2: /* beside a power of two */
      x = ((POW2(rng_below(r, (uint64_t)n)) + (uint64_t)rng_step(r) * 3) ^ negate) - negate;
      break;
    case 3: { /* at or beside a halfway point of a float format */
      static const int sig_bits[] = {8, 11, 24, 53};
      const int p = sig_bits[rng_below(r, 4)];
      const int top_max = is_signed ? n - 2 : n - 1;
      if (top_max < p) {
        x = rng_next(r);
        break;
      }
      const int top = p + (int)rng_below(r, (uint64_t)(top_max - p + 1));
      const uint64_t s = POW2(p - 1) | (rng_next(r) & (POW2(p - 1) - 1)); /* p bits */
      x = (((2 * s + 1) << (top - p)) + (uint64_t)rng_step(r)) ^ negate;
      x -= negate;
      break;
    }
    case 4: /* beside the bounds */
      x = ((rng_next(r) & 1) != 0 ? min : max) + (uint64_t)rng_step(r);
      break;
    default: /* random magnitude */ x = rng_next(r) >> rng_below(r, 64); break;
  }
  return x & mask;
}

/* clang-format off */
static const double float_special_values[] = {
    1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.99, -0.99, 127.5, 128.0, -128.5, -129.0, 255.5,
    256.0, 65504.0, 65519.99, 65520.0, -65520.0, 2147483647.5, 2147483648.0, -2147483648.5,
    -2147483649.0, 4294967295.5, 4294967296.0, 3e9, -3e9, 0x1p63, -0x1p63, 0x1.fffffffffffffp62,
    -0x1.0000000000001p63, 0x1p64, 0x1.fffffffffffffp63, 9.3e18, -9.3e18, 1.8e19, 1e30, -1e30,
    0x1p-24, 0x1p-25, -0x1p-25, 0x1.0000000000001p-25, 0x1.8p-24, 0x1.0020000001p0, 0x1.002p0,
    0x1.006p0, 0x1.0100002p0, 0x1p-149, 0x1p-150, 0x1.0000000000001p-150, 0x1p-133, 0x1p-134,
    0x1.fffffe0000001p127, 0x1.ffp127, 0x1p300, -0x1p-300, 0x1p-1074,
};
/* clang-format on */
#define FLOAT_SPECIAL_COUNT (sizeof float_special_values / sizeof float_special_values[0])
#define FLOAT_PATTERN_COUNT 14
#define FLOAT_THRESHOLD_COUNT 9

static uint64_t nudge(fmt f, uint64_t magnitude, int step) {
  if (step < 0 && magnitude > 0) return magnitude - 1;
  if (step > 0 && magnitude + 1 < fmt_inf(f)) return magnitude + 1;
  return magnitude;
}

static const fmt narrow_formats[] = {FMT_F16, FMT_BF16, FMT_F32};

/* The i-th input of a float format: special patterns, overflow thresholds of
 * the 16- and 32-bit formats and their neighbours, special values, then
 * random picks. */
static uint64_t gen_float(fmt f, rng *r, size_t i) {
  const uint64_t inf = fmt_inf(f), sign_bit = fmt_sign_bit(f);
  const uint64_t quiet = POW2(f.man_bits - 1);
  if (i < FLOAT_PATTERN_COUNT) {
    const uint64_t patterns[FLOAT_PATTERN_COUNT] = {0,
                                                    sign_bit,
                                                    inf,
                                                    sign_bit | inf,
                                                    inf | quiet,
                                                    sign_bit | inf | quiet,
                                                    inf | 1,
                                                    sign_bit | inf | 1,
                                                    1,
                                                    sign_bit | 1,
                                                    POW2(f.man_bits) - 1,
                                                    POW2(f.man_bits),
                                                    inf - 1,
                                                    sign_bit | (inf - 1)};
    return patterns[i];
  }
  i -= FLOAT_PATTERN_COUNT;
  if (i < FLOAT_THRESHOLD_COUNT) {
    const fmt t = narrow_formats[i / 3];
    const exact max = fmt_decode(t, fmt_inf(t) - 1);
    return nudge(f, fmt_nearest_magnitude(f, 2 * max.mag + 1, max.exp - 1), (int)(i % 3) - 1);
  }
  i -= FLOAT_THRESHOLD_COUNT;
  if (i < FLOAT_SPECIAL_COUNT) return fmt_from_double(f, float_special_values[i]);

  const uint64_t sign = (rng_next(r) & 1) != 0 ? sign_bit : 0;
  switch (rng_below(r, 6)) {
    case 0: /* any bits */ return rng_next(r) & fmt_all_bits(f);
    case 1: /* subnormal */ return sign | (1 + rng_below(r, POW2(f.man_bits) - 1));
    case 2: { /* at or beside a halfway point of a narrower format */
      const fmt t = narrow_formats[rng_below(r, 3)];
      const exact x = fmt_decode(t, rng_below(r, fmt_inf(t)));
      return sign | nudge(f, fmt_nearest_magnitude(f, 2 * x.mag + 1, x.exp - 1), rng_step(r));
    }
    case 3: { /* near an integer type's bound: 2^b + k/2 */
      static const int powers[] = {7, 8, 15, 16, 31, 32, 53, 63, 64};
      const int b = powers[rng_below(r, 9)];
      const uint64_t k = (uint64_t)rng_step(r);
      const uint64_t m = b == 64   ? fmt_nearest_magnitude(f, 1, 64)
                         : b == 63 ? fmt_nearest_magnitude(f, POW2(63) + k, 0)
                                   : fmt_nearest_magnitude(f, POW2(b + 1) + k, -1);
      return sign | nudge(f, m, rng_step(r));
    }
    case 4: /* moderate values in quarters */
      return sign | nudge(f, fmt_nearest_magnitude(f, rng_below(r, 2400), -2), rng_step(r));
    default: /* random magnitude, 64 significant bits */
      return sign | fmt_nearest_magnitude(f, rng_next(r) | 1, (int)rng_below(r, 160) - 130);
  }
}

static void gen_element(const kind *k, rng *r, size_t i, uint8_t *p) {
  static const uint8_t bool_specials[] = {0, 1, 2, 0x80, 0xFF};
  const size_t half = k->size / 2;
  switch (k->cls) {
    case C_BOOL:
      if (i < sizeof bool_specials) {
        p[0] = bool_specials[i];
      } else {
        p[0] = rng_below(r, 4) == 0 ? (uint8_t)rng_next(r) : (uint8_t)(rng_next(r) & 1);
      }
      break;
    case C_SINT:
    case C_UINT: store_bits(p, k->size, gen_int(k, r, i)); break;
    case C_FLOAT: store_bits(p, k->size, gen_float(k->f, r, i)); break;
    case C_COMPLEX:
      store_bits(p, half, gen_float(k->f, r, i));
      store_bits(p + half, half, rng_below(r, 4) == 0 ? 0 : gen_float(k->f, r, i + 3));
      break;
  }
}

/* ------------------------------------------------------------------------ */
/* Running casts                                                            */
/* ------------------------------------------------------------------------ */

#define ELEMENTS 4096
#define MAX_REPORTS 4

/*
 * Casts n generated elements of `from` (read with element stride `stride`)
 * to `to` through tb_tensor_new and returns how many differ from the
 * reference (same-kind pairs must copy bytes exactly), printing the first few.
 */
static size_t check_cast(const kind *from, const kind *to, uint64_t seed, int64_t n,
                         int64_t stride) {
  rng r = {seed};
  const int64_t step = stride < 0 ? -stride : stride;
  const int64_t span = stride == 0 ? 1 : (n - 1) * step + 1; /* elements the source reaches */
  uint8_t *buf = malloc((size_t)span * from->size);
  assert_non_null(buf);
  for (int64_t i = 0; i < span; i++) gen_element(from, &r, (size_t)i, buf + (size_t)i * from->size);
  const uint8_t *first = stride < 0 ? buf + (size_t)(span - 1) * from->size : buf;

  const DLDataType src_dtype = kind_dtype(from), dst_dtype = kind_dtype(to);
  tb_tensor_t *t = NULL;
  tb_status st;
  guarded_call(st, tb_tensor_new(first, src_dtype, 1, &n, stride == 1 ? NULL : &stride,
                                 &dst_dtype, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &t));
  if (st != TB_OK) {
    print_error("%s -> %s: tb_tensor_new returned %s: %s\n", from->name, to->name,
                tb_status_name(st), tb_last_error());
    free(buf);
    return (size_t)n;
  }
  const uint8_t *out = tb_tensor_data(t);
  size_t bad = 0;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *src = first + i * stride * (int64_t)from->size;
    const uint8_t *got = out + (size_t)i * to->size;
    bool ok;
    expected e = {{0, 0}, {false, false}};
    if (from == to) {
      ok = memcmp(src, got, to->size) == 0;
      for (int k = 0; k < kind_parts(to); k++) {
        const size_t psize = to->size / (size_t)kind_parts(to);
        e.part[k] = load_bits(src + (size_t)k * psize, psize);
      }
    } else {
      const value v = value_of(from, src);
      e = expect(to, &v);
      ok = element_matches(to, got, &e);
    }
    if (!ok && bad++ < MAX_REPORTS) {
      char s[64], g[64], w[96];
      format_element(from, src, s, sizeof s);
      format_element(to, got, g, sizeof g);
      format_expected(to, &e, w, sizeof w);
      print_error("%s -> %s, stride %lld, element %lld: source %s gave %s, expected %s\n",
                  from->name, to->name, (long long)stride, (long long)i, s, g, w);
    }
  }
  tb_tensor_release(t);
  free(buf);
  return bad;
}

static DLDataType dtype_named(const char *name) {
  DLDataType d = {0, 0, 0};
  if (tb_dtype_from_name(name, &d) != TB_OK) fail_msg("unknown dtype %s", name);
  return d;
}

/* Casts one element through tb_tensor_new and copies the result to out. */
static void cast_one(const char *from, const void *src, const char *to, uint32_t flags, void *out) {
  const DLDataType src_dtype = dtype_named(from), dst_dtype = dtype_named(to);
  const int64_t n = 1;
  tb_tensor_t *t = NULL;
  tb_status st;
  guarded_call(st, tb_tensor_new(src, src_dtype, 1, &n, NULL, &dst_dtype, TB_ORDER_C, flags, &t));
  if (st != TB_OK) {
    fail_msg("%s -> %s: %s: %s", from, to, tb_status_name(st), tb_last_error());
  }
  memcpy(out, tb_tensor_data(t), tb_dtype_itemsize(dst_dtype));
  tb_tensor_release(t);
}

/* Asserts that one `from_type` value cast to `to` gives `want` bit for bit. */
#define EXPECT_CAST(from, from_type, value, to, to_type, want)                                 \
  do {                                                                                         \
    const from_type src_ = (value);                                                            \
    const to_type want_ = (want);                                                              \
    to_type got_;                                                                              \
    char hex_got_[40], hex_want_[40];                                                          \
    memset(&got_, 0, sizeof got_);                                                             \
    cast_one((from), &src_, (to), TB_CAST_DISCARD_IMAG, &got_);                                \
    if (memcmp(&got_, &want_, sizeof got_) != 0) {                                             \
      fail_msg("%s %s -> %s: got %s, expected %s", (from), #value, (to),                       \
               hex_of(&got_, sizeof got_, hex_got_), hex_of(&want_, sizeof want_, hex_want_)); \
    }                                                                                          \
  } while (0)

/* "0x..." of size bytes, most significant first; buf holds 2 * size + 3. */
static const char *hex_of(const void *p, size_t size, char *buf) {
  const uint8_t *b = p;
  char *o = buf;
  *o++ = '0';
  *o++ = 'x';
  for (size_t i = size; i-- > 0;) o += snprintf(o, 3, "%02x", b[i]); /* little-endian */
  return buf;
}

typedef struct c64 {
  float re, im;
} c64;

typedef struct c128 {
  double re, im;
} c128;

static float f32_of_bits(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static double f64_of_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static uint32_t bits_of_f32(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

static uint64_t bits_of_f64(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

/* ------------------------------------------------------------------------ */
/* The reference itself                                                     */
/* ------------------------------------------------------------------------ */

/* The reference's rounding agrees with the hardware's where the hardware is
 * trusted: double -> float32, int64 -> float64, and int64 -> float32 below
 * 2^53 (above it valgrind emulates that conversion through double, rounding
 * twice; the library does not rely on it). */
static void reference_rounding_agrees_with_hardware_conversions(void **state) {
  (void)state;
  const fmt f32 = FMT_F32, f64 = FMT_F64;
  rng r = {42};
  bool nan;
  for (int i = 0; i < 20000; i++) {
    const double d = f64_of_bits(gen_float(f64, &r, (size_t)i));
    if (d != d) continue;
    const uint64_t want = bits_of_f32((float)d);
    assert_int_equal(fmt_round(f32, fmt_decode(f64, bits_of_f64(d)), &nan), want);

    const int64_t k = (int64_t)gen_int(&kinds[4], &r, (size_t)i);
    const exact x = {X_FINITE, k < 0, k < 0 ? 0 - (uint64_t)k : (uint64_t)k, 0};
    assert_int_equal(fmt_round(f64, x, &nan), bits_of_f64((double)k));
    if (x.mag < POW2(53)) assert_int_equal(fmt_round(f32, x, &nan), bits_of_f32((float)k));
  }
  /* Decoding: a few patterns with known values. */
  const fmt f16 = FMT_F16, bf16 = FMT_BF16;
  assert_int_equal(fmt_from_double(f16, 1.0), 0x3C00);
  assert_int_equal(fmt_from_double(f16, 65504.0), 0x7BFF);
  assert_int_equal(fmt_from_double(f16, 0x1p-24), 0x0001);
  assert_int_equal(fmt_from_double(f16, -2.0), 0xC000);
  assert_int_equal(fmt_from_double(bf16, 1.0), 0x3F80);
  assert_int_equal(fmt_from_double(bf16, 0x1p-133), 0x0001);
}

/* ------------------------------------------------------------------------ */
/* Every pair                                                               */
/* ------------------------------------------------------------------------ */

static void every_pair_matches_the_reference_bit_for_bit(void **state) {
  (void)state;
  size_t bad = 0;
  for (size_t i = 0; i < KIND_COUNT; i++) {
    for (size_t j = 0; j < KIND_COUNT; j++) {
      bad +=
          check_cast(&kinds[i], &kinds[j], UINT64_C(0x7E57CA57) + i * KIND_COUNT + j, ELEMENTS, 1);
    }
  }
  assert_int_equal(bad, 0);
}

static void strided_reversed_and_broadcast_sources_cast_per_element(void **state) {
  (void)state;
  static const char *const pairs[][2] = {
      {"float64", "float16"}, {"int16", "uint8"},     {"complex64", "complex128"},
      {"uint64", "bfloat16"}, {"float32", "float32"}, {"bool", "int32"},
      {"float16", "int64"},   {"complex128", "bool"}, {"int64", "float32"},
  };
  static const int64_t strides[] = {2, -1, -3, 0};
  size_t bad = 0;
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    for (size_t s = 0; s < sizeof strides / sizeof strides[0]; s++) {
      bad += check_cast(kind_named(pairs[i][0]), kind_named(pairs[i][1]), 1000 + i * 10 + s, 257,
                        strides[s]);
    }
  }
  assert_int_equal(bad, 0);
}

/* A cast into every second element of a zeroed tensor leaves the others 0. */
static void strided_destinations_receive_cast_values(void **state) {
  (void)state;
  const kind *from = kind_named("float64"), *to = kind_named("float16");
  enum { N = 301 };
  double src[N];
  rng r = {7};
  for (size_t i = 0; i < N; i++) gen_element(from, &r, i, (uint8_t *)&src[i]);
  const int64_t n = N, n2 = 2 * N;
  const DLDevice host = {kDLCPU, 0};
  tb_tensor_t *s = NULL, *base = NULL, *view = NULL;
  assert_ok(tb_from_array(src, 0, kind_dtype(from), 1, &n, NULL, host, 0, NULL, NULL, &s));
  assert_ok(tb_tensor_zeros(kind_dtype(to), 1, &n2, host, TB_ORDER_C, &base));
  /* base[::-2]: the last element first, walking backwards */
  assert_ok(tb_tensor_slice(base, 0, INT64_MAX, INT64_MIN, -2, &view));
  assert_ok(tb_tensor_copy_into(view, s, 0));
  const uint16_t *out = tb_tensor_data(base);
  for (size_t i = 0; i < N; i++) {
    const value v = value_of(from, (const uint8_t *)&src[i]);
    const expected e = expect(to, &v);
    const uint8_t *got = (const uint8_t *)&out[2 * N - 1 - 2 * i];
    if (!element_matches(to, got, &e))
      fail_msg("element %zu: got 0x%04x", i, out[2 * N - 1 - 2 * i]);
    assert_int_equal(out[2 * N - 2 - 2 * i], 0);
  }
  tb_tensor_release(view);
  tb_tensor_release(base);
  tb_tensor_release(s);
}

/* ------------------------------------------------------------------------ */
/* Known answers, one rule family each                                      */
/* ------------------------------------------------------------------------ */

static void float_to_int_truncates_toward_zero_and_saturates(void **state) {
  (void)state;
  EXPECT_CAST("float32", float, 1.5f, "int32", int32_t, 1);
  EXPECT_CAST("float32", float, -1.5f, "int32", int32_t, -1);
  EXPECT_CAST("float32", float, 3e9f, "int32", int32_t, INT32_MAX);
  EXPECT_CAST("float32", float, -3e9f, "int32", int32_t, INT32_MIN);
  EXPECT_CAST("float32", float, f32_of_bits(0x7FC00000), "int32", int32_t, 0);
  EXPECT_CAST("float32", float, f32_of_bits(0xFF800001), "int64", int64_t, 0);
  EXPECT_CAST("float32", float, f32_of_bits(0x7F800000), "int16", int16_t, INT16_MAX);
  EXPECT_CAST("float32", float, f32_of_bits(0xFF800000), "int8", int8_t, INT8_MIN);
  EXPECT_CAST("float64", double, -0.5, "uint8", uint8_t, 0);
  EXPECT_CAST("float64", double, -1.0, "uint8", uint8_t, 0);
  EXPECT_CAST("float64", double, 255.9, "uint8", uint8_t, 255);
  EXPECT_CAST("float64", double, 256.0, "uint8", uint8_t, 255);
  EXPECT_CAST("float64", double, -128.9, "int8", int8_t, -128);
  EXPECT_CAST("float64", double, -129.0, "int8", int8_t, -128);
  EXPECT_CAST("float64", double, 2147483647.9, "int32", int32_t, INT32_MAX);
  EXPECT_CAST("float64", double, 4294967295.5, "uint32", uint32_t, UINT32_MAX);
  EXPECT_CAST("float64", double, 0x1p63, "int64", int64_t, INT64_MAX);
  EXPECT_CAST("float64", double, 0x1.fffffffffffffp62, "int64", int64_t,
              INT64_C(0x7FFFFFFFFFFFFC00));
  EXPECT_CAST("float64", double, -0x1p63, "int64", int64_t, INT64_MIN);
  EXPECT_CAST("float64", double, -0x1.0000000000001p63, "int64", int64_t, INT64_MIN);
  EXPECT_CAST("float64", double, 9.3e18, "int64", int64_t, INT64_MAX);
  EXPECT_CAST("float64", double, 0x1p64, "uint64", uint64_t, UINT64_MAX);
  EXPECT_CAST("float64", double, 1.8e19, "uint64", uint64_t, UINT64_C(18000000000000000000));
  EXPECT_CAST("float64", double, -0.0, "int32", int32_t, 0);
  EXPECT_CAST("float16", uint16_t, 0x7BFF /* 65504 */, "int16", int16_t, INT16_MAX);
  EXPECT_CAST("float16", uint16_t, 0xD140 /* -42.0 */, "uint16", uint16_t, 0);
  EXPECT_CAST("float16", uint16_t, 0xD140 /* -42.0 */, "int8", int8_t, -42);
  EXPECT_CAST("bfloat16", uint16_t, 0xFF80 /* -inf */, "uint32", uint32_t, 0);
  EXPECT_CAST("bfloat16", uint16_t, 0x7FC1 /* NaN */, "int32", int32_t, 0);
  EXPECT_CAST("bfloat16", uint16_t, 0x5F00 /* 2^63 */, "int64", int64_t, INT64_MAX);
  EXPECT_CAST("bfloat16", uint16_t, 0x5F00 /* 2^63 */, "uint64", uint64_t, POW2(63));
}

static void int_to_int_wraps_modulo_two_to_the_bits(void **state) {
  (void)state;
  EXPECT_CAST("int16", int16_t, 300, "uint8", uint8_t, 44);
  EXPECT_CAST("int16", int16_t, -1, "uint8", uint8_t, 255);
  EXPECT_CAST("int32", int32_t, -129, "int8", int8_t, 127);
  EXPECT_CAST("uint8", uint8_t, 200, "int8", int8_t, -56);
  EXPECT_CAST("uint16", uint16_t, 65535, "int16", int16_t, -1);
  EXPECT_CAST("uint64", uint64_t, UINT64_MAX, "int8", int8_t, -1);
  EXPECT_CAST("uint64", uint64_t, UINT64_MAX, "int64", int64_t, -1);
  EXPECT_CAST("int64", int64_t, INT64_MIN, "int32", int32_t, 0);
  EXPECT_CAST("int64", int64_t, INT64_MIN, "uint64", uint64_t, POW2(63));
  EXPECT_CAST("int8", int8_t, -1, "uint64", uint64_t, UINT64_MAX);
  EXPECT_CAST("int8", int8_t, INT8_MIN, "int64", int64_t, -128);
  EXPECT_CAST("uint32", uint32_t, 0x89ABCDEF, "int16", int16_t, (int16_t)-12817 /* 0xCDEF */);
}

static void int_to_float_rounds_once_to_nearest_even(void **state) {
  (void)state;
  EXPECT_CAST("int64", int64_t, (int64_t)(POW2(60) + POW2(52) + 1), "bfloat16", uint16_t, 0x5D81);
  EXPECT_CAST("int64", int64_t, (int64_t)(POW2(60) + POW2(52)), "bfloat16", uint16_t, 0x5D80);
  EXPECT_CAST("int64", int64_t, (int64_t)(POW2(60) + 3 * POW2(52)), "bfloat16", uint16_t, 0x5D82);
  EXPECT_CAST("int64", int64_t, -(int64_t)(POW2(60) + POW2(52) + 1), "bfloat16", uint16_t, 0xDD81);
  EXPECT_CAST("uint64", uint64_t, POW2(63) + POW2(55) + 1, "float16", uint16_t, 0x7C00);
  EXPECT_CAST("uint64", uint64_t, UINT64_MAX, "bfloat16", uint16_t, 0x5F80);
  EXPECT_CAST("uint64", uint64_t, POW2(63) + POW2(55) + 1, "bfloat16", uint16_t, 0x5F01);
  EXPECT_CAST("int32", int32_t, 65519, "float16", uint16_t, 0x7BFF);
  EXPECT_CAST("int32", int32_t, 65520, "float16", uint16_t, 0x7C00);
  EXPECT_CAST("int32", int32_t, -65520, "float16", uint16_t, 0xFC00);
  EXPECT_CAST("int16", int16_t, 2049, "float16", uint16_t, 0x6800);
  EXPECT_CAST("int16", int16_t, 2051, "float16", uint16_t, 0x6802);
  EXPECT_CAST("int8", int8_t, -128, "float16", uint16_t, 0xD800);
  EXPECT_CAST("uint8", uint8_t, 0, "float16", uint16_t, 0x0000);
  EXPECT_CAST("int16", int16_t, 257, "bfloat16", uint16_t, 0x4380);
  EXPECT_CAST("int16", int16_t, 259, "bfloat16", uint16_t, 0x4382);
  EXPECT_CAST("int64", int64_t, (1 << 24) + 1, "float32", float, 16777216.0f);
  EXPECT_CAST("int64", int64_t, (1 << 24) + 3, "float32", float, 16777220.0f);
  EXPECT_CAST("int64", int64_t, INT64_C(0x7FFFFFFFFFFFFFFF), "float32", float, 0x1p63f);
  EXPECT_CAST("uint64", uint64_t, UINT64_MAX, "float32", float, 0x1p64f);
  EXPECT_CAST("int64", int64_t, (int64_t)POW2(53) + 1, "float64", double, 0x1p53);
  EXPECT_CAST("uint64", uint64_t, POW2(63) + 1025, "float64", double, 0x1.0000000000001p63);
}

static void float_to_narrower_float_rounds_once_to_nearest_even(void **state) {
  (void)state;
  EXPECT_CAST("float64", double, 65520.0, "float16", uint16_t, 0x7C00);
  EXPECT_CAST("float64", double, 65519.99, "float16", uint16_t, 0x7BFF);
  EXPECT_CAST("float64", double, 0x1p-24, "float16", uint16_t, 0x0001);
  EXPECT_CAST("float64", double, 0x1p-25, "float16", uint16_t, 0x0000);
  EXPECT_CAST("float64", double, -0x1p-25, "float16", uint16_t, 0x8000);
  EXPECT_CAST("float64", double, 0x1.0000000000001p-25, "float16", uint16_t, 0x0001);
  EXPECT_CAST("float64", double, 0x1.8p-24, "float16", uint16_t, 0x0002);
  EXPECT_CAST("float64", double, 0x1.ffcp-15, "float16", uint16_t,
              0x0400); /* to the smallest normal */
  /* Just above a float16 tie, but rounding to the tie in float32. */
  EXPECT_CAST("float64", double, 0x1.0020000001p0, "float16", uint16_t, 0x3C01);
  EXPECT_CAST("float64", double, 0x1.002p0, "float16", uint16_t, 0x3C00);
  EXPECT_CAST("float64", double, 0x1.006p0, "float16", uint16_t, 0x3C02);
  EXPECT_CAST("float64", double, 0x1.0100002p0, "bfloat16", uint16_t, 0x3F81);
  EXPECT_CAST("float64", double, -0.0, "float16", uint16_t, 0x8000);
  EXPECT_CAST("float64", double, -0.0, "bfloat16", uint16_t, 0x8000);
  EXPECT_CAST("float64", double, f64_of_bits(0xFFF0000000000000), "float16", uint16_t, 0xFC00);
  EXPECT_CAST("float64", double, 1e300, "bfloat16", uint16_t, 0x7F80);
  EXPECT_CAST("float64", double, 1e300, "float32", float, f32_of_bits(0x7F800000));
  EXPECT_CAST("float64", double, 0x1p-150, "float32", float, 0.0f);
  EXPECT_CAST("float64", double, 0x1.0000000000001p-150, "float32", float, 0x1p-149f);
  EXPECT_CAST("float32", float, f32_of_bits(0x7F7FFFFF), "bfloat16", uint16_t, 0x7F80);
  EXPECT_CAST("float32", float, f32_of_bits(0x3F808001), "bfloat16", uint16_t, 0x3F81);
  EXPECT_CAST("float32", float, f32_of_bits(0x3F808000), "bfloat16", uint16_t, 0x3F80);
  EXPECT_CAST("float32", float, f32_of_bits(0x3F818000), "bfloat16", uint16_t, 0x3F82);
  EXPECT_CAST("float32", float, 0x1p-25f, "float16", uint16_t, 0x0000);
  EXPECT_CAST("bfloat16", uint16_t, 0x4780 /* 65536 */, "float16", uint16_t, 0x7C00);
  EXPECT_CAST("float16", uint16_t, 0x3C01, "bfloat16", uint16_t, 0x3F80);
}

static void widening_float_casts_are_exact(void **state) {
  (void)state;
  EXPECT_CAST("float16", uint16_t, 0x0001, "float64", double, 0x1p-24);
  EXPECT_CAST("float16", uint16_t, 0x03FF, "float32", float, 0x1.ff8p-15f);
  EXPECT_CAST("float16", uint16_t, 0x7BFF, "float32", float, 65504.0f);
  EXPECT_CAST("float16", uint16_t, 0xFC00, "float64", double, f64_of_bits(0xFFF0000000000000));
  EXPECT_CAST("float16", uint16_t, 0x8000, "float32", float, -0.0f);
  EXPECT_CAST("bfloat16", uint16_t, 0x0001, "float32", float, f32_of_bits(0x00010000));
  EXPECT_CAST("bfloat16", uint16_t, 0xC2F7, "float64", double, -123.5);
  EXPECT_CAST("float32", float, f32_of_bits(0x00000001), "float64", double, 0x1p-149);
  EXPECT_CAST("float16", uint16_t, 0x0001, "bfloat16", uint16_t, 0x3380);
}

static bool is_nan_with_sign_f16(uint16_t bits, bool neg) {
  return (bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0 && ((bits & 0x8000) != 0) == neg;
}

static void nan_stays_nan_with_its_sign(void **state) {
  (void)state;
  const char *floats[] = {"float16", "bfloat16", "float32", "float64", "complex64", "complex128"};
  const double nans[] = {f64_of_bits(0x7FF8000000000000), f64_of_bits(0xFFF8000000000001),
                         f64_of_bits(0x7FF0000000000001)};
  for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
    for (size_t j = 0; j < sizeof nans / sizeof nans[0]; j++) {
      uint8_t out[16];
      cast_one("float64", &nans[j], floats[i], 0, out);
      const kind *k = kind_named(floats[i]);
      const size_t psize = k->size / (size_t)kind_parts(k);
      const exact x = fmt_decode(k->f, load_bits(out, psize));
      if (x.what != X_NAN || x.neg != (j == 1)) fail_msg("float64 NaN #%zu -> %s", j, floats[i]);
      /* The 16-bit encoders make every NaN quiet, the signalling one included. */
      const bool quiet = (load_bits(out, psize) & POW2(k->f.man_bits - 1)) != 0;
      if (k->size == 2 && !quiet) fail_msg("float64 NaN #%zu -> %s is not quiet", j, floats[i]);
    }
  }
  uint16_t h = 0;
  const float neg_nan = f32_of_bits(0xFFC00001);
  cast_one("float32", &neg_nan, "float16", 0, &h);
  assert_true(is_nan_with_sign_f16(h, true));
  const uint16_t bf_nan = 0xFF81; /* signalling, negative */
  cast_one("bfloat16", &bf_nan, "float16", 0, &h);
  assert_true(is_nan_with_sign_f16(h, true));
  const uint16_t f16_nan = 0x7C01;
  float f = 0;
  cast_one("float16", &f16_nan, "float32", 0, &f);
  assert_true(f != f && (bits_of_f32(f) >> 31) == 0);
}

static void bool_reads_any_nonzero_byte_as_true_and_writes_zero_or_one(void **state) {
  (void)state;
  EXPECT_CAST("bool", uint8_t, 2, "int32", int32_t, 1);
  EXPECT_CAST("bool", uint8_t, 0xFF, "float64", double, 1.0);
  EXPECT_CAST("bool", uint8_t, 0x80, "int8", int8_t, 1);
  EXPECT_CAST("bool", uint8_t, 2, "float16", uint16_t, 0x3C00);
  EXPECT_CAST("bool", uint8_t, 2, "bfloat16", uint16_t, 0x3F80);
  EXPECT_CAST("bool", uint8_t, 0, "float16", uint16_t, 0x0000);
  EXPECT_CAST("bool", uint8_t, 2, "complex64", c64, ((c64){1.0f, 0.0f}));
  EXPECT_CAST("float32", float, f32_of_bits(0x7FC00000), "bool", uint8_t, 1);
  EXPECT_CAST("float32", float, -0.0f, "bool", uint8_t, 0);
  EXPECT_CAST("float64", double, 0x1p-1074, "bool", uint8_t, 1);
  EXPECT_CAST("float16", uint16_t, 0x8000, "bool", uint8_t, 0);
  EXPECT_CAST("int64", int64_t, INT64_MIN, "bool", uint8_t, 1);
  EXPECT_CAST("uint16", uint16_t, 256, "bool", uint8_t, 1);
  EXPECT_CAST("complex64", c64, ((c64){0.0f, -0.0f}), "bool", uint8_t, 0);
  EXPECT_CAST("complex64", c64, ((c64){0.0f, f32_of_bits(0x7FC00000)}), "bool", uint8_t, 1);
  EXPECT_CAST("complex128", c128, ((c128){-0.0, 0x1p-1074}), "bool", uint8_t, 1);
}

static void complex_casts_keep_or_drop_parts(void **state) {
  (void)state;
  EXPECT_CAST("float32", float, -2.5f, "complex128", c128, ((c128){-2.5, 0.0}));
  EXPECT_CAST("int8", int8_t, -7, "complex64", c64, ((c64){-7.0f, 0.0f}));
  EXPECT_CAST("uint64", uint64_t, UINT64_MAX, "complex64", c64, ((c64){0x1p64f, 0.0f}));
  EXPECT_CAST("float16", uint16_t, 0xBC00, "complex64", c64, ((c64){-1.0f, 0.0f}));
  EXPECT_CAST("complex128", c128, ((c128){1.5, -0x1.000001p0}), "complex64", c64,
              ((c64){1.5f, -1.0f}));
  EXPECT_CAST("complex64", c64, ((c64){1.5f, 2.0f}), "complex128", c128, ((c128){1.5, 2.0}));
  EXPECT_CAST("complex64", c64, ((c64){1.5f, 2.0f}), "int32", int32_t, 1);
  EXPECT_CAST("complex64", c64, ((c64){-3e9f, 2.0f}), "int32", int32_t, INT32_MIN);
  EXPECT_CAST("complex128", c128, ((c128){0x1.0020000001p0, 9.0}), "float16", uint16_t, 0x3C01);
  EXPECT_CAST("complex128", c128, ((c128){-0.0, 1.0}), "float64", double, -0.0);
  EXPECT_CAST("complex128", c128, ((c128){1e300, 1.0}), "float32", float, f32_of_bits(0x7F800000));
}

static void complex_to_real_without_discard_imag_fails_with_dtype_error(void **state) {
  (void)state;
  static const char *const complexes[] = {"complex64", "complex128"};
  static const char *const reals[] = {"int8",    "int16",    "int32",   "int64",
                                      "uint8",   "uint16",   "uint32",  "uint64",
                                      "float16", "bfloat16", "float32", "float64"};
  const double buf[4] = {1.0, 2.0, 3.0, 4.0};
  const int64_t n = 1;
  for (size_t c = 0; c < 2; c++) {
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
      const DLDataType src_dtype = dtype_named(complexes[c]), dst_dtype = dtype_named(reals[i]);
      tb_tensor_t *t = NULL;
      tb_clear_error();
      tb_status st;
      guarded_call(st, tb_tensor_new(buf, src_dtype, 1, &n, NULL, &dst_dtype, TB_ORDER_C, 0, &t));
      assert_int_equal(st, TB_ERR_DTYPE);
      assert_null(t);
      const char *msg = tb_last_error();
      if (strstr(msg, "complex") == NULL || strstr(msg, complexes[c]) == NULL ||
          strstr(msg, reals[i]) == NULL || strstr(msg, "TB_CAST_DISCARD_IMAG") == NULL) {
        fail_msg("%s -> %s: message \"%s\"", complexes[c], reals[i], msg);
      }
      /* The same cast with the flag succeeds. */
      assert_ok(tb_tensor_new(buf, src_dtype, 1, &n, NULL, &dst_dtype, TB_ORDER_C,
                              TB_CAST_DISCARD_IMAG, &t));
      tb_tensor_release(t);
    }
  }
  /* complex -> bool and complex -> complex need no flag. */
  static const char *const allowed[] = {"bool", "complex64", "complex128"};
  for (size_t c = 0; c < 2; c++) {
    for (size_t i = 0; i < 3; i++) {
      const DLDataType src_dtype = dtype_named(complexes[c]), dst_dtype = dtype_named(allowed[i]);
      tb_tensor_t *t = NULL;
      assert_ok(tb_tensor_new(buf, src_dtype, 1, &n, NULL, &dst_dtype, TB_ORDER_C, 0, &t));
      tb_tensor_release(t);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reference_rounding_agrees_with_hardware_conversions),
      cmocka_unit_test(every_pair_matches_the_reference_bit_for_bit),
      cmocka_unit_test(strided_reversed_and_broadcast_sources_cast_per_element),
      cmocka_unit_test(strided_destinations_receive_cast_values),
      cmocka_unit_test(float_to_int_truncates_toward_zero_and_saturates),
      cmocka_unit_test(int_to_int_wraps_modulo_two_to_the_bits),
      cmocka_unit_test(int_to_float_rounds_once_to_nearest_even),
      cmocka_unit_test(float_to_narrower_float_rounds_once_to_nearest_even),
      cmocka_unit_test(widening_float_casts_are_exact),
      cmocka_unit_test(nan_stays_nan_with_its_sign),
      cmocka_unit_test(bool_reads_any_nonzero_byte_as_true_and_writes_zero_or_one),
      cmocka_unit_test(complex_casts_keep_or_drop_parts),
      cmocka_unit_test(complex_to_real_without_discard_imag_fails_with_dtype_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
