/*
 * The vector cast kernels (src/kernels/) against the scalar loops, bit for
 * bit, and the transpose kernels against address arithmetic done here,
 * through the public API.
 *
 * meson registers this program once per CPU level (kernels_c, kernels_sse2,
 * kernels_avx2, kernels_avx512 on x86-64; kernels_neon on AArch64)
 * with TB_CPU_LEVEL set; a level this CPU lacks falls back to the best one it
 * has (the test then prints a note and still passes: scripts/test accepts no
 * skips). A dense destination takes the kernel of the level in use; a
 * destination with stride 2 takes the scalar loop of cast.c, the reference.
 * With TB_KERNELS_INTERNAL (linked against the static library) the level in
 * use is also checked against the one asked for.
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

#if defined(TB_KERNELS_INTERNAL)
/* From src/kernels/kernels.h (hidden symbols, reachable from the static
 * library only). */
typedef enum tb_cpu_level {
  TB_CPU_C = 0,
  TB_CPU_SSE2 = 1,
  TB_CPU_AVX2 = 2,
  TB_CPU_AVX512 = 3,
  TB_CPU_NEON = 4
} tb_cpu_level;
tb_cpu_level tb__cpu_level(void);
tb_cpu_level tb__cpu_level_supported(void);
const char *tb__cpu_level_name(tb_cpu_level level);
#endif

static const DLDataType F16 = {kDLFloat, 16, 1}, BF16 = {kDLBfloat, 16, 1};

/* Casts n elements, src with element stride ss, into dst with element stride
 * ds (both >= 1), through tb_tensor_copy_into on wrapped memory. */
static void cast_raw(void *src, DLDataType st, int64_t ss, void *dst, DLDataType dt_, int64_t ds,
                     int64_t n) {
  const DLDevice host = {kDLCPU, 0};
  tb_tensor_t *s = NULL, *d = NULL;
  assert_ok(tb_from_array(src, 0, st, 1, &n, &ss, host, 0, NULL, NULL, &s));
  assert_ok(tb_from_array(dst, 0, dt_, 1, &n, &ds, host, 0, NULL, NULL, &d));
  assert_ok(tb_tensor_copy_into(d, s, 0));
  tb_tensor_release(d);
  tb_tensor_release(s);
}

/*
 * Casts the n elements at src (dense) both ways: into a dense destination
 * (the kernel), starting `skew` elements in so that vectors are unaligned
 * (and `byte_skew` more bytes, which may misalign the elements themselves),
 * and into every second element of another (the scalar reference). Returns
 * the number of mismatches, printing the first few.
 */
static size_t compare_skewed(const void *src, DLDataType st, DLDataType dt_, int64_t n,
                             int64_t skew, size_t byte_skew) {
  const size_t sz = st.bits / 8, dz = dt_.bits / 8;
  char *s = malloc((size_t)(n + skew) * sz);
  char *fast_block = calloc((size_t)(n + skew + 1), dz);
  char *fast = fast_block + byte_skew;
  char *ref = calloc((size_t)(2 * n), dz);
  assert_non_null(s);
  assert_non_null(fast_block);
  assert_non_null(ref);
  memcpy(s + (size_t)skew * sz, src, (size_t)n * sz);
  cast_raw(s + (size_t)skew * sz, st, 1, fast + (size_t)skew * dz, dt_, 1, n);
  cast_raw(s + (size_t)skew * sz, st, 1, ref, dt_, 2, n);
  size_t bad = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t in = 0, got = 0, want = 0;
    memcpy(&in, s + (size_t)(skew + i) * sz, sz);
    memcpy(&got, fast + (size_t)(skew + i) * dz, dz);
    memcpy(&want, ref + (size_t)(2 * i) * dz, dz);
    if (got != want && bad++ < 8) {
      print_message("  %u/%u-bit input 0x%08x: kernel 0x%08x, scalar 0x%08x\n", st.bits, dt_.bits,
                    in, got, want);
    }
  }
  free(ref);
  free(fast_block);
  free(s);
  return bad;
}

