/*
 * Layout arithmetic: shape, strides, extents, contiguity, dimension indices.
 * The lowest room of the library: it calls nothing but the dtype table and
 * the error recorder, and everything above it (tensors, views, the copy
 * engine, DLPack, the backends) asks it rather than redoing the sums. Every
 * product and sum here is overflow-checked; the reach invariant (core/layout.h)
 * is what it enforces.
 */
#include <inttypes.h>

#include "core/layout.h"
#include "dtype.h"

tb_status tb__normalize_dim(const char *what, int32_t dim, int32_t ndim, int32_t *out) {
  int32_t d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim) {
    return tb__fail(TB_ERR_INDEX, "%s: dim = %d is out of range for ndim = %d", what, (int)dim,
                    (int)ndim);
  }
  *out = d;
  return TB_OK;
}

void tb__contiguous_strides(int32_t ndim, const int64_t *shape, tb_order order,
                            int64_t *strides) {
  int64_t step = 1;
  for (int32_t i = 0; i < ndim; i++) {
    int32_t d = order == TB_ORDER_F ? i : ndim - 1 - i;
    strides[d] = step;
    /* Saturate instead of overflowing: a later extent check rejects such
     * shapes, and a zero extent makes every stride irrelevant. */
    if (shape[d] > 1 && tb__mul_overflows(step, shape[d], &step)) step = INT64_MAX;
  }
}

tb_status tb__check_ndim(const char *what, int32_t ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > TB_MAX_NDIM) {
    return tb__fail(TB_ERR_INVALID, "%s: ndim = %d is outside [0, %d]", what, (int)ndim,
                    TB_MAX_NDIM);
  }
  if (ndim > 0 && shape == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: shape is NULL but ndim = %d", what, (int)ndim);
  }
  return TB_OK;
}

/* Packed sub-byte elements are not addressable one by one: only dense
 * C-order layouts are accepted for them. */
static tb_status tb_check_packed_layout(const char *what, const tb_dtype_info *info,
                                        int32_t ndim, const int64_t *shape,
                                        const int64_t *strides) {
  int64_t expect[TB_MAX_NDIM];
  tb__contiguous_strides(ndim, shape, TB_ORDER_C, expect);
  for (int32_t d = 0; d < ndim; d++) {
    if (shape[d] > 1 && strides[d] != expect[d]) {
      return tb__fail(TB_ERR_LAYOUT,
                      "%s: %s is a packed storage-only dtype; strides[%d] = %" PRId64
                      " must be %" PRId64 " (C-contiguous)",
                      what, info->name, (int)d, strides[d], expect[d]);
    }
  }
  return TB_OK;
}

