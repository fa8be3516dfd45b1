/*
 * Transposes at the AVX2 level (x86-64; compiled for AVX2 function by
 * function, run only after dispatch.c has checked the CPU). Bits only move
 * (unpack, shuffle and lane-permute instructions), whatever the element type.
 */
#include "kernels/transpose.h"

#if defined(TB_HAVE_AVX2_KERNELS)
#include <immintrin.h>

#define TB_TARGET_AVX2 __attribute__((target("avx2")))
#define TB_LOAD8(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define TB_STORE8(p, v) _mm256_storeu_ps((float *)(void *)(p), (v))

/* 8 x 8 of 32 bits: interleave pairs of rows, then pairs of pairs (each
 * 128-bit lane now holds a 4 x 4 quarter), then swap the off-diagonal lanes. */
TB_TARGET_AVX2 TB_ALWAYS_INLINE void tb_micro_avx2_4(const char *src, int64_t src_ld, char *dst,
                                                     int64_t dst_ld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = TB_LOAD8(src + i * src_ld);
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int q = 0; q < 2; q++) { /* rows 0-3, rows 4-7 */
    r[4 * q + 0] = _mm256_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0x44);
    r[4 * q + 1] = _mm256_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0xEE);
    r[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    r[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  for (int k = 0; k < 4; k++) {
    TB_STORE8(dst + k * dst_ld, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
    TB_STORE8(dst + (k + 4) * dst_ld, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
  }
}

/* 4 x 4 of 64 bits. */
TB_TARGET_AVX2 TB_ALWAYS_INLINE void tb_micro_avx2_8(const char *src, int64_t src_ld, char *dst,
                                                     int64_t dst_ld) {
  const __m256d r0 = _mm256_loadu_pd((const double *)(const void *)src);
  const __m256d r1 = _mm256_loadu_pd((const double *)(const void *)(src + src_ld));
  const __m256d r2 = _mm256_loadu_pd((const double *)(const void *)(src + 2 * src_ld));
  const __m256d r3 = _mm256_loadu_pd((const double *)(const void *)(src + 3 * src_ld));
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd((double *)(void *)dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd((double *)(void *)(dst + dst_ld), _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd((double *)(void *)(dst + 2 * dst_ld), _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd((double *)(void *)(dst + 3 * dst_ld), _mm256_permute2f128_pd(t1, t3, 0x31));
}

TB_DEFINE_TRANSPOSE(TB_TARGET_AVX2, avx2, 4, 8)
TB_DEFINE_TRANSPOSE(TB_TARGET_AVX2, avx2, 8, 4)
#endif