static size_t compare(const void *src, DLDataType st, DLDataType dt_, int64_t n, int64_t skew) {
  return compare_skewed(src, st, dt_, n, skew, 0);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Every exponent and sign with the mantissas that sit on, just below and just
 * above a rounding tie at each bit position (so every float16 normal and
 * subnormal shift, and bfloat16's, and the overflow edge), the extremes of
 * the mantissa (NaN payloads when the exponent is all ones), then random
 * patterns. */
static uint32_t *float32_patterns(size_t random_count, size_t *count) {
  const size_t cap = 2 * 256 * (6 + 23 * 6 * 3) + random_count;
  uint32_t *p = malloc(cap * sizeof *p);
  assert_non_null(p);
  size_t n = 0;
  for (uint32_t sign = 0; sign < 2; sign++) {
    for (uint32_t e = 0; e < 256; e++) {
      const uint32_t head = sign << 31 | e << 23;
      const uint32_t edges[] = {0, 1, 2, 0x7FFFFF, 0x7FFFFE, 0x400000};
      for (size_t i = 0; i < 6; i++) p[n++] = head | edges[i];
      for (uint32_t k = 1; k <= 23; k++) {
        const uint32_t half = 1u << (k - 1), top = (0x7FFFFFu >> k) << k;
        const uint32_t bases[] = {0, 1u << k, 2u << k, 3u << k, top, top - (1u << k)};
        for (size_t b = 0; b < 6; b++) {
          for (int d = -1; d <= 1; d++) p[n++] = head | ((bases[b] + half + (uint32_t)d) & 0x7FFFFFu);
        }
      }
    }
  }
  uint64_t seed = 0x5EED;
  for (size_t i = 0; i < random_count; i++) p[n++] = (uint32_t)splitmix(&seed);
  *count = n;
  return p;
}

static void report_level(void) {
  const char *asked = getenv("TB_CPU_LEVEL");
#if defined(TB_KERNELS_INTERNAL)
  const tb_cpu_level in_use = tb__cpu_level(), best = tb__cpu_level_supported();
  if (asked != NULL && strcmp(asked, tb__cpu_level_name(in_use)) != 0) {
    /* Only a level above the CPU's may be refused. */
    assert_true(in_use == best);
    print_message("note: TB_CPU_LEVEL=%s is unknown or above this CPU; testing level %s\n", asked,
                  tb__cpu_level_name(in_use));
  } else {
    print_message("testing kernel level %s\n", tb__cpu_level_name(in_use));
  }
#else
  print_message("testing kernel level TB_CPU_LEVEL=%s (not checked: shared library)\n",
                asked != NULL ? asked : "auto");
#endif
}

static void every_float16_and_bfloat16_widens_as_the_scalar_loop(void **state) {
  (void)state;
  report_level();
  uint16_t all[65536];
  for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
  size_t bad = 0;
  for (int64_t skew = 0; skew < 2; skew++) {
    bad += compare(all, F16, F32, 65536, skew);
    bad += compare(all, BF16, F32, 65536, skew);
  }
  /* Tails: every length up to a few vectors. */
  for (int64_t n = 1; n <= 40; n++) {
    bad += compare(all + 0x7BF0, F16, F32, n, n & 1);
    bad += compare(all + 0xFF70, BF16, F32, n, n & 1);
  }
  assert_int_equal(bad, 0);
}

/* Destinations of 8 MiB and more take non-temporal stores after an aligning
 * head (cast_f16_avx2.c); one whose elements are misaligned keeps plain
 * stores. */
static void large_widening_casts_match_the_scalar_loop(void **state) {
  (void)state;
  const int64_t n = ((int64_t)1 << 21) + 37; /* float32 destination > 8 MiB */
  uint16_t *h = malloc((size_t)n * sizeof *h);
  assert_non_null(h);
  for (int64_t i = 0; i < n; i++) h[i] = (uint16_t)(i * 40503);
  size_t bad = 0;
  bad += compare_skewed(h, F16, F32, n, 0, 0);
  bad += compare_skewed(h, F16, F32, n, 3, 0);
  bad += compare_skewed(h, F16, F32, n, 0, 2);
  bad += compare_skewed(h, BF16, F32, n, 0, 0);
  bad += compare_skewed(h, BF16, F32, n, 5, 0);
  bad += compare_skewed(h, BF16, F32, n, 1, 2);
  free(h);
  assert_int_equal(bad, 0);
}

static void float32_patterns_narrow_as_the_scalar_loop(void **state) {
  (void)state;
  size_t n = 0;
  uint32_t *p = float32_patterns((size_t)1 << 20, &n);
  size_t bad = 0;
  bad += compare(p, F32, F16, (int64_t)n, 0);
  bad += compare(p, F32, BF16, (int64_t)n, 1);
  for (int64_t len = 1; len <= 40; len++) {
    bad += compare(p + 0x1000, F32, F16, len, len & 1);
    bad += compare(p + 0x1000, F32, BF16, len, len & 1);
  }
  free(p);
  assert_int_equal(bad, 0);
}

/* The library's NaN rule, independently of the scalar loop: every NaN result
 * is quiet with its sign; narrowing drops the payload, widening keeps it. */
static void nan_results_are_quiet_with_their_sign(void **state) {
  (void)state;
  enum { N = 11 }; /* more than one vector, and a tail */
  uint32_t f[N];
  uint16_t h[N], b[N];
  const uint32_t nans[] = {0x7F800001, 0xFF800001, 0x7FC00000, 0xFFFFFFFF, 0x7FBFFFFF, 0xFF802000};
  for (size_t i = 0; i < N; i++) f[i] = nans[i % 6];
  cast_raw(f, F32, 1, h, F16, 1, N);
  cast_raw(f, F32, 1, b, BF16, 1, N);
  for (size_t i = 0; i < N; i++) {
    const uint16_t sign = (uint16_t)((f[i] >> 16) & 0x8000);
    assert_int_equal(h[i], sign | 0x7E00);
    assert_int_equal(b[i], sign | 0x7FC0);
  }
  const uint16_t hn[] = {0x7C01, 0xFC01, 0x7DFF, 0xFE00, 0x7FFF, 0x7C00};
  const uint16_t bn[] = {0x7F81, 0xFF81, 0x7FBF, 0xFFC0, 0x7FFF, 0xFF80};
  for (size_t i = 0; i < N; i++) h[i] = hn[i % 6];
  cast_raw(h, F16, 1, f, F32, 1, N);
  for (size_t i = 0; i < N; i++) {
    const uint32_t sign = (uint32_t)(h[i] & 0x8000) << 16, man = h[i] & 0x3FFu;
    assert_int_equal(f[i], sign | 0x7F800000u | (man != 0 ? 0x400000u | man << 13 : 0u));
  }
  for (size_t i = 0; i < N; i++) b[i] = bn[i % 6];
  cast_raw(b, BF16, 1, f, F32, 1, N);
  for (size_t i = 0; i < N; i++) {
    const uint32_t x = (uint32_t)b[i] << 16;
    assert_int_equal(f[i], (b[i] & 0x7F) != 0 ? x | 0x400000u : x);
  }
}

/* A 2-D copy whose rows are dense but padded: the kernel runs once per row,
 * every row with a tail, and the padding stays untouched. */
static void dense_rows_of_a_padded_matrix_take_the_kernel(void **state) {
  (void)state;
  enum { ROWS = 7, COLS = 37, PITCH = 41 };
  float src[ROWS][PITCH];
  uint16_t dst[ROWS][PITCH], want[ROWS * COLS * 2];
  uint64_t seed = 3;
  for (int i = 0; i < ROWS; i++) {
    for (int j = 0; j < PITCH; j++) {
      const uint32_t bits = (uint32_t)splitmix(&seed);
      memcpy(&src[i][j], &bits, sizeof bits);
    }
  }
  const DLDataType targets[] = {F16, BF16};
  for (size_t t = 0; t < 2; t++) {
    memset(dst, 0xAB, sizeof dst);
    const DLDevice host = {kDLCPU, 0};
    const int64_t shape[2] = {ROWS, COLS}, pitch[2] = {PITCH, 1};
    tb_tensor_t *s = NULL, *d = NULL;
    assert_ok(tb_from_array(src, 0, F32, 2, shape, pitch, host, 0, NULL, NULL, &s));
    assert_ok(tb_from_array(dst, 0, targets[t], 2, shape, pitch, host, 0, NULL, NULL, &d));
    assert_ok(tb_tensor_copy_into(d, s, 0));
    tb_tensor_release(d);
    tb_tensor_release(s);
    for (int i = 0; i < ROWS; i++) cast_raw(src[i], F32, 1, want + 2 * i * COLS, targets[t], 2, COLS);
    for (int i = 0; i < ROWS; i++) {
      for (int j = 0; j < PITCH; j++) {
        if (j < COLS) {
          assert_int_equal(dst[i][j], want[2 * (i * COLS + j)]);
        } else {
          assert_int_equal(dst[i][j], 0xABAB);
        }
      }
    }
  }
}

/* ---- every other pair: the contiguous loops against the strided ones ---- */

/* Random bit patterns of every castable dtype (mixed with small integers,
 * edges of every integer range and float specials, so saturation, wrap,
 * rounding ties and NaNs all occur), converted densely (the contiguous
 * loop) and into every second element (the strided loop): the same bytes. */
static void every_pair_converts_densely_as_the_strided_loop(void **state) {
  (void)state;
  static const DLDataType kinds[] = {
      {TB_DL_BOOL, 8, 1}, {kDLInt, 8, 1},     {kDLInt, 16, 1},    {kDLInt, 32, 1},
      {kDLInt, 64, 1},  {kDLUInt, 8, 1},    {kDLUInt, 16, 1},   {kDLUInt, 32, 1},
      {kDLUInt, 64, 1}, {kDLFloat, 16, 1},  {kDLBfloat, 16, 1}, {kDLFloat, 32, 1},
      {kDLFloat, 64, 1}, {kDLComplex, 64, 1}, {kDLComplex, 128, 1}};
  enum { N = 1031, K = sizeof kinds / sizeof *kinds };
  uint64_t seed = 0xC0FFEE;
  unsigned char *src = malloc(N * 16), *fast = malloc(N * 16), *ref = malloc(2 * N * 16);
  assert_non_null(src);
  assert_non_null(fast);
  assert_non_null(ref);
  for (size_t a = 0; a < K; a++) {
    const size_t sz = kinds[a].bits / 8;
    for (size_t i = 0; i < N * sz; i += 8) {
      const uint64_t r = splitmix(&seed);
      memcpy(src + i, &r, N * sz - i < 8 ? N * sz - i : 8);
    }
    if (kinds[a].code == TB_DL_BOOL) {
      for (size_t i = 0; i < N; i++) src[i] = (unsigned char)(src[i] % 3 == 0 ? 0 : src[i] & 1);
    }
    for (size_t i = 0; i < N; i += 5) { /* small and edge values */
      const int64_t v = (int64_t)(i % 7) - 3;
      if (kinds[a].code == kDLInt || kinds[a].code == kDLUInt) memcpy(src + i * sz, &v, sz);
      if (kinds[a].code == kDLFloat && sz == 4) {
        const float f = (float)v * 0.75f;
        memcpy(src + i * sz, &f, sz);
      }
      if (kinds[a].code == kDLFloat && sz == 8) {
        const double d = (double)v * 1e10;
        memcpy(src + i * sz, &d, sz);
      }
    }
    for (size_t b = 0; b < K; b++) {
      const size_t dz = kinds[b].bits / 8;
      const int64_t n = N, one = 1, two = 2;
      tb_tensor_t *s = NULL, *d = NULL, *r = NULL;
      assert_ok(tb_from_array(src, 0, kinds[a], 1, &n, &one, cpu(), 0, NULL, NULL, &s));
      assert_ok(tb_from_array(fast, 0, kinds[b], 1, &n, &one, cpu(), 0, NULL, NULL, &d));
      assert_ok(tb_from_array(ref, 0, kinds[b], 1, &n, &two, cpu(), 0, NULL, NULL, &r));
      assert_ok(tb_tensor_copy_into(d, s, TB_CAST_DISCARD_IMAG));
      assert_ok(tb_tensor_copy_into(r, s, TB_CAST_DISCARD_IMAG));
      for (size_t i = 0; i < N; i++) {
        if (memcmp(fast + i * dz, ref + 2 * i * dz, dz) != 0) {
          fail_msg("%s -> %s: element %zu differs", tb_dtype_name(kinds[a]),
                   tb_dtype_name(kinds[b]), i);
        }
      }
      tb_tensor_release(r);
      tb_tensor_release(d);
      tb_tensor_release(s);
    }
  }
  free(ref);
  free(fast);
  free(src);
}

/* ---- transposes and permutes ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng_next(void) { /* xorshift64 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* The dtype of each element size the engine moves. */
static DLDataType dtype_of_size(size_t e) {
  switch (e) {
    case 1: return dt(kDLUInt, 8);
    case 2: return dt(kDLInt, 16);
    case 4: return dt(kDLFloat, 32);
    case 8: return dt(kDLFloat, 64);
    default: return dt(kDLComplex, 128);
  }
}

/*
 * Wraps buf (random bytes, `len` of them) as a tensor of element size e with
 * the given shape, element strides and element offset, copies it into a
 * fresh C-order tensor through the library, and checks every element
 * against the address the strides give. Random bytes make NaNs of every
 * kind for the float sizes: a same-dtype copy must keep their bits.
 */
static void check_copy(size_t e, int32_t nd, const int64_t *shape, const int64_t *strides,
                       int64_t offset, const unsigned char *buf, size_t len) {
  tb_tensor_t *s = NULL, *d = NULL;
  const DLDataType type = dtype_of_size(e);
  assert_ok(tb_from_array((void *)(uintptr_t)buf, (uint64_t)offset * e, type, nd, shape, strides,
                          cpu(), TB_FLAG_READONLY, NULL, NULL, &s));
  assert_ok(tb_tensor_empty(type, nd, shape, cpu(), TB_ORDER_C, &d));
  assert_ok(tb_tensor_copy_into(d, s, 0));
  const unsigned char *out = tb_tensor_data(d);
  int64_t index[8] = {0}, numel = tb_tensor_numel(d);
  for (int64_t k = 0; k < numel; k++) {
    int64_t at = offset;
    for (int32_t i = 0; i < nd; i++) at += index[i] * strides[i];
    assert_true(at >= 0 && (size_t)(at + 1) * e <= len);
    if (memcmp(out + (size_t)k * e, buf + (size_t)at * e, e) != 0) {
      print_message("element %lld (e = %zu, ndim %d, shape[0] %lld) differs\n", (long long)k, e,
                    (int)nd, (long long)shape[0]);
      fail();
    }
    for (int32_t i = nd - 1; i >= 0; i--) {
      if (++index[i] < shape[i]) break;
      index[i] = 0;
    }
  }
  tb_tensor_release(d);
  tb_tensor_release(s);
}

static unsigned char *random_bytes(size_t len) {
  unsigned char *p = malloc(len);
  assert_non_null(p);
  for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(rng_next() >> 56);
  return p;
}

/* dst(r, c) = a(c, r) for a C-order (cols x ld) buffer, ld >= rows: the
 * transposed view, also walked backwards along either dimension. */
static void transpose_case(size_t e, int64_t rows, int64_t cols, int64_t ld) {
  const size_t len = (size_t)(cols * ld) * e;
  unsigned char *buf = random_bytes(len);
  const int64_t shape[2] = {rows, cols};
  const int64_t plain[2] = {1, ld};
  check_copy(e, 2, shape, plain, 0, buf, len);
  const int64_t back_cols[2] = {1, -ld}; /* source rows in reverse */
  check_copy(e, 2, shape, back_cols, (cols - 1) * ld, buf, len);
  const int64_t back_rows[2] = {-1, ld}; /* each source row backwards */
  check_copy(e, 2, shape, back_rows, rows - 1, buf, len);
  free(buf);
}

static void transposes_of_every_size_match_address_arithmetic(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 2, 4, 8, 16};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    const size_t e = sizes[s];
    /* Shapes around every tile (16, 8, 4, 2 elements) and block edge. */
    static const int64_t fixed[][2] = {{1, 1},   {1, 40},  {40, 1},  {15, 17}, {16, 16},
                                       {17, 15}, {31, 33}, {64, 64}, {65, 63}, {129, 257},
                                       {300, 7}, {7, 300}};
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
      transpose_case(e, fixed[k][0], fixed[k][1], fixed[k][0]);
      transpose_case(e, fixed[k][0], fixed[k][1], fixed[k][0] + 3); /* padded rows */
    }
    for (int k = 0; k < 40; k++) {
      const int64_t rows = 1 + (int64_t)(rng_next() % 90), cols = 1 + (int64_t)(rng_next() % 90);
      transpose_case(e, rows, cols, rows + (int64_t)(rng_next() % 5));
    }
  }
}

