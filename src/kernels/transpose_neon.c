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

/* One round: rows i and i + step (within blocks of 2 * step). */
#define TB_TRN_ROUND(r, n, step, bits)                             \
  do {                                                             \
    for (int i_ = 0; i_ < (n); i_++) {                             \
      if ((i_ & (step)) == 0) tb_trn##bits(&(r)[i_], &(r)[i_ + (step)]); \
    }                                                              \
  } while (0)

TB_ALWAYS_INLINE void tb_micro_neon_1(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  uint8x16_t r[16];
  for (int i = 0; i < 16; i++) r[i] = vld1q_u8((const uint8_t *)(src + i * src_ld));
  TB_TRN_ROUND(r, 16, 1, 8);
  TB_TRN_ROUND(r, 16, 2, 16);
  TB_TRN_ROUND(r, 16, 4, 32);
  TB_TRN_ROUND(r, 16, 8, 64);
  for (int i = 0; i < 16; i++) vst1q_u8((uint8_t *)(dst + i * dst_ld), r[i]);
}

TB_ALWAYS_INLINE void tb_micro_neon_2(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  uint8x16_t r[8];
  for (int i = 0; i < 8; i++) r[i] = vld1q_u8((const uint8_t *)(src + i * src_ld));
  TB_TRN_ROUND(r, 8, 1, 16);
  TB_TRN_ROUND(r, 8, 2, 32);
  TB_TRN_ROUND(r, 8, 4, 64);
  for (int i = 0; i < 8; i++) vst1q_u8((uint8_t *)(dst + i * dst_ld), r[i]);
}

TB_ALWAYS_INLINE void tb_micro_neon_4(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  uint8x16_t r[4];
  for (int i = 0; i < 4; i++) r[i] = vld1q_u8((const uint8_t *)(src + i * src_ld));
  TB_TRN_ROUND(r, 4, 1, 32);
  TB_TRN_ROUND(r, 4, 2, 64);
  for (int i = 0; i < 4; i++) vst1q_u8((uint8_t *)(dst + i * dst_ld), r[i]);
}

TB_ALWAYS_INLINE void tb_micro_neon_8(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  uint8x16_t r[2];
  for (int i = 0; i < 2; i++) r[i] = vld1q_u8((const uint8_t *)(src + i * src_ld));
  TB_TRN_ROUND(r, 2, 1, 64);
  for (int i = 0; i < 2; i++) vst1q_u8((uint8_t *)(dst + i * dst_ld), r[i]);
}

#define TB_NEON_TRANSPOSE(E, T)                                                             \
  void tb__transpose_neon_##E(const char *src, int64_t src_ld, char *dst, int64_t dst_ld,  \
                              int64_t rows, int64_t cols) {                                \
    tb_transpose_blocked(src, src_ld, dst, dst_ld, rows, cols, E, T, tb_micro_neon_##E);   \
  }
TB_NEON_TRANSPOSE(1, 16)
TB_NEON_TRANSPOSE(2, 8)
TB_NEON_TRANSPOSE(4, 4)
TB_NEON_TRANSPOSE(8, 2)
#endif
