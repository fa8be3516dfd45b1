/*
 * Element conversions, one element at a time: the rules of cast.h as static
 * inline functions, shared by the strided loops (cast.c) and the contiguous
 * kernels (kernels/cast_contig.c), so both give the same bits by
 * construction. The design is described at the top of cast.c.
 *
 * tb_load_<name>(p) reads one element of a kind and widens it exactly to its
 * value class; tb_<target>_from_<class>(v) converts a class value to the
 * target's stored type. TB_SOURCES and TB_TARGETS list the kinds for the
 * X-macros that build the loops and tables.
 */
#ifndef TB_KERNELS_CAST_OPS_H
#define TB_KERNELS_CAST_OPS_H

#include <math.h>
#include <string.h>

#include "cast.h"

/* ---- value classes and stored types ---- */

typedef struct tb_zval {
  double re, im;
} tb_zval;

typedef struct tb_c64 {
  float re, im;
} tb_c64;

typedef struct tb_c128 {
  double re, im;
} tb_c128;

_Static_assert(sizeof(tb_c64) == 8, "complex64 is two packed float32");
_Static_assert(sizeof(tb_c128) == 16, "complex128 is two packed float64");

/* ---- float16 and bfloat16 ---- */

#define TB_F16_EXP_BITS 5
#define TB_F16_MAN_BITS 10
#define TB_BF16_EXP_BITS 8
#define TB_BF16_MAN_BITS 7

/*
 * The bits of (-1)^sign * m * 2^e rounded to nearest, ties to even, in a
 * 16-bit binary format with exp_bits/man_bits. The result is assembled as
 * ((exponent + bias - 1) << man_bits) + significand-with-implicit-bit, so a
 * subnormal that rounds up to the smallest normal, and a significand that
 * carries into the next exponent, both land on the right pattern by plain
 * addition; a carry past the largest exponent lands on infinity.
 */
static inline uint16_t tb_half_round(uint32_t sign, uint64_t m, int32_t e, int32_t exp_bits,
                                     int32_t man_bits) {
  const int32_t bias = (1 << (exp_bits - 1)) - 1;
  const uint32_t inf = ((1u << exp_bits) - 1u) << man_bits;
  const uint32_t sign_bit = sign << (exp_bits + man_bits);
  if (m == 0) return (uint16_t)sign_bit;
  const int32_t top = 63 - __builtin_clzll(m) + e; /* exponent of the leading bit */
  if (top > bias) return (uint16_t)(sign_bit | inf);
  const int32_t exponent = top > 1 - bias ? top : 1 - bias; /* subnormals share the lowest */
  const int32_t shift = exponent - man_bits - e;            /* bits of m below the last place */
  uint64_t r;
  if (shift <= 0) {
    r = m << -shift; /* exact: fewer than man_bits + 2 bits */
  } else if (shift > 64) {
    r = 0; /* m < 2^64 <= half of the last place */
  } else {
    const uint64_t half = UINT64_C(1) << (shift - 1);
    const uint64_t rest = m & ((half << 1) - 1u); /* half << 1 wraps to 0 when shift = 64 */
    r = shift == 64 ? 0 : m >> shift;
    /* Bitwise, not ||: the answer depends on the data and would mispredict. */
    r += (uint64_t)(rest > half) | ((uint64_t)(rest == half) & r & 1u);
  }
  const uint32_t bits = ((uint32_t)(exponent + bias - 1) << man_bits) + (uint32_t)r;
  return (uint16_t)(sign_bit | (bits < inf ? bits : inf));
}

static inline uint16_t tb_half_from_double(double v, int32_t exp_bits, int32_t man_bits) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  const uint32_t sign = (uint32_t)(b >> 63);
  const uint32_t field = (uint32_t)(b >> 52) & 0x7FFu;
  const uint64_t frac = b & ((UINT64_C(1) << 52) - 1u);
  if (field == 0x7FFu) { /* infinity, or NaN made quiet with its sign kept */
    const uint32_t quiet = frac != 0 ? 1u << (man_bits - 1) : 0u;
    const uint32_t inf = ((1u << exp_bits) - 1u) << man_bits;
    return (uint16_t)((sign << (exp_bits + man_bits)) | inf | quiet);
  }
  const uint64_t m = field != 0 ? frac | (UINT64_C(1) << 52) : frac;
  const int32_t e = (int32_t)(field != 0 ? field : 1u) - 1075;
  return tb_half_round(sign, m, e, exp_bits, man_bits);
}

/* Exact. Subnormals are scaled from an integer rather than rebiased, so the
 * result does not depend on the denormals-are-zero mode. */
