/*
 * The one place that picks a kernel level (kernels.h): the CPU is probed and
 * TB_CPU_LEVEL read once, at the first call; a race between first calls is
 * harmless (every thread computes the same answer). The library never prints:
 * an unknown TB_CPU_LEVEL value silently means auto.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#if defined(TB_HAVE_AVX2_KERNELS)
#include <cpuid.h>
#endif

/* AVX2 through the compiler's probe, which also checks that the OS saves the
 * AVX registers; F16C (CPUID leaf 1, ECX bit 29) by hand, since not every
 * compiler's __builtin_cpu_supports knows "f16c" (clang 14 does not). */
static tb_cpu_level tb_probe_cpu(void) {
#if defined(TB_HAVE_AVX2_KERNELS)
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  if (__builtin_cpu_supports("avx2") && f16c) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
      return TB_CPU_AVX512;
    }
    return TB_CPU_AVX2;
  }
#endif
#if defined(TB_HAVE_SSE2_KERNELS)
  return TB_CPU_SSE2;
#elif defined(TB_HAVE_NEON_KERNELS)
  return TB_CPU_NEON;
#else
  return TB_CPU_C;
#endif
}

/* cpuid is slow under a hypervisor (each one exits to it): probe once. */
static atomic_int tb_level_supported = -1;

tb_cpu_level tb__cpu_level_supported(void) {
  int level = atomic_load_explicit(&tb_level_supported, memory_order_relaxed);
  if (level < 0) {
    level = (int)tb_probe_cpu();
    atomic_store_explicit(&tb_level_supported, level, memory_order_relaxed);
  }
  return (tb_cpu_level)level;
}

bool tb__cpu_level_available(tb_cpu_level level) {
  switch (level) {
    case TB_CPU_C: return true;
#if defined(TB_HAVE_SSE2_KERNELS)
    case TB_CPU_SSE2: return true;
#endif
#if defined(TB_HAVE_AVX2_KERNELS)
    case TB_CPU_AVX2: return tb__cpu_level_supported() >= TB_CPU_AVX2;
#endif
#if defined(TB_HAVE_AVX512_KERNELS)
    case TB_CPU_AVX512: return tb__cpu_level_supported() >= TB_CPU_AVX512;
#endif
#if defined(TB_HAVE_NEON_KERNELS)
    case TB_CPU_NEON: return true;
#endif
    default: return false;
  }
}

const char *tb__cpu_level_name(tb_cpu_level level) {
  switch (level) {
    case TB_CPU_C: return "c";
    case TB_CPU_SSE2: return "sse2";
    case TB_CPU_AVX2: return "avx2";
    case TB_CPU_AVX512: return "avx512";
    case TB_CPU_NEON: return "neon";
    default: return "?";
  }
}

static atomic_int tb_level_in_use = -1;

tb_cpu_level tb__cpu_level(void) {
  int level = atomic_load_explicit(&tb_level_in_use, memory_order_relaxed);
  if (level >= 0) return (tb_cpu_level)level;
  level = (int)tb__cpu_level_supported();
  const char *env = getenv("TB_CPU_LEVEL");
  if (env != NULL) {
    for (int l = 0; l < (int)TB_CPU_LEVEL_COUNT; l++) {
      if (strcmp(env, tb__cpu_level_name((tb_cpu_level)l)) == 0 &&
          tb__cpu_level_available((tb_cpu_level)l)) {
        level = l;
      }
    }
  }
  atomic_store_explicit(&tb_level_in_use, level, memory_order_relaxed);
  return (tb_cpu_level)level;
}

