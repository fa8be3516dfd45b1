/*
 * The AVX-512 level (F, DQ, BW, VL; x86-64 only, compiled function by
 * function for those instructions and run only after dispatch.c has checked
 * the CPU): 64-bit integers to floating point, which no earlier x86 vector
 * ISA converts. vcvt[u]qq2ps/pd round once, to nearest even (the MXCSR
 * default, as the scalar path's conversions), so every lane gives the bits
 * of cast_ops.h; the tail goes through cast_ops.h itself. And float32 to
 * float16/bfloat16 16 lanes at a time, with the AVX2 level's rounding
 * (vcvtps2ph; integer RNE for bfloat16) and NaN rule, NaN lanes picked by a
 * mask register.
 *
 * Valgrind does not emulate AVX-512 and reports a CPU without it, so under
 * valgrind this level is never chosen (the scalar path stays exact there).
 */
#include "kernels/cast_ops.h"
#include "kernels/half_bits.h"
#include "kernels/kernels.h"

#if defined(TB_HAVE_AVX512_KERNELS)
#include <immintrin.h>

#define TB_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

#define TB_Q_KERNEL(name, in_t, out_t, convert, store, scalar)                                \
  TB_AVX512 void name(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n) {      \
    (void)ss;                                                                                 \
    (void)ds;                                                                                 \
    int64_t i = 0;                                                                            \
    for (; i + 8 <= n; i += 8) {                                                              \
      const __m512i x = _mm512_loadu_si512((const void *)(src + 8 * i));                      \
      store((void *)(dst + (int64_t)sizeof(out_t) * i), convert(x));                          \
    }                                                                                         \
    for (; i < n; i++) {                                                                      \
      in_t x;                                                                                 \
      memcpy(&x, src + 8 * i, sizeof x);                                                      \
      const out_t y = scalar(x);                                                              \
      memcpy(dst + (int64_t)sizeof(out_t) * i, &y, sizeof y);                                 \
    }                                                                                         \
  }

TB_AVX512 static inline void tb_store8f(void *p, __m256 v) { _mm256_storeu_ps((float *)p, v); }
TB_AVX512 static inline void tb_store8d(void *p, __m512d v) { _mm512_storeu_pd((double *)p, v); }

TB_Q_KERNEL(tb__i64_to_f32_avx512, int64_t, float, _mm512_cvtepi64_ps, tb_store8f, tb_f32_from_s)
TB_Q_KERNEL(tb__u64_to_f32_avx512, uint64_t, float, _mm512_cvtepu64_ps, tb_store8f, tb_f32_from_u)
TB_Q_KERNEL(tb__i64_to_f64_avx512, int64_t, double, _mm512_cvtepi64_pd, tb_store8d, tb_f64_from_s)
TB_Q_KERNEL(tb__u64_to_f64_avx512, uint64_t, double, _mm512_cvtepu64_pd, tb_store8d, tb_f64_from_u)

/* sign | quiet: the library's NaN result, in each 32-bit lane's low half. */
TB_AVX512 static inline __m512i tb_quiet16(__m512i x, int quiet) {
  return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x8000)),
                         _mm512_set1_epi32(quiet));
}

TB_AVX512 static inline __m256i tb_f32x16_to_f16x16(__m512i x) {
  const __m256i h =
      _mm512_cvtps_ph(_mm512_castsi512_ps(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(x), _mm512_castsi512_ps(x),
                                           _CMP_UNORD_Q);
  return _mm256_mask_blend_epi16(nan, h, _mm512_cvtepi32_epi16(tb_quiet16(x, 0x7E00)));
}

TB_AVX512 static inline __m256i tb_f32x16_to_bf16x16(__m512i x) {
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(x), _mm512_castsi512_ps(x),
                                           _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, tb_quiet16(x, 0x7FC0));
  return _mm512_cvtepi32_epi16(r);
}

#define TB_NARROW_KERNEL(name, vec, one)                                                  \
  TB_AVX512 void name(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n) {  \
    (void)ss;                                                                             \
    (void)ds;                                                                             \
    int64_t i = 0;                                                                        \
    for (; i + 16 <= n; i += 16) {                                                        \
      const __m512i x = _mm512_loadu_si512((const void *)(src + 4 * i));                  \
      _mm256_storeu_si256((__m256i *)(void *)(dst + 2 * i), vec(x));                      \
    }                                                                                     \
    for (; i < n; i++) {                                                                  \
      uint32_t x;                                                                         \
      memcpy(&x, src + 4 * i, sizeof x);                                                  \
      const uint16_t h = one(x);                                                          \
      memcpy(dst + 2 * i, &h, sizeof h);                                                  \
    }                                                                                     \
  }
TB_NARROW_KERNEL(tb__f32_to_f16_avx512, tb_f32x16_to_f16x16, tb_f16_bits_from_f32_bits)
TB_NARROW_KERNEL(tb__f32_to_bf16_avx512, tb_f32x16_to_bf16x16, tb_bf16_bits_from_f32_bits)
#endif
