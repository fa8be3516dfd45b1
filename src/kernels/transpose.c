/*
 * Transposes at the portable level and at SSE2, the x86-64 baseline (no
 * dispatch needed: every x86-64 CPU has it). The driver is transpose.h's.
 *
 * The SSE2 micro-kernels move bits only (unpack instructions), so any
 * element type of the size passes through unchanged, NaN payloads included.
 */
#include "kernels/transpose.h"

/* ---- portable C: the tile element by element ---- */

#define TB_C_TRANSPOSE(E)                                                                     \
  TB_ALWAYS_INLINE void tb_micro_c_##E(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {  \
    tb_transpose_edge(src, src_ld, dst, dst_ld, 0, 8, 0, 8, E);                              \
  }                                                                                           \
  TB_DEFINE_TRANSPOSE(, c, E, 8)
TB_C_TRANSPOSE(1)
TB_C_TRANSPOSE(2)
TB_C_TRANSPOSE(4)
TB_C_TRANSPOSE(8)
TB_C_TRANSPOSE(16)

/* ---- SSE2 ---- */
#if defined(TB_HAVE_SSE2_KERNELS)
#include <emmintrin.h>

#define TB_LOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define TB_STORE(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))

/* 16 x 16 bytes in four rounds of interleaving: pairs of rows (8-bit units),
 * then pairs of those (16-bit), and so on, until each register holds one
 * source column. */
TB_ALWAYS_INLINE void tb_micro_sse2_1(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  __m128i r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = TB_LOAD(src + i * src_ld);
  for (int i = 0; i < 8; i++) {
    t[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);     /* columns 0-7, rows 2i, 2i+1 */
    t[i + 8] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]); /* columns 8-15 */
  }
  for (int h = 0; h < 2; h++) {   /* column halves */
    for (int i = 0; i < 4; i++) { /* t[8h + 2i], t[8h + 2i + 1]: rows 4i .. 4i+3 */
      r[8 * h + i] = _mm_unpacklo_epi16(t[8 * h + 2 * i], t[8 * h + 2 * i + 1]);
      r[8 * h + i + 4] = _mm_unpackhi_epi16(t[8 * h + 2 * i], t[8 * h + 2 * i + 1]);
    }
  }
  /* r[4g + i]: columns 4g .. 4g+3 (one per 32-bit unit) of rows 4i .. 4i+3. */
  for (int g = 0; g < 4; g++) {
    t[4 * g + 0] = _mm_unpacklo_epi32(r[4 * g + 0], r[4 * g + 1]); /* cols 4g, 4g+1; rows 0-7 */
    t[4 * g + 1] = _mm_unpackhi_epi32(r[4 * g + 0], r[4 * g + 1]); /* cols 4g+2, 4g+3 */
    t[4 * g + 2] = _mm_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]); /* rows 8-15 */
    t[4 * g + 3] = _mm_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
    TB_STORE(dst + (4 * g + 0) * dst_ld, _mm_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]));
    TB_STORE(dst + (4 * g + 1) * dst_ld, _mm_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]));
    TB_STORE(dst + (4 * g + 2) * dst_ld, _mm_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]));
    TB_STORE(dst + (4 * g + 3) * dst_ld, _mm_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]));
  }
}

/* 8 x 8 of 16 bits, the same rounds one size up. */
TB_ALWAYS_INLINE void tb_micro_sse2_2(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  __m128i r[8], a[8], b[8];
  for (int i = 0; i < 8; i++) r[i] = TB_LOAD(src + i * src_ld);
  for (int i = 0; i < 4; i++) {
    a[2 * i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);     /* cols 0-3, rows 2i, 2i+1 */
    a[2 * i + 1] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]); /* cols 4-7 */
  }
  for (int q = 0; q < 2; q++) { /* rows 0-3, rows 4-7 */
    b[4 * q + 0] = _mm_unpacklo_epi32(a[4 * q + 0], a[4 * q + 2]); /* cols 0, 1 */
    b[4 * q + 1] = _mm_unpackhi_epi32(a[4 * q + 0], a[4 * q + 2]); /* cols 2, 3 */
    b[4 * q + 2] = _mm_unpacklo_epi32(a[4 * q + 1], a[4 * q + 3]); /* cols 4, 5 */
    b[4 * q + 3] = _mm_unpackhi_epi32(a[4 * q + 1], a[4 * q + 3]); /* cols 6, 7 */
  }
  for (int k = 0; k < 4; k++) {
    TB_STORE(dst + (2 * k) * dst_ld, _mm_unpacklo_epi64(b[k], b[k + 4]));
    TB_STORE(dst + (2 * k + 1) * dst_ld, _mm_unpackhi_epi64(b[k], b[k + 4]));
  }
}

/* 4 x 4 of 32 bits. */
TB_ALWAYS_INLINE void tb_micro_sse2_4(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  const __m128i r0 = TB_LOAD(src), r1 = TB_LOAD(src + src_ld);
  const __m128i r2 = TB_LOAD(src + 2 * src_ld), r3 = TB_LOAD(src + 3 * src_ld);
  const __m128i a0 = _mm_unpacklo_epi32(r0, r1), a1 = _mm_unpackhi_epi32(r0, r1);
  const __m128i a2 = _mm_unpacklo_epi32(r2, r3), a3 = _mm_unpackhi_epi32(r2, r3);
  TB_STORE(dst, _mm_unpacklo_epi64(a0, a2));
  TB_STORE(dst + dst_ld, _mm_unpackhi_epi64(a0, a2));
  TB_STORE(dst + 2 * dst_ld, _mm_unpacklo_epi64(a1, a3));
  TB_STORE(dst + 3 * dst_ld, _mm_unpackhi_epi64(a1, a3));
}

/* 2 x 2 of 64 bits. */
TB_ALWAYS_INLINE void tb_micro_sse2_8(const char *src, int64_t src_ld, char *dst, int64_t dst_ld) {
  const __m128i r0 = TB_LOAD(src), r1 = TB_LOAD(src + src_ld);
  TB_STORE(dst, _mm_unpacklo_epi64(r0, r1));
  TB_STORE(dst + dst_ld, _mm_unpackhi_epi64(r0, r1));
}

TB_DEFINE_TRANSPOSE(, sse2, 1, 16)
TB_DEFINE_TRANSPOSE(, sse2, 2, 8)
TB_DEFINE_TRANSPOSE(, sse2, 4, 4)
TB_DEFINE_TRANSPOSE(, sse2, 8, 2)
#endif