tb_cast_loop_fn tb__contig_cast_at(tb_cpu_level level, tb_cast_kind from, tb_cast_kind to) {
  if ((int)level < 0 || (int)level >= (int)TB_CPU_LEVEL_COUNT ||
      !tb__cpu_level_available(level)) {
    return NULL;
  }
  /* The pairs with kernels of their own. */
  static const struct {
    tb_cast_kind from, to;
  } pairs[] = {{TB_K_F32, TB_K_F16}, {TB_K_F16, TB_K_F32}, {TB_K_F32, TB_K_BF16},
               {TB_K_BF16, TB_K_F32}, {TB_K_I64, TB_K_F32}, {TB_K_U64, TB_K_F32},
               {TB_K_I64, TB_K_F64},  {TB_K_U64, TB_K_F64}};
  enum { PAIRS = sizeof pairs / sizeof *pairs };
  static const tb_cast_loop_fn table[TB_CPU_LEVEL_COUNT][PAIRS] = {
      [TB_CPU_C] = {tb__f32_to_f16_c, tb__f16_to_f32_c, tb__f32_to_bf16_c, tb__bf16_to_f32_c},
#if defined(TB_HAVE_AVX2_KERNELS)
      [TB_CPU_AVX2] = {tb__f32_to_f16_avx2, tb__f16_to_f32_avx2, tb__f32_to_bf16_avx2,
                       tb__bf16_to_f32_avx2},
#endif
#if defined(TB_HAVE_AVX512_KERNELS)
      [TB_CPU_AVX512] = {tb__f32_to_f16_avx512, NULL, tb__f32_to_bf16_avx512, NULL,
                         tb__i64_to_f32_avx512, tb__u64_to_f32_avx512, tb__i64_to_f64_avx512,
                         tb__u64_to_f64_avx512},
#endif
  };
  for (int p = 0; p < (int)PAIRS; p++) {
    if (pairs[p].from != from || pairs[p].to != to) continue;
    /* The best kernel at or below the level (SSE2 has no half-precision
     * instructions: its half casts are the C level's). */
    for (int l = (int)level; l >= 0; l--) {
      if (table[l][p] != NULL) return table[l][p];
    }
  }
  return tb__contig_cast_generic(from, to);
}

tb_cast_loop_fn tb__contig_cast(tb_cast_kind from, tb_cast_kind to) {
  return tb__contig_cast_at(tb__cpu_level(), from, to);
}

tb_transpose_fn tb__transpose_at(tb_cpu_level level, size_t itemsize) {
  if ((int)level < 0 || (int)level >= (int)TB_CPU_LEVEL_COUNT ||
      !tb__cpu_level_available(level)) {
    return NULL;
  }
  /* Index by log2(itemsize): 1, 2, 4, 8, 16 bytes. */
  int k;
  switch (itemsize) {
    case 1: k = 0; break;
    case 2: k = 1; break;
    case 4: k = 2; break;
    case 8: k = 3; break;
    case 16: k = 4; break;
    default: return NULL;
  }
  static const tb_transpose_fn table[TB_CPU_LEVEL_COUNT][5] = {
      [TB_CPU_C] = {tb__transpose_c_1, tb__transpose_c_2, tb__transpose_c_4, tb__transpose_c_8,
                    tb__transpose_c_16},
#if defined(TB_HAVE_SSE2_KERNELS)
      [TB_CPU_SSE2] = {tb__transpose_sse2_1, tb__transpose_sse2_2, tb__transpose_sse2_4,
                       tb__transpose_sse2_8, NULL},
#endif
#if defined(TB_HAVE_AVX2_KERNELS)
      [TB_CPU_AVX2] = {NULL, NULL, tb__transpose_avx2_4, tb__transpose_avx2_8, NULL},
#endif
#if defined(TB_HAVE_NEON_KERNELS)
      [TB_CPU_NEON] = {tb__transpose_neon_1, tb__transpose_neon_2, tb__transpose_neon_4,
                       tb__transpose_neon_8, NULL},
#endif
  };
  for (int l = (int)level; l >= 0; l--) {
    if (table[l][k] != NULL) return table[l][k];
  }
  return NULL;
}

tb_transpose_fn tb__transpose(size_t itemsize) {
  return tb__transpose_at(tb__cpu_level(), itemsize);
}
