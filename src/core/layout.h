/*
 * Layout arithmetic (core/layout.c): the one place where shapes and strides
 * are validated, measured and compared. Everything that makes, views, copies,
 * imports or exports a tensor asks here.
 */
#ifndef TB_CORE_LAYOUT_H
#define TB_CORE_LAYOUT_H

#include "internal.h"

/* ---- checked arithmetic ---- */

static inline bool tb__mul_overflows(int64_t a, int64_t b, int64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}
static inline bool tb__add_overflows(int64_t a, int64_t b, int64_t *out) {
  return __builtin_add_overflow(a, b, out);
}

/*
 * The reach invariant. Every tensor that exists, empty or not, satisfies:
 *
 *   (R1) Read each extent e as max(e, 1), so that every dimension has an
 *        index range [0, max(e, 1) - 1]. Then the lowest and highest element
 *        offsets any index vector reaches, sum over d of index[d] *
 *        strides[d], and both converted to bytes (low_byte = min_offset *
 *        itemsize, high_byte = (max_offset + 1) * itemsize) and their
 *        difference, fit in int64; and so does the element count of those
 *        extents times itemsize (bits for packed dtypes), so that the C and
 *        F layouts of the shape, which copies take, satisfy (R1) as well.
 *   (R2) A non-empty tensor's bytes, byte_offset + [low_byte, high_byte),
 *        lie inside [0, storage->nbytes], and nbytes <= INT64_MAX. An empty
 *        tensor addresses no memory: its byte_offset (<= INT64_MAX) is
 *        carried as given, and views of it keep it unchanged.
 *
 * (R1) is what makes index arithmetic safe without a check per call site:
 * every product index[d] * strides[d] * itemsize with index[d] in that
 * range, and every partial sum of them, lies in [low_byte, high_byte) and so
 * cannot overflow; for an empty tensor too, whose views (select at index
 * i: i * stride; slice: start * stride and stride * step) compute exactly
 * such products. Reading a zero extent as 1 keeps the rule NumPy applies to
 * empty arrays (the product of the non-zero extents must not overflow) and
 * ignores only the strides of zero-extent dimensions, which no index ever
 * multiplies. A stride of an extent-1 dimension is likewise never
 * multiplied by a non-zero index. (R2) makes every byte offset a view
 * derives from a non-empty tensor land inside its storage.
 *
 * Enforced at construction: tb__wrap (tb_from_array and every DLPack
 * import), tb_tensor_empty (fresh storage, C/F strides) and tb__tensor_make
 * (every view). View operations derive layouts whose reach is a subset of
 * their source's (select, slice, permute, squeeze, unsqueeze, reshape of a
 * non-empty tensor), so they never fail the check; reshape of an empty
 * tensor and expand make new layouts and are always checked.
 *
 * tb__layout_extent validates shape/strides for a dtype, checks (R1) and
 * measures the memory they reach, relative to the element at index (0, ...,
 * 0). Every product and sum is overflow-checked, the conversion to bytes
 * included. When numel == 0 no memory is reached and every field but
 * numel/nbytes is 0 (the reach was checked all the same). `what` prefixes
 * messages ("from_array").
 */
typedef struct tb_extent {
  int64_t numel;
  int64_t nbytes;     /* numel * itemsize (packed sub-byte: rounded up) */
  int64_t min_offset; /* lowest element offset reached, in elements, <= 0 */
  int64_t max_offset; /* highest element offset reached, in elements, >= 0 */
  int64_t low_byte;   /* min_offset * itemsize, <= 0 */
  int64_t high_byte;  /* (max_offset + 1) * itemsize: one past the last byte */
} tb_extent;
TB_INTERNAL tb_status tb__layout_extent(const char *what, DLDataType dtype, int32_t ndim,
                                        const int64_t *shape, const int64_t *strides,
                                        tb_extent *out);

/* Writes C- or F-order strides for shape; the layout must already be checked. */
TB_INTERNAL void tb__contiguous_strides(int32_t ndim, const int64_t *shape, tb_order order,
                                        int64_t *strides);

/* TB_ERR_INVALID unless order is TB_ORDER_C or TB_ORDER_F. */
TB_INTERNAL tb_status tb__check_order(const char *what, tb_order order);

/* Normalises a possibly negative dimension index into [0, ndim). */
TB_INTERNAL tb_status tb__normalize_dim(const char *what, int32_t dim, int32_t ndim,
                                        int32_t *out);

/* TB_ERR_INVALID unless 0 <= ndim <= TB_MAX_NDIM and shape is non-NULL when ndim > 0. */
TB_INTERNAL tb_status tb__check_ndim(const char *what, int32_t ndim, const int64_t *shape);

/* True when the layout is dense in `order` (extent-1 strides ignored; an
 * empty layout is contiguous in both orders). */
TB_INTERNAL bool tb__layout_is_contiguous(int32_t ndim, const int64_t *shape,
                                          const int64_t *strides, tb_order order);

/*
 * Strides for `shape` over the elements of (src_shape, src_strides) in C
 * order, when they exist (the rule NumPy uses to reshape without copying);
 * false when a copy is needed. The element counts must be equal and non-zero.
 */
TB_INTERNAL bool tb__layout_reshape_strides(int32_t src_ndim, const int64_t *src_shape,
                                            const int64_t *src_strides, int32_t ndim,
                                            const int64_t *shape, int64_t *strides);

#endif
