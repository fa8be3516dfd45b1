/*
 * The AVX2 + F16C level (x86-64 only; compiled for those instructions
 * function by function, so the rest of the library keeps the baseline ISA and
 * these run only after dispatch.c has checked the CPU).
 *
 * vcvtps2ph rounds to nearest even and handles subnormals and overflow as
 * the scalar path does, but keeps a NaN's top payload bits, where the library
 * gives sign | 0x7E00: NaN lanes are replaced. vcvtph2ps is exact and quiets
 * a signalling NaN keeping its payload, as the scalar path does. bfloat16 is
 * integer rounding on the bits, 8 lanes at a time.
 */
#include "kernels/kernels.h"

#if defined(TB_HAVE_AVX2_KERNELS)
#include <immintrin.h>

#include "kernels/half_bits.h"

#define TB_TARGET_AVX2_F16C __attribute__((target("avx2,f16c")))

/* All ones in the 32-bit lanes holding a NaN. */
TB_TARGET_AVX2_F16C static inline __m256i tb_nan_lanes(__m256i x) {
  const __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7FFFFFFF));
  return _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
}

/* The low 16 bits of each 32-bit lane (each lane <= 0xFFFF), in order. */
TB_TARGET_AVX2_F16C static inline __m128i tb_narrow16(__m256i v) {
  return _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

/*
 * Widening casts into large destinations (TB_STREAM_BYTES or more) write with
 * non-temporal stores, as memcpy does: they skip reading each destination
 * line before writing it and do not evict the cache for data that will not
 * fit anyway (measured: 2^24 float16 -> float32 went from 7.6 to 3.5-4.3 ms;
 * the narrowing casts did not gain, so they keep plain stores). The first
 * elements go one by one until the destination is aligned (a destination
 * not aligned to its element size keeps plain stores).
 */
#define TB_STREAM_BYTES (INT64_C(8) << 20)

/* The elements to convert one by one before dst + that many elements of
 * `size` bytes is aligned to `align`, or -1 when it never is (or the
 * destination is small). */
static int64_t tb_stream_head(const char *dst, int64_t n, int64_t size, int64_t align) {
  if (n * size < TB_STREAM_BYTES) return -1;
  const uintptr_t mis = (uintptr_t)dst & (uintptr_t)(align - 1);
  if (mis % (uintptr_t)size != 0) return -1;
  return mis == 0 ? 0 : (int64_t)(((uintptr_t)align - mis) / (uintptr_t)size);
}

TB_TARGET_AVX2_F16C static inline __m128i tb_f32x8_to_f16x8(__m256i x) {
  __m128i h = _mm256_cvtps_ph(_mm256_castsi256_ps(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i nan = tb_nan_lanes(x);
  const __m256i quiet = _mm256_or_si256(
      _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x8000)),
      _mm256_set1_epi32(0x7E00));
  return _mm_blendv_epi8(h, tb_narrow16(quiet), tb_narrow16(_mm256_srli_epi32(nan, 16)));
}

TB_TARGET_AVX2_F16C static inline __m128i tb_f32x8_to_bf16x8(__m256i x) {
  const __m256i hi = _mm256_srli_epi32(x, 16);
  const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i q = _mm256_or_si256(_mm256_and_si256(hi, _mm256_set1_epi32(0x8000)),
                                    _mm256_set1_epi32(0x7FC0));
  return tb_narrow16(_mm256_blendv_epi8(r, q, tb_nan_lanes(x)));
}

/* The one loop of both narrowing casts: 8 lanes through `vec`, the tail
 * through `one`. Always inlined, as tb_widen16 below. */
__attribute__((always_inline)) TB_TARGET_AVX2_F16C static inline void tb_narrow32(
    const char *src, char *dst, int64_t n, __m128i (*vec)(__m256i), uint16_t (*one)(uint32_t)) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(src + 4 * i));
    _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i), vec(x));
  }
  for (; i < n; i++) {
    uint32_t x;
    memcpy(&x, src + 4 * i, sizeof x);
    const uint16_t h = one(x);
    memcpy(dst + 2 * i, &h, sizeof h);
  }
}

TB_TARGET_AVX2_F16C void tb__f32_to_f16_avx2(const char *src, int64_t ss, char *dst, int64_t ds,
                                             int64_t n) {
  (void)ss;
  (void)ds;
  tb_narrow32(src, dst, n, tb_f32x8_to_f16x8, tb_f16_bits_from_f32_bits);
}

TB_TARGET_AVX2_F16C void tb__f32_to_bf16_avx2(const char *src, int64_t ss, char *dst,
                                              int64_t ds, int64_t n) {
  (void)ss;
  (void)ds;
  tb_narrow32(src, dst, n, tb_f32x8_to_bf16x8, tb_bf16_bits_from_f32_bits);
}

TB_TARGET_AVX2_F16C static inline __m256i tb_f16x8_to_f32x8(__m128i h) {
  return _mm256_castps_si256(_mm256_cvtph_ps(h));
}

TB_TARGET_AVX2_F16C static inline __m256i tb_bf16x8_to_f32x8(__m128i h) {
  const __m256i x = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
  return _mm256_or_si256(x, _mm256_and_si256(tb_nan_lanes(x), _mm256_set1_epi32(0x400000)));
}

/* The one loop of both widening casts: 8 lanes through `vec`, the elements
 * before an aligned streaming destination and the tail through `one`.
 * Always inlined, so that each caller's conversions are inlined into it. */
__attribute__((always_inline)) TB_TARGET_AVX2_F16C static inline void tb_widen16(
    const char *src, char *dst, int64_t n, __m256i (*vec)(__m128i), uint32_t (*one)(uint16_t)) {
  int64_t i = 0;
  const int64_t head = tb_stream_head(dst, n, 4, 32);
  for (; i < head; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, sizeof h);
    const uint32_t x = one(h);
    memcpy(dst + 4 * i, &x, sizeof x);
  }
  if (head >= 0) {
    for (; i + 8 <= n; i += 8) {
      const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
      _mm256_stream_si256((__m256i *)(void *)(dst + 4 * i), vec(h));
    }
    _mm_sfence();
  }
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
    _mm256_storeu_si256((__m256i *)(void *)(dst + 4 * i), vec(h));
  }
  for (; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, sizeof h);
    const uint32_t x = one(h);
    memcpy(dst + 4 * i, &x, sizeof x);
  }
}

TB_TARGET_AVX2_F16C void tb__f16_to_f32_avx2(const char *src, int64_t ss, char *dst, int64_t ds,
                                             int64_t n) {
  (void)ss;
  (void)ds;
  tb_widen16(src, dst, n, tb_f16x8_to_f32x8, tb_f32_bits_from_f16_bits);
}

TB_TARGET_AVX2_F16C void tb__bf16_to_f32_avx2(const char *src, int64_t ss, char *dst,
                                              int64_t ds, int64_t n) {
  (void)ss;
  (void)ds;
  tb_widen16(src, dst, n, tb_bf16x8_to_f32x8, tb_f32_bits_from_bf16_bits);
}

#endif