static inline float tb_f16_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t field = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  float f;
  if (field == 0) {
    f = (float)man * 0x1p-24f;
    return sign != 0 ? -f : f;
  }
  const uint32_t bits = sign | (field == 0x1Fu ? 0x7F800000u : (field + 112u) << 23) | man << 13;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline float tb_bf16_to_float(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* ---- loads: one element, widened exactly to its class ---- */

static inline uint64_t tb_load_boolean(const char *p) {
  uint8_t v;
  memcpy(&v, p, sizeof v);
  return v != 0;
}

#define TB_LOAD_AS(name, type, wide)                 \
  static inline wide tb_load_##name(const char *p) { \
    type v;                                          \
    memcpy(&v, p, sizeof v);                         \
    return (wide)v;                                  \
  }

TB_LOAD_AS(i8, int8_t, int64_t)
TB_LOAD_AS(i16, int16_t, int64_t)
TB_LOAD_AS(i32, int32_t, int64_t)
TB_LOAD_AS(i64, int64_t, int64_t)
TB_LOAD_AS(u8, uint8_t, uint64_t)
TB_LOAD_AS(u16, uint16_t, uint64_t)
TB_LOAD_AS(u32, uint32_t, uint64_t)
TB_LOAD_AS(u64, uint64_t, uint64_t)
TB_LOAD_AS(f32, float, double)
TB_LOAD_AS(f64, double, double)

static inline double tb_load_f16(const char *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return tb_f16_to_float(h);
}

static inline double tb_load_bf16(const char *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return tb_bf16_to_float(h);
}

static inline tb_zval tb_load_c64(const char *p) {
  tb_c64 v;
  memcpy(&v, p, sizeof v);
  return (tb_zval){v.re, v.im};
}

static inline tb_zval tb_load_c128(const char *p) {
  tb_c128 v;
  memcpy(&v, p, sizeof v);
  return (tb_zval){v.re, v.im};
}

/* ---- conversions: tb_<target>_from_<class> returns the stored value ---- */

static inline uint8_t tb_boolean_from_u(uint64_t v) { return v != 0; }
static inline uint8_t tb_boolean_from_s(int64_t v) { return v != 0; }
static inline uint8_t tb_boolean_from_d(double v) { return v != 0; } /* NaN is true */
static inline uint8_t tb_boolean_from_z(tb_zval v) { return v.re != 0 || v.im != 0; }

/*
 * Integer targets return their unsigned bit pattern. Narrowing an unsigned
 * value is reduction modulo 2^bits, which is the wrap the rules ask for.
 */
#define TB_INT_TARGET(name, utype)                                                 \
  static inline utype tb_##name##_from_u(uint64_t v) { return (utype)v; }          \
  static inline utype tb_##name##_from_s(int64_t v) { return (utype)(uint64_t)v; } \
  static inline utype tb_##name##_from_z(tb_zval v) { return tb_##name##_from_d(v.re); }

/* Signed targets below 64 bits: min and max are exact doubles, and any value
 * clamped to them truncates into range. */
#define TB_NARROW_SIGNED_TARGET(name, type, utype, min, max)                                    \
  static inline utype tb_##name##_from_d(double v) {                                            \
    const double c = v < (double)(min) ? (double)(min) : v > (double)(max) ? (double)(max) : v; \
    return isnan(v) ? 0 : (utype)(type)c;                                                       \
  }                                                                                             \
  TB_INT_TARGET(name, utype)

/* Unsigned targets below 64 bits; NaN and negatives clamp to 0 (a value in
 * (-1, 0) truncates to 0 anyway). */
#define TB_NARROW_UNSIGNED_TARGET(name, utype, max)                         \
  static inline utype tb_##name##_from_d(double v) {                        \
    const double c = v > 0 ? (v < (double)(max) ? v : (double)(max)) : 0.0; \
    return (utype)c;                                                        \
  }                                                                         \
  TB_INT_TARGET(name, utype)

TB_NARROW_SIGNED_TARGET(i8, int8_t, uint8_t, INT8_MIN, INT8_MAX)
TB_NARROW_SIGNED_TARGET(i16, int16_t, uint16_t, INT16_MIN, INT16_MAX)
TB_NARROW_SIGNED_TARGET(i32, int32_t, uint32_t, INT32_MIN, INT32_MAX)
TB_NARROW_UNSIGNED_TARGET(u8, uint8_t, UINT8_MAX)
TB_NARROW_UNSIGNED_TARGET(u16, uint16_t, UINT16_MAX)
TB_NARROW_UNSIGNED_TARGET(u32, uint32_t, UINT32_MAX)