tb_status tb__layout_extent(const char *what, DLDataType dtype, int32_t ndim,
                            const int64_t *shape, const int64_t *strides, tb_extent *out) {
  const tb_dtype_info *info = NULL; /* for gcc in the single-file bundle (see copy.c) */
  tb_status st = tb__dtype_lookup(what, dtype, &info);
  if (st != TB_OK) return st;
  st = tb__check_ndim(what, ndim, shape);
  if (st != TB_OK) return st;
  if (ndim > 0 && strides == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: strides is NULL but ndim = %d", what, (int)ndim);
  }
  /* Local scalars, stored to *out field by field at the end: building a
   * struct on the stack and copying it out costs a store-forwarding stall on
   * this hot path (every from_array and DLPack import). */
  /* numel, and the count of the extents read as max(extent, 1) (R1 in
   * core/layout.h; the same as numel unless the tensor is empty), which is
   * what NumPy holds an empty array's shape to: it keeps the contiguous
   * layout of any tensor's shape, hence its copies, within int64 too. */
  int64_t numel = 1, count = 1;
  for (int32_t d = 0; d < ndim; d++) {
    if (shape[d] < 0) {
      return tb__fail(TB_ERR_INVALID, "%s: shape[%d] = %" PRId64 " is negative", what, (int)d,
                      shape[d]);
    }
    if (tb__mul_overflows(numel, shape[d], &numel) ||
        (shape[d] > 1 && tb__mul_overflows(count, shape[d], &count))) {
      return tb__fail(TB_ERR_OVERFLOW,
                      "%s: element count overflows int64 at shape[%d] = %" PRId64 "%s", what,
                      (int)d, shape[d],
                      numel == 0 ? " (a size-0 tensor's non-zero extents are counted)" : "");
    }
  }
  if (info->itemsize == 0) {
    st = tb_check_packed_layout(what, info, ndim, shape, strides);
    if (st != TB_OK) return st;
  }
  /* The reach (R1 in core/layout.h): extents of 0 read as 1, so that an empty
   * tensor's strides are held to what its views may multiply them by. */
  int64_t nbytes, min_offset = 0, max_offset = 0, low_byte = 0, high_byte = 0;
  for (int32_t d = 0; d < ndim; d++) {
    int64_t reach;
    if (tb__mul_overflows(shape[d] > 0 ? shape[d] - 1 : 0, strides[d], &reach) ||
        tb__add_overflows(reach < 0 ? min_offset : max_offset, reach,
                          reach < 0 ? &min_offset : &max_offset)) {
      if (numel == 0) {
        return tb__fail(TB_ERR_OVERFLOW,
                        "%s: element offsets overflow int64 at shape[%d] = %" PRId64
                        ", strides[%d] = %" PRId64
                        " (an empty tensor's strides are checked with each extent 0 read as 1)",
                        what, (int)d, shape[d], (int)d, strides[d]);
      }
      return tb__fail(TB_ERR_OVERFLOW,
                      "%s: offset of the last element overflows int64 at shape[%d] = %" PRId64
                      ", strides[%d] = %" PRId64,
                      what, (int)d, shape[d], (int)d, strides[d]);
    }
  }
  if (info->itemsize == 0) {
    /* numel * bits cannot overflow when numel * 8 does not. */
    int64_t bits;
    if (tb__mul_overflows(count, (int64_t)info->bits, &bits)) {
      return tb__fail(TB_ERR_OVERFLOW, "%s: %" PRId64 " elements of %s overflow int64 bytes",
                      what, count, info->name);
    }
    if (tb__mul_overflows(numel, (int64_t)info->bits, &bits)) {
      return tb__fail(TB_ERR_OVERFLOW, "%s: %" PRId64 " elements of %s overflow int64 bytes",
                      what, numel, info->name);
    }
    nbytes = (bits + 7) / 8;
    high_byte = nbytes;
  } else {
    const int64_t item = (int64_t)info->itemsize;
    if (tb__mul_overflows(count, item, &nbytes)) {
      return tb__fail(TB_ERR_OVERFLOW,
                      "%s: %" PRId64 " elements of %s overflow int64 bytes%s", what, count,
                      info->name,
                      numel == 0 ? " (a size-0 tensor's non-zero extents are counted)" : "");
    }
    if (tb__mul_overflows(numel, item, &nbytes)) {
      return tb__fail(TB_ERR_OVERFLOW, "%s: %" PRId64 " elements of %s overflow int64 bytes",
                      what, numel, info->name);
    }
    int64_t span;
    if (tb__mul_overflows(min_offset, item, &low_byte) ||
        tb__mul_overflows(max_offset, item, &high_byte) ||
        tb__add_overflows(high_byte, item, &high_byte) ||
        __builtin_sub_overflow(high_byte, low_byte, &span)) {
      return tb__fail(TB_ERR_OVERFLOW,
                      "%s: byte extent [%" PRId64 ", %" PRId64 "] elements of %s overflows int64",
                      what, min_offset, max_offset, info->name);
    }
  }
  if (numel == 0) { /* checked, but nothing is reached */
    min_offset = max_offset = low_byte = high_byte = 0;
  }
  out->numel = numel;
  out->nbytes = nbytes;
  out->min_offset = min_offset;
  out->max_offset = max_offset;
  out->low_byte = low_byte;
  out->high_byte = high_byte;
  return TB_OK;
}

tb_status tb__check_order(const char *what, tb_order order) {
  if (order != TB_ORDER_C && order != TB_ORDER_F) {
    return tb__fail(TB_ERR_INVALID, "%s: order = %d is not TB_ORDER_C or TB_ORDER_F", what,
                    (int)order);
  }
  return TB_OK;
}

bool tb__layout_is_contiguous(int32_t ndim, const int64_t *shape, const int64_t *strides,
                              tb_order order) {
  int64_t expect = 1;
  for (int32_t i = 0; i < ndim; i++) {
    if (shape[i] == 0) return true;
  }
  for (int32_t i = 0; i < ndim; i++) {
    int32_t d = order == TB_ORDER_F ? i : ndim - 1 - i;
    if (shape[d] == 1) continue; /* any stride addresses one element */
    if (strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

/*
 * Strides for `shape` over src's elements in C order, when they exist (the
 * rule NumPy uses to reshape without copying): group old and new dimensions
 * into runs with equal products; each run of old dimensions must step
 * through memory as one, and its new dimensions split that step.
 */
bool tb__layout_reshape_strides(int32_t src_ndim, const int64_t *src_shape,
                                const int64_t *src_strides, int32_t ndim, const int64_t *shape,
                                int64_t *strides) {
  int64_t old_shape[TB_MAX_NDIM], old_strides[TB_MAX_NDIM];
  int32_t on = 0;
  for (int32_t d = 0; d < src_ndim; d++) {
    if (src_shape[d] == 1) continue;
    old_shape[on] = src_shape[d];
    old_strides[on++] = src_strides[d];
  }
  int32_t oi = 0, oj = 1, ni = 0, nj = 1;
  while (ni < ndim && oi < on) {
    int64_t np = shape[ni], op = old_shape[oi];
    while (np != op) {
      if (np < op) {
        np *= shape[nj++];
      } else {
        op *= old_shape[oj++];
      }
    }
    for (int32_t k = oi; k < oj - 1; k++) {
      int64_t step;
      if (tb__mul_overflows(old_shape[k + 1], old_strides[k + 1], &step) || old_strides[k] != step) {
        return false;
      }
    }
    strides[nj - 1] = old_strides[oj - 1];
    for (int32_t k = nj - 1; k > ni; k--) {
      if (tb__mul_overflows(strides[k], shape[k], &strides[k - 1])) return false;
    }
    ni = nj++;
    oi = oj++;
  }
  int64_t last = ni > 0 ? strides[ni - 1] : 1;
  for (int32_t k = ni; k < ndim; k++) strides[k] = last; /* trailing extents of 1 */
  return true;
}
