/*
 * What the C side of the CUDA backend and the kernels (kernels.cu) agree on:
 * the argument block of every copy kernel and how kernels are named. Read by
 * the C compiler and by nvcc, so it holds plain C only.
 *
 * Kernel names (extern "C", so the host looks them up by name):
 *   tb_cuda_copy_<bytes>        bytes in {1, 2, 4, 8, 16}: moves elements
 *                               bit for bit (any dtype of that size)
 *   tb_cuda_cast_<from>_<to>    from != to, both among the 15 castable
 *                               dtypes, named as in TB_CUDA_KIND_NAMES
 */
#ifndef TB_CUDA_KERNEL_ABI_H
#define TB_CUDA_KERNEL_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Dimensions a kernel walks after the planner dropped, flipped and merged
 * what it could; a copy needing more goes back to the core's staging. */
#define TB_CUDA_MAX_DIMS 12

/* Threads per block of every copy kernel. */
#define TB_CUDA_BLOCK 256

/*
 * One launch: numel elements from src to dst. Dimension ndim - 1 is the
 * innermost (fastest varying); strides are in BYTES, any sign. dst and src
 * are the addresses of the element at index (0, ..., 0). The host splits
 * copies so that numel < 2^31, which lets kernels index in 32 bits and divide
 * by each extent with a multiply: q = (umulhi(n, magic) + n) >> shift, exact
 * for 0 <= n < 2^31 and 1 <= extent < 2^31 (tb_cuda_divider in copy.c).
 * Passed by value (360 bytes; the limit is 4 KiB).
 */
typedef struct tb_cuda_kargs {
  uint64_t dst;
  uint64_t src;
  uint32_t numel;
  int32_t ndim;
  uint32_t extent[TB_CUDA_MAX_DIMS];
  uint32_t magic[TB_CUDA_MAX_DIMS];
  uint32_t shift[TB_CUDA_MAX_DIMS];
  int64_t dst_strides[TB_CUDA_MAX_DIMS];
  int64_t src_strides[TB_CUDA_MAX_DIMS];
} tb_cuda_kargs;

/* The host compiler and nvcc must lay the block out alike: every field at
 * its natural alignment, no padding anywhere. */
#ifdef __cplusplus
#define TB_CUDA_ABI_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define TB_CUDA_ABI_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
TB_CUDA_ABI_ASSERT(offsetof(tb_cuda_kargs, extent) == 24, "tb_cuda_kargs.extent moved");
TB_CUDA_ABI_ASSERT(offsetof(tb_cuda_kargs, dst_strides) == 24 + 3 * 4 * TB_CUDA_MAX_DIMS,
                   "tb_cuda_kargs.dst_strides moved");
TB_CUDA_ABI_ASSERT(sizeof(tb_cuda_kargs) ==
                       24 + 3 * 4 * TB_CUDA_MAX_DIMS + 2 * 8 * TB_CUDA_MAX_DIMS,
                   "tb_cuda_kargs has padding");

/* Elements per launch, below 2^31 (see above). */
#define TB_CUDA_MAX_LAUNCH_ELEMS 0x7FFFFFFFu

/* The kernel-name spelling of each castable dtype, in the order of the core's
 * tb_cast_kind (bool, int8, ..., complex128). */
#define TB_CUDA_KIND_NAMES                                                                     \
  {                                                                                            \
    "bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f16", "bf16", "f32", "f64", \
        "c64", "c128"                                                                          \
  }
#define TB_CUDA_KIND_COUNT 15

#endif