/* 64-bit targets: the maxima are not doubles, so compare against 2^63 and
 * 2^64 (the first values out of range) instead of clamping. */
static inline uint64_t tb_i64_from_d(double v) {
  const double c = v < -0x1p63 ? -0x1p63 : v;
  return isnan(v) ? 0 : v >= 0x1p63 ? (uint64_t)INT64_MAX : (uint64_t)(int64_t)c;
}
TB_INT_TARGET(i64, uint64_t)

static inline uint64_t tb_u64_from_d(double v) {
  return v >= 0x1p64 ? UINT64_MAX : (uint64_t)(v > 0 ? v : 0.0);
}
TB_INT_TARGET(u64, uint64_t)

#define TB_HALF_TARGET(name, exp_bits, man_bits)                       \
  static inline uint16_t tb_##name##_from_u(uint64_t v) {              \
    return tb_half_round(0, v, 0, exp_bits, man_bits);                 \
  }                                                                    \
  static inline uint16_t tb_##name##_from_s(int64_t v) {               \
    const uint64_t magnitude = v < 0 ? 0u - (uint64_t)v : (uint64_t)v; \
    return tb_half_round(v < 0, magnitude, 0, exp_bits, man_bits);     \
  }                                                                    \
  static inline uint16_t tb_##name##_from_d(double v) {                \
    return tb_half_from_double(v, exp_bits, man_bits);                 \
  }                                                                    \
  static inline uint16_t tb_##name##_from_z(tb_zval v) { return tb_##name##_from_d(v.re); }

TB_HALF_TARGET(f16, TB_F16_EXP_BITS, TB_F16_MAN_BITS)
TB_HALF_TARGET(bf16, TB_BF16_EXP_BITS, TB_BF16_MAN_BITS)

/* C's double -> float conversion rounds once, to nearest even (and gives
 * +-inf past the range, Annex F); so do int64 -> double and, below 2^53,
 * int64 -> double -> float, whose first step is exact.
 *
 * A NaN always comes out quiet (sign kept), as the float16/bfloat16 path
 * and the device kernels do: compilers fold float -> double -> float into
 * nothing at -O2 and would keep a signalling NaN signalling, while -O0 and
 * valgrind quiet it. The quiet bit is set on the bits, so no build differs. */