/* NCHW -> NHWC and friends: permuted views of a C-order buffer. */
static void permutes_match_address_arithmetic(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 2, 4, 8};
  static const int64_t dims[][4] = {{2, 3, 5, 7}, {1, 16, 17, 9}, {3, 67, 4, 33}, {2, 64, 8, 8}};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
      const int64_t N = dims[k][0], C = dims[k][1], H = dims[k][2], W = dims[k][3];
      const size_t len = (size_t)(N * C * H * W) * sizes[s];
      unsigned char *buf = random_bytes(len);
      const int64_t nhwc[4] = {N, H, W, C};
      const int64_t from_nchw[4] = {C * H * W, W, 1, H * W};
      check_copy(sizes[s], 4, nhwc, from_nchw, 0, buf, len);
      const int64_t nchw[4] = {N, C, H, W}; /* and back: the buffer read as NHWC */
      const int64_t from_nhwc[4] = {H * W * C, 1, W * C, C};
      check_copy(sizes[s], 4, nchw, from_nhwc, 0, buf, len);
      const int64_t cwh[3] = {C, W, H}; /* a 3-D permute of one image */
      const int64_t from_hwc[3] = {1, C, W * C};
      check_copy(sizes[s], 3, cwh, from_hwc, 0, buf, len);
      free(buf);
    }
  }
}

