/* The portable level: plain loops over half_bits.h, which the compiler may
 * vectorise (no branches, loads and stores through memcpy). */
#include "kernels/half_bits.h"
#include "kernels/kernels.h"

/* float32 -> float16 in blocks: a loop with constant shifts only (which
 * vectorises on any ISA) that also notes whether the block holds an input
 * with a subnormal result; only then a second pass redoes those elements. */
void tb__f32_to_f16_c(const char *restrict src, int64_t ss, char *restrict dst, int64_t ds,
                      int64_t n) {
  (void)ss;
  (void)ds;
  enum { BLOCK = 512 };
  for (int64_t b = 0; b < n; b += BLOCK) {
    const int64_t len = n - b < BLOCK ? n - b : BLOCK;
    const char *s = src + 4 * b;
    char *d = dst + 2 * b;
    uint32_t small = 0;
    for (int64_t i = 0; i < len; i++) {
      uint32_t x;
      memcpy(&x, s + 4 * i, sizeof x);
      small |= (uint32_t)tb_f16_result_is_small(x);
      const uint16_t h = tb_f16_bits_from_f32_bits_normal(x);
      memcpy(d + 2 * i, &h, sizeof h);
    }
    if (small == 0) continue;
    for (int64_t i = 0; i < len; i++) {
      uint32_t x;
      memcpy(&x, s + 4 * i, sizeof x);
      if (tb_f16_result_is_small(x)) {
        const uint16_t h = tb_f16_bits_from_f32_bits(x);
        memcpy(d + 2 * i, &h, sizeof h);
      }
    }
  }
}

TB_CONTIG_KERNEL(tb__f16_to_f32_c, uint16_t, uint32_t, tb_f32_bits_from_f16_bits)
TB_CONTIG_KERNEL(tb__f32_to_bf16_c, uint32_t, uint16_t, tb_bf16_bits_from_f32_bits)
TB_CONTIG_KERNEL(tb__bf16_to_f32_c, uint16_t, uint32_t, tb_f32_bits_from_bf16_bits)
