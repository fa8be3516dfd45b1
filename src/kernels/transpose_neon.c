/*
 * Transposes at the NEON level (AArch64, where Advanced SIMD is part of the
 * base ISA: no run-time check needed). One register holds a row of N = 16 /
 * E elements; log2(N) rounds of TRN1/TRN2 at doubling lane widths pair rows
 * i and i + 2^k, after which register i holds column i. Bits only move.
 */
#include "kernels/transpose.h"

#if defined(TB_HAVE_NEON_KERNELS)
#include <arm_neon.h>

/* TRN1/TRN2 of two rows at a lane width. */
TB_ALWAYS_INLINE void tb_trn8(uint8x16_t *a, uint8x16_t *b) {
  const uint8x16_t x = vtrn1q_u8(*a, *b), y = vtrn2q_u8(*a, *b);
  *a = x;
  *b = y;
}
#define TB_DEFINE_TRN(bits)                                                                \
  TB_ALWAYS_INLINE void tb_trn##bits(uint8x16_t *a, uint8x16_t *b) {                       \
    const uint8x16_t x = vreinterpretq_u8_u##bits(                                          \
        vtrn1q_u##bits(vreinterpretq_u##bits##_u8(*a), vreinterpretq_u##bits##_u8(*b)));    \
    const uint8x16_t y = vreinterpretq_u8_u##bits(                                          \
        vtrn2q_u##bits(vreinterpretq_u##bits##_u8(*a), vreinterpretq_u##bits##_u8(*b)));    \
    *a = x;                                                                                \
    *b = y;                                                                                \
  }
TB_DEFINE_TRN(16)
TB_DEFINE_TRN(32)
TB_DEFINE_TRN(64)

/* N rows of 16 bytes (N = 16 / E): load, log2(N) rounds pairing rows i and
 * i + step (within blocks of 2 * step) at lane width 8 * E * step, store. */
TB_ALWAYS_INLINE void tb_micro_neon(const char *src, int64_t src_ld, char *dst, int64_t dst_ld,
                                    const int n) {
  uint8x16_t r[16];
  for (int i = 0; i < n; i++) r[i] = vld1q_u8((const uint8_t *)(src + i * src_ld));
  /* Unrolled whole, so that every index and lane width is a constant. */
#pragma GCC unroll 4
  for (int step = 1, bits = 128 / n; step < n; step <<= 1, bits <<= 1) {
#pragma GCC unroll 16
    for (int i = 0; i < n; i++) {
      if (i & step) continue;
      switch (bits) {
        case 8: tb_trn8(&r[i], &r[i + step]); break;
        case 16: tb_trn16(&r[i], &r[i + step]); break;
        case 32: tb_trn32(&r[i], &r[i + step]); break;
        default: tb_trn64(&r[i], &r[i + step]); break;
      }
    }
  }
  for (int i = 0; i < n; i++) vst1q_u8((uint8_t *)(dst + i * dst_ld), r[i]);
}

#define TB_NEON_MICRO(E)                                                                      \
  TB_ALWAYS_INLINE void tb_micro_neon_##E(const char *src, int64_t src_ld, char *dst,       \
                                          int64_t dst_ld) {                                 \
    tb_micro_neon(src, src_ld, dst, dst_ld, 16 / E);                                        \
  }
TB_NEON_MICRO(1)
TB_NEON_MICRO(2)
TB_NEON_MICRO(4)
TB_NEON_MICRO(8)

TB_DEFINE_TRANSPOSE(, neon, 1, 16)
TB_DEFINE_TRANSPOSE(, neon, 2, 8)
TB_DEFINE_TRANSPOSE(, neon, 4, 4)
TB_DEFINE_TRANSPOSE(, neon, 8, 2)
#endif
