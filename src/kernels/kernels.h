/*
 * Vector kernels for the copy engine, chosen once per process by CPU level.
 *
 * Levels: TB_CPU_C (portable C the compiler may vectorise) and, on x86-64,
 * TB_CPU_AVX2 (AVX2 + F16C). The level in use is the best the CPU supports,
 * lowered by the environment variable TB_CPU_LEVEL ("c" or "avx2"; any other
 * value means auto), read once at first use. Every level gives the same bits
 * as the scalar loops of cast.c, NaN rule included (every NaN result quiet,
 * sign kept; float32 -> float16/bfloat16 drop the payload, widening keeps it).
 */
#ifndef TB_KERNELS_H
#define TB_KERNELS_H

#include "cast.h"

typedef enum tb_cpu_level { TB_CPU_C = 0, TB_CPU_AVX2 = 1, TB_CPU_LEVEL_COUNT } tb_cpu_level;

/* The best level this CPU (and this build) supports. */
TB_INTERNAL tb_cpu_level tb__cpu_level_supported(void);

/* The level in use: tb__cpu_level_supported lowered by TB_CPU_LEVEL. */
TB_INTERNAL tb_cpu_level tb__cpu_level(void);

/* "c", "avx2". */
TB_INTERNAL const char *tb__cpu_level_name(tb_cpu_level level);

/*
 * A loop converting n contiguous elements from `from` to `to` at `level`, or
 * NULL when that level has none for the pair (or the CPU lacks the level).
 * It has tb_cast_loop_fn's signature but ignores the strides: call it only
 * when the source and destination strides equal their itemsizes.
 */
TB_INTERNAL tb_cast_loop_fn tb__contig_cast_at(tb_cpu_level level, tb_cast_kind from,
                                               tb_cast_kind to);

/* tb__contig_cast_at(tb__cpu_level(), from, to). */
TB_INTERNAL tb_cast_loop_fn tb__contig_cast(tb_cast_kind from, tb_cast_kind to);

/* The kernels themselves (cast_f16_c.c, cast_f16_avx2.c). */
TB_INTERNAL void tb__f32_to_f16_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f16_to_f32_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_bf16_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__bf16_to_f32_c(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
#if defined(__x86_64__)
#define TB_HAVE_AVX2_KERNELS 1
TB_INTERNAL void tb__f32_to_f16_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f16_to_f32_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__f32_to_bf16_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
TB_INTERNAL void tb__bf16_to_f32_avx2(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);
#endif

#endif
