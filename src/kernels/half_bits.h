/*
 * Branch-free float16/bfloat16 <-> float32 conversions on the bits, shared by
 * the kernels (the C level's loops and the vector levels' tails). They give
 * the same bits as cast.c's scalar path: round to nearest, ties to even, by
 * integer arithmetic only (no dependence on the rounding or denormal modes);
 * overflow gives +-inf; a NaN result is quiet with its sign kept, and when
 * narrowing its payload is dropped (sign | exponent all ones | quiet bit).
 */
#ifndef TB_HALF_BITS_H
#define TB_HALF_BITS_H

#include <stdint.h>
#include <string.h>

/* Selects a where mask is all ones, b where it is 0 (no branch). */
static inline uint32_t tb_select_u32(uint32_t mask, uint32_t a, uint32_t b) {
  return (a & mask) | (b & ~mask);
}

/* All ones when c, else 0. */
static inline uint32_t tb_mask_u32(int c) { return 0u - (uint32_t)(c != 0); }

/*
 * float32 -> float16 for every input whose result is not subnormal (a NaN,
 * +-inf, +-0 or a magnitude >= 2^-14 give the right bits; smaller inputs give
 * garbage and are for tb_f16_bits_from_f32_bits). Constant shifts only, so it
 * vectorises on any SIMD ISA.
 */
static inline uint16_t tb_f16_bits_from_f32_bits_normal(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7FFFFFFFu;
  /* Rebias the exponent by -112 and round off 13 bits: + 0xFFF + the last
   * kept bit, then shift. A carry moves into the exponent, and past 65504
   * onto infinity (clamped). */
  const uint32_t normal = (a - 0x37FFF001u + ((a >> 13) & 1u)) >> 13;
  uint32_t r = tb_select_u32(tb_mask_u32(normal < 0x7C00u), normal, 0x7C00u);
  r = tb_select_u32(tb_mask_u32(a > 0x7F800000u), 0x7E00u, r);
  r = tb_select_u32(tb_mask_u32(a == 0), 0u, r);
  return (uint16_t)(sign | r);
}

/* True when the result of float32 x -> float16 is a nonzero subnormal or a
 * zero from a nonzero input: the inputs tb_f16_bits_from_f32_bits_normal does
 * not handle. */
static inline int tb_f16_result_is_small(uint32_t x) {
  return (x & 0x7FFFFFFFu) - 1u < 0x38800000u - 1u;
}

static inline uint16_t tb_f16_bits_from_f32_bits(uint32_t x) {
  const uint32_t a = x & 0x7FFFFFFFu;
  if (a >= 0x38800000u || a == 0) return tb_f16_bits_from_f32_bits_normal(x);
  /* The significand with its implicit bit, in units of 2^-24, is m >> s with
   * s = 126 - exponent in [14, 31] (31 gives 0 for every m < 2^25, float32
   * subnormals included); rounding to even may carry onto the smallest
   * normal, 0x0400, which is the right pattern. */
  int32_t s = 126 - (int32_t)(a >> 23);
  s = s > 31 ? 31 : s;
  const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
  const uint32_t sub = (m + (1u << (s - 1)) - 1u + ((m >> s) & 1u)) >> s;
  return (uint16_t)(((x >> 16) & 0x8000u) | sub);
}

static inline uint32_t tb_f32_bits_from_f16_bits(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t field = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  const uint32_t normal = ((uint32_t)(h & 0x7FFFu) << 13) + 0x38000000u;
  const uint32_t special = (normal + 0x38000000u) | (tb_mask_u32(man != 0) & 0x400000u);
  /* Subnormal: exact in float32 (a normal number), whatever the modes. */
  const float f = (float)(int32_t)man * 0x1p-24f;
  uint32_t fb;
  memcpy(&fb, &f, sizeof fb);
  uint32_t r = tb_select_u32(tb_mask_u32(field == 0x1Fu), special, normal);
  r = tb_select_u32(tb_mask_u32(field == 0), fb, r);
  return sign | r;
}

static inline uint16_t tb_bf16_bits_from_f32_bits(uint32_t x) {
  const uint32_t r = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  const uint32_t nan = ((x >> 16) & 0x8000u) | 0x7FC0u;
  return (uint16_t)((x & 0x7FFFFFFFu) > 0x7F800000u ? nan : r);
}

static inline uint32_t tb_f32_bits_from_bf16_bits(uint16_t h) {
  const uint32_t x = (uint32_t)h << 16;
  return (x & 0x7FFFFFFFu) > 0x7F800000u ? x | 0x400000u : x;
}

#endif
