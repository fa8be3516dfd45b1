/*
 * Vector kernels for the copy engine, chosen once per process by CPU level.
 *
 * Levels: TB_CPU_C (portable C the compiler may vectorise), TB_CPU_NEON on
 * AArch64 (Advanced SIMD, always there) and, on x86-64,
 * TB_CPU_SSE2 (the x86-64 baseline, always there), TB_CPU_AVX2 (AVX2 +
 * F16C) and TB_CPU_AVX512 (AVX2 + F16C + AVX-512 F, DQ, BW, VL). The level
 * in use is the best the CPU supports, or the one the environment variable
 * TB_CPU_LEVEL names ("c", "sse2", "avx2", "avx512", "neon") when the CPU
 * has it (any other value means auto), read once at first use. A level
 * without a kernel of its own for some operation uses the next level down.
 * Every level gives the same bits as the scalar loops of cast.c, NaN rule
 * included (every NaN result quiet, sign kept; float32 -> float16/bfloat16
 * drop the payload, widening keeps it); transposes move bits only.
 */
#ifndef TB_KERNELS_H
#define TB_KERNELS_H

#include <string.h>

#include "cast.h"

typedef enum tb_cpu_level {
  TB_CPU_C = 0,
  TB_CPU_SSE2 = 1,
  TB_CPU_AVX2 = 2,
  TB_CPU_AVX512 = 3,
  TB_CPU_NEON = 4,
  TB_CPU_LEVEL_COUNT
} tb_cpu_level;

/* Whether this CPU (and this build) can run `level`. */
TB_INTERNAL bool tb__cpu_level_available(tb_cpu_level level);

/* The best level this CPU (and this build) supports. */
TB_INTERNAL tb_cpu_level tb__cpu_level_supported(void);

/* The level in use: tb__cpu_level_supported lowered by TB_CPU_LEVEL. */
TB_INTERNAL tb_cpu_level tb__cpu_level(void);

/* "c", "sse2", "avx2", "avx512", "neon". */
TB_INTERNAL const char *tb__cpu_level_name(tb_cpu_level level);

/*
 * A loop converting n contiguous elements from `from` to `to` at `level`
 * (the level's own kernel for the pair, else the portable contiguous loop),
 * or NULL when the CPU lacks the level.
 * It has tb_cast_loop_fn's signature but ignores the strides: call it only
 * when the source and destination strides equal their itemsizes.
 */
TB_INTERNAL tb_cast_loop_fn tb__contig_cast_at(tb_cpu_level level, tb_cast_kind from,
                                               tb_cast_kind to);

/* Defines `name`, a contiguous loop (tb_cast_loop_fn's signature, strides
 * ignored) applying convert (a function or function-like macro) to each
 * element; loads and stores through memcpy, so any alignment is fine and
 * the compiler may vectorise. Prefix `static` for a file-local loop. */
#define TB_CONTIG_KERNEL(name, in_t, out_t, convert)                                         \
  void name(const char *restrict src, int64_t ss, char *restrict dst, int64_t ds, int64_t n) { \
    (void)ss;                                                                                \
    (void)ds;                                                                                \
    for (int64_t i = 0; i < n; i++) {                                                        \
      in_t x;                                                                                \
      memcpy(&x, src + i * (int64_t)sizeof x, sizeof x);                                     \
      const out_t y = convert(x);                                                            \
      memcpy(dst + i * (int64_t)sizeof y, &y, sizeof y);                                     \
    }                                                                                        \
  }

/* The portable contiguous loop for any pair (cast_contig.c), or NULL for a
 * kind out of range; what tb__contig_cast_at answers where a level has no
 * kernel of its own. */
TB_INTERNAL tb_cast_loop_fn tb__contig_cast_generic(tb_cast_kind from, tb_cast_kind to);

/* tb__contig_cast_at(tb__cpu_level(), from, to). */
TB_INTERNAL tb_cast_loop_fn tb__contig_cast(tb_cast_kind from, tb_cast_kind to);

/* The kernels themselves (cast_f16_c.c, cast_f16_avx2.c). */
TB_INTERNAL void tb__f32_to_f16_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f16_to_f32_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_bf16_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__bf16_to_f32_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);

/*
 * Transposes (transpose.c, transpose_avx2.c, transpose_neon.c; the driver
 * is transpose.h's):
 * dst + r * dst_ld + c * E <- src + c * src_ld + r * E for r < rows,
 * c < cols, elements of E = itemsize bytes (1, 2, 4, 8 or 16); the leading
 * dimensions are byte strides, src_ld possibly negative. The two sides do
 * not overlap.
 */
typedef void (*tb_transpose_fn)(const char *src, int64_t src_ld, char *dst, int64_t dst_ld,
                                int64_t rows, int64_t cols);

/* The transpose for `itemsize` at `level` (or the best level below it with
 * one); NULL when the CPU lacks `level` or no level has one. */
TB_INTERNAL tb_transpose_fn tb__transpose_at(tb_cpu_level level, size_t itemsize);

/* tb__transpose_at(tb__cpu_level(), itemsize). */
TB_INTERNAL tb_transpose_fn tb__transpose(size_t itemsize);

#define TB_DECLARE_TRANSPOSE(name) \
  TB_INTERNAL void name(const char *src, int64_t src_ld, char *dst, int64_t dst_ld, int64_t rows, \
                        int64_t cols);
TB_DECLARE_TRANSPOSE(tb__transpose_c_1)
TB_DECLARE_TRANSPOSE(tb__transpose_c_2)
TB_DECLARE_TRANSPOSE(tb__transpose_c_4)
TB_DECLARE_TRANSPOSE(tb__transpose_c_8)
TB_DECLARE_TRANSPOSE(tb__transpose_c_16)

#if defined(__x86_64__)
#define TB_HAVE_SSE2_KERNELS 1
TB_DECLARE_TRANSPOSE(tb__transpose_sse2_1)
TB_DECLARE_TRANSPOSE(tb__transpose_sse2_2)
TB_DECLARE_TRANSPOSE(tb__transpose_sse2_4)
TB_DECLARE_TRANSPOSE(tb__transpose_sse2_8)
#define TB_HAVE_AVX2_KERNELS 1
TB_DECLARE_TRANSPOSE(tb__transpose_avx2_4)
TB_DECLARE_TRANSPOSE(tb__transpose_avx2_8)
#define TB_HAVE_AVX512_KERNELS 1
TB_INTERNAL void tb__i64_to_f32_avx512(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__u64_to_f32_avx512(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__i64_to_f64_avx512(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__u64_to_f64_avx512(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_f16_avx512(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_bf16_avx512(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_f16_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f16_to_f32_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_bf16_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__bf16_to_f32_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#define TB_HAVE_NEON_KERNELS 1
TB_DECLARE_TRANSPOSE(tb__transpose_neon_1)
TB_DECLARE_TRANSPOSE(tb__transpose_neon_2)
TB_DECLARE_TRANSPOSE(tb__transpose_neon_4)
TB_DECLARE_TRANSPOSE(tb__transpose_neon_8)
#endif

#endif
