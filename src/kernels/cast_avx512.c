/*
 * The AVX-512 level (F, DQ, BW, VL; x86-64 only, compiled function by
 * function for those instructions and run only after dispatch.c has checked
 * the CPU): 64-bit integers to floating point, which no earlier x86 vector
 * ISA converts. vcvt[u]qq2ps/pd round once, to nearest even (the MXCSR
 * default, as the scalar path's conversions), so every lane gives the bits
 * of cast_ops.h; the tail goes through cast_ops.h itself.
 *
 * Valgrind does not emulate AVX-512 and reports a CPU without it, so under
 * valgrind this level is never chosen (the scalar path stays exact there).
 */
#include "kernels/cast_ops.h"
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
#endif
