/*
 * The transpose driver shared by every level (transpose.c, transpose_avx2.c):
 * dst(r, c) = src(c, r) for r < rows, c < cols, elements of E bytes, that is
 *
 *     dst + r * dst_ld + c * E  <-  src + c * src_ld + r * E
 *
 * with the leading dimensions (byte strides, the source's possibly negative)
 * given. Two levels of blocking: blocks of a few hundred bytes a side
 * keep the source lines a block reads in L1 while its columns are written
 * (and the pages both sides touch within the 64-entry L1 TLB); inside a
 * block, square tiles of T x T elements go through a register micro-kernel,
 * the edges through the scalar loop.
 *
 * Always inlined into each level's entry point with a constant E, T and
 * micro-kernel, so that every call below becomes straight-line code.
 */
#ifndef TB_KERNELS_TRANSPOSE_H
#define TB_KERNELS_TRANSPOSE_H

#include <string.h>

#include "kernels/kernels.h"

/* Bytes per side of a block: TB_TRANSPOSE_BLOCK_ROWS of destination rows
 * (source columns) by TB_TRANSPOSE_BLOCK_COLS of destination columns (source
 * rows); measured on float32 4096 x 4096 (benchmarks/README.md). The copy
 * engine cuts chunks for threads in whole row blocks. */
#define TB_TRANSPOSE_BLOCK_ROWS 256
#define TB_TRANSPOSE_BLOCK_COLS 128

#define TB_ALWAYS_INLINE __attribute__((always_inline)) static inline

typedef void (*tb_transpose_micro_fn)(const char *src, int64_t src_ld, char *dst, int64_t dst_ld);

/* The rectangle [r0, r1) x [c0, c1) element by element. */
TB_ALWAYS_INLINE void tb_transpose_edge(const char *src, int64_t src_ld, char *dst,
                                        int64_t dst_ld, int64_t r0, int64_t r1, int64_t c0,
                                        int64_t c1, const size_t E) {
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t c = c0; c < c1; c++) {
      memcpy(dst + r * dst_ld + c * (int64_t)E, src + c * src_ld + r * (int64_t)E, E);
    }
  }
}

TB_ALWAYS_INLINE void tb_transpose_blocked(const char *src, int64_t src_ld, char *dst,
                                           int64_t dst_ld, int64_t rows, int64_t cols,
                                           const size_t E, const int64_t T,
                                           tb_transpose_micro_fn micro) {
  const int64_t BR = TB_TRANSPOSE_BLOCK_ROWS / (int64_t)E; /* multiples of T */
  const int64_t BC = TB_TRANSPOSE_BLOCK_COLS / (int64_t)E;
  for (int64_t r0 = 0; r0 < rows; r0 += BR) {
    const int64_t r1 = rows - r0 < BR ? rows : r0 + BR;
    for (int64_t c0 = 0; c0 < cols; c0 += BC) {
      const int64_t c1 = cols - c0 < BC ? cols : c0 + BC;
      int64_t r = r0;
      for (; r + T <= r1; r += T) {
        int64_t c = c0;
        for (; c + T <= c1; c += T) {
          micro(src + c * src_ld + r * (int64_t)E, src_ld, dst + r * dst_ld + c * (int64_t)E,
                dst_ld);
        }
        tb_transpose_edge(src, src_ld, dst, dst_ld, r, r + T, c, c1, E);
      }
      tb_transpose_edge(src, src_ld, dst, dst_ld, r, r1, c0, c1, E);
    }
  }
}

/* Defines tb__transpose_<level>_<E> (kernels.h) over the micro-kernel
 * tb_micro_<level>_<E> of T x T elements; attr: the level's target
 * attribute, or nothing. */
#define TB_DEFINE_TRANSPOSE(attr, level, E, T)                                                \
  attr void tb__transpose_##level##_##E(const char *src, int64_t src_ld, char *dst,           \
                                        int64_t dst_ld, int64_t rows, int64_t cols) {         \
    tb_transpose_blocked(src, src_ld, dst, dst_ld, rows, cols, E, T, tb_micro_##level##_##E); \
  }

#endif