/* A destination whose rows overlap (row stride 24 elements, 40 columns),
 * from a transposed source: written in C order, the last write winning, the
 * same at every level (no tile or kernel store order shows through). */
static void an_overlapping_destination_keeps_c_order(void **state) {
  (void)state;
  enum { R = 50, C = 40, LD = 24 };
  float src[C][R], want[(R - 1) * LD + C], got[(R - 1) * LD + C];
  for (int j = 0; j < C; j++) {
    for (int i = 0; i < R; i++) src[j][i] = (float)(j * 1000 + i);
  }
  memset(want, 0, sizeof want);
  memset(got, 0, sizeof got);
  for (int i = 0; i < R; i++) {
    for (int j = 0; j < C; j++) want[i * LD + j] = src[j][i];
  }
  const int64_t shape[2] = {R, C}, sst[2] = {1, R}, dst_strides[2] = {LD, 1};
  tb_tensor_t *s = NULL, *d = NULL;
  assert_ok(tb_from_array(src, 0, F32, 2, shape, sst, cpu(), 0, NULL, NULL, &s));
  assert_ok(tb_from_array(got, 0, F32, 2, shape, dst_strides, cpu(), 0, NULL, NULL, &d));
  assert_ok(tb_tensor_copy_into(d, s, 0));
  assert_memory_equal(got, want, sizeof want);
  tb_tensor_release(d);
  tb_tensor_release(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_float16_and_bfloat16_widens_as_the_scalar_loop),
      cmocka_unit_test(large_widening_casts_match_the_scalar_loop),
      cmocka_unit_test(float32_patterns_narrow_as_the_scalar_loop),
      cmocka_unit_test(nan_results_are_quiet_with_their_sign),
      cmocka_unit_test(dense_rows_of_a_padded_matrix_take_the_kernel),
      cmocka_unit_test(every_pair_converts_densely_as_the_strided_loop),
      cmocka_unit_test(transposes_of_every_size_match_address_arithmetic),
      cmocka_unit_test(permutes_match_address_arithmetic),
      cmocka_unit_test(an_overlapping_destination_keeps_c_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