static inline float tb_quiet_f32(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  /* Without a branch, and through a float compare, so that loops over it
   * vectorise on any ISA (SSE2 has no unsigned or 64-bit integer compare). */
  bits |= (UINT32_C(0) - (uint32_t)(f != f)) & (UINT32_C(1) << 22);
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline double tb_quiet_f64(double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  bits |= (UINT64_C(0) - (uint64_t)(d != d)) & (UINT64_C(1) << 51);
  memcpy(&d, &bits, sizeof d);
  return d;
}

#define TB_REAL_TARGET(name, type)                                                         \
  static inline type tb_##name##_from_d(double v) { return tb_quiet_##name((type)v); }     \
  static inline type tb_##name##_from_z(tb_zval v) { return tb_quiet_##name((type)v.re); }

TB_REAL_TARGET(f32, float)
TB_REAL_TARGET(f64, double)

static inline double tb_f64_from_u(uint64_t v) { return (double)v; }
static inline double tb_f64_from_s(int64_t v) { return (double)v; }

/*
 * A 64-bit magnitude to float32 with one rounding, by construction. C's
 * uint64 -> float is a single rounding on x86-64 hardware, but not everywhere
 * (valgrind emulates it through double, and so do some soft-float runtimes).
 * Above 2^53 the bits below the top 53 are folded into a sticky last bit: the
 * conversion to double is then exact, and the 29 bits kept below float32's
 * last place still tell whether the value is below, at or above a halfway
 * point, so the conversion to float is the only rounding.
 */
static inline float tb_f32_from_magnitude(uint64_t m) {
  /* Signed conversions only: an unsigned 64-bit one is a branchy sequence on
   * x86-64. The branch follows the data's magnitude, which is rarely mixed
   * (a branch-free form measured 1.8x slower on random 64-bit data). */
  if (m >> 53 == 0) return (float)(double)(int64_t)m;
  const int drop = 11 - __builtin_clzll(m); /* bit length - 53, in [1, 11] */
  const uint64_t sticky = (m & ((UINT64_C(1) << drop) - 1u)) != 0;
  return (float)((double)(int64_t)((m >> drop) | sticky) * (double)(UINT64_C(1) << drop));
}

static inline float tb_f32_from_u(uint64_t v) { return tb_f32_from_magnitude(v); }

/* The sign goes on as a bit, not through a branch (random signs would
 * mispredict: measured 7x slower than non-negative data). */
static inline float tb_f32_from_s(int64_t v) {
  const uint64_t sign = 0u - ((uint64_t)v >> 63); /* all ones when negative */
  const float f = tb_f32_from_magnitude(((uint64_t)v ^ sign) - sign);
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  bits |= (uint32_t)sign & UINT32_C(0x80000000);
  float r;
  memcpy(&r, &bits, sizeof r);
  return r;
}

/* Each part as the matching real target; the imaginary part of a real is +0. */
#define TB_COMPLEX_TARGET(name, type, real)                                                      \
  static inline type tb_##name##_from_u(uint64_t v) { return (type){tb_##real##_from_u(v), 0}; } \
  static inline type tb_##name##_from_s(int64_t v) { return (type){tb_##real##_from_s(v), 0}; }  \
  static inline type tb_##name##_from_d(double v) { return (type){tb_##real##_from_d(v), 0}; }   \
  static inline type tb_##name##_from_z(tb_zval v) {                                             \
    return (type){tb_##real##_from_d(v.re), tb_##real##_from_d(v.im)};                           \
  }

TB_COMPLEX_TARGET(c64, tb_c64, f32)
TB_COMPLEX_TARGET(c128, tb_c128, f64)

/* ---- the table ---- */

/* How each kind loads: X(name, kind, class, dtype name). bool is spelled
 * "boolean" here because <stdbool.h> makes `bool` a macro, which would expand
 * inside the lists before the names are pasted. */
#define TB_SOURCES(X)               \
  X(boolean, TB_K_BOOL, u, "bool")  \
  X(i8, TB_K_I8, s, "int8")         \
  X(i16, TB_K_I16, s, "int16")      \
  X(i32, TB_K_I32, s, "int32")      \
  X(i64, TB_K_I64, s, "int64")      \
  X(u8, TB_K_U8, u, "uint8")        \
  X(u16, TB_K_U16, u, "uint16")     \
  X(u32, TB_K_U32, u, "uint32")     \
  X(u64, TB_K_U64, u, "uint64")     \
  X(f16, TB_K_F16, d, "float16")    \
  X(bf16, TB_K_BF16, d, "bfloat16") \
  X(f32, TB_K_F32, d, "float32")    \
  X(f64, TB_K_F64, d, "float64")    \
  X(c64, TB_K_C64, z, "complex64")  \
  X(c128, TB_K_C128, z, "complex128")

/* How each kind stores: X(source columns..., name, kind, stored type). */
#define TB_TARGETS(X, ...)                    \
  X(__VA_ARGS__, boolean, TB_K_BOOL, uint8_t) \
  X(__VA_ARGS__, i8, TB_K_I8, uint8_t)        \
  X(__VA_ARGS__, i16, TB_K_I16, uint16_t)     \
  X(__VA_ARGS__, i32, TB_K_I32, uint32_t)     \
  X(__VA_ARGS__, i64, TB_K_I64, uint64_t)     \
  X(__VA_ARGS__, u8, TB_K_U8, uint8_t)        \
  X(__VA_ARGS__, u16, TB_K_U16, uint16_t)     \
  X(__VA_ARGS__, u32, TB_K_U32, uint32_t)     \
  X(__VA_ARGS__, u64, TB_K_U64, uint64_t)     \
  X(__VA_ARGS__, f16, TB_K_F16, uint16_t)     \
  X(__VA_ARGS__, bf16, TB_K_BF16, uint16_t)   \
  X(__VA_ARGS__, f32, TB_K_F32, float)        \
  X(__VA_ARGS__, f64, TB_K_F64, double)       \
  X(__VA_ARGS__, c64, TB_K_C64, tb_c64)       \
  X(__VA_ARGS__, c128, TB_K_C128, tb_c128)

#define TB_COUNT_ONE(...) +1
enum {
  TB_SOURCE_COUNT = 0 TB_SOURCES(TB_COUNT_ONE),
  TB_TARGET_COUNT = 0 TB_TARGETS(TB_COUNT_ONE, ~)
};
_Static_assert((int)TB_SOURCE_COUNT == (int)TB_K_COUNT, "TB_SOURCES lists every tb_cast_kind");
_Static_assert((int)TB_TARGET_COUNT == (int)TB_K_COUNT, "TB_TARGETS lists every tb_cast_kind");

#endif
