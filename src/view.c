/* Views: new headers over the same storage. Every view is made by
 * tb__tensor_make, which takes its own reference to the storage and checks
 * the reach invariant of internal.h on the result.
 *
 * The arithmetic here relies on that invariant holding for the source:
 * every index * stride * itemsize product over the source's index ranges
 * (extents of 0 read as 1) fits in int64, and for a non-empty source so does
 * byte_offset plus any of them. Each operation multiplies a stride only by
 * an index of its own dimension's range (select: i * stride; slice: start *
 * stride, and stride * step with |step| * (n - 1) <= extent - 1), so nothing
 * here can overflow and every layout made has a reach within its source's.
 * An empty tensor addresses no memory: views of one keep its byte_offset
 * (tb_view_make), so no byte offset is ever derived from its strides. */
#include <inttypes.h>
#include <string.h>

#include "dtype.h"

/* Checks shared by every view: arguments present, elements addressable. */
static tb_status tb_view_begin(const char *what, const tb_tensor_t *src, tb_tensor_t **out) {
  if (src == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, src == NULL ? "src" : "out");
  }
  if (tb_dtype_itemsize(src->dl.dtype) == 0) {
    return tb__fail(TB_ERR_DTYPE, "%s: %s is a packed storage-only dtype; views need addressable elements",
                    what, tb_dtype_name(src->dl.dtype));
  }
  return TB_OK;
}

/* A view of src with a new layout; byte_offset moves by `delta` elements,
 * an element offset inside src's reach. Views of an empty tensor (all of
 * them empty) keep its byte_offset: there is no element to move to. */
static tb_status tb_view_make(const char *what, const tb_tensor_t *src, int32_t ndim,
                              const int64_t *shape, const int64_t *strides, int64_t delta,
                              uint32_t flags, bool within, tb_tensor_t **out) {
  uint64_t offset = src->dl.byte_offset;
  if (delta != 0 && tb_tensor_numel(src) > 0) {
    /* In [byte_offset + low_byte, byte_offset + high_byte) of a non-empty
     * source: within [0, INT64_MAX] by the reach invariant. */
    offset = (uint64_t)((int64_t)offset + delta * (int64_t)tb_dtype_itemsize(src->dl.dtype));
  }
  return tb__tensor_make(what, src->storage, src->dl.dtype, ndim, shape, strides, offset, flags,
                         within, out);
}

/* Python's slice.indices(): clamps start/stop, returns the result's extent. */
static int64_t tb_slice_indices(int64_t n, int64_t *start, int64_t *stop, int64_t step) {
  int64_t lower = step > 0 ? 0 : -1;
  int64_t upper = step > 0 ? n : n - 1;
  int64_t *ends[2] = {start, stop};
  for (int i = 0; i < 2; i++) {
    int64_t v = *ends[i];
    if (v < 0) v = v < -n ? lower : v + n; /* no overflow: n >= 0 */
    if (v < lower) v = lower;
    if (v > upper) v = upper;
    *ends[i] = v;
  }
  if (step > 0) return *stop > *start ? (*stop - *start - 1) / step + 1 : 0;
  uint64_t back = (uint64_t)0 - (uint64_t)step; /* |step|, INT64_MIN included */
  return *start > *stop ? (int64_t)((uint64_t)(*start - *stop - 1) / back) + 1 : 0;
}

TB_API tb_status tb_tensor_slice(const tb_tensor_t *src, int32_t dim, int64_t start, int64_t stop,
                                 int64_t step, tb_tensor_t **out) {
  static const char what[] = "tensor_slice";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  /* The out-parameters of this file are initialised for gcc, which in the
   * single-file bundle inlines tb__normalize_dim and tb__dtype_lookup and
   * cannot tell that tb__fail returns a failure (maybe-uninitialized). */
  int32_t d = 0;
  st = tb__normalize_dim(what, dim, src->dl.ndim, &d);
  if (st != TB_OK) return st;
  if (step == 0) return tb__fail(TB_ERR_INVALID, "%s: step = 0", what);
  int64_t shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  memcpy(shape, src->dl.shape, (size_t)src->dl.ndim * sizeof *shape);
  memcpy(strides, src->dl.strides, (size_t)src->dl.ndim * sizeof *strides);
  int64_t n = tb_slice_indices(shape[d], &start, &stop, step);
  shape[d] = n;
  /* With two or more elements |step| * (n - 1) <= extent - 1, so the
   * product is within the source's reach (empty sources included: the reach
   * covers every dimension of extent >= 1); with fewer the stride is never
   * multiplied by a non-zero index and stays as it was. start is an index
   * of the dimension when n > 0. */
  if (n > 1) strides[d] *= step;
  int64_t delta = n > 0 ? start * src->dl.strides[d] : 0;
  return tb_view_make(what, src, src->dl.ndim, shape, strides, delta, src->flags, true, out);
}

TB_API tb_status tb_tensor_select(const tb_tensor_t *src, int32_t dim, int64_t index,
                                  tb_tensor_t **out) {
  static const char what[] = "tensor_select";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  int32_t d = 0;
  st = tb__normalize_dim(what, dim, src->dl.ndim, &d);
  if (st != TB_OK) return st;
  int64_t n = src->dl.shape[d];
  int64_t i = index < 0 && index >= -n ? index + n : index;
  if (i < 0 || i >= n) {
    return tb__fail(TB_ERR_INDEX, "%s: index = %" PRId64 " is out of range for shape[%d] = %" PRId64,
                    what, index, (int)d, n);
  }
  int64_t shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  int32_t nd = 0;
  for (int32_t k = 0; k < src->dl.ndim; k++) {
    if (k == d) continue;
    shape[nd] = src->dl.shape[k];
    strides[nd++] = src->dl.strides[k];
  }
  /* i is an index of dimension d: i * stride is within the reach. */
  return tb_view_make(what, src, nd, shape, strides, i * src->dl.strides[d], src->flags, true,
                      out);
}

TB_API tb_status tb_tensor_permute(const tb_tensor_t *src, const int32_t *perm,
                                   tb_tensor_t **out) {
  static const char what[] = "tensor_permute";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  int32_t nd = src->dl.ndim;
  if (perm == NULL && nd > 0) return tb__fail(TB_ERR_INVALID, "%s: perm is NULL", what);
  bool seen[TB_MAX_NDIM] = {false};
  int64_t shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  for (int32_t i = 0; i < nd; i++) {
    int32_t d = perm[i] < 0 ? perm[i] + nd : perm[i];
    if (d < 0 || d >= nd) {
      return tb__fail(TB_ERR_INDEX, "%s: perm[%d] = %d is out of range for ndim = %d", what,
                      (int)i, (int)perm[i], (int)nd);
    }
    if (seen[d]) {
      return tb__fail(TB_ERR_INVALID, "%s: perm[%d] = %d repeats a dimension", what, (int)i,
                      (int)perm[i]);
    }
    seen[d] = true;
    shape[i] = src->dl.shape[d];
    strides[i] = src->dl.strides[d];
  }
  return tb_view_make(what, src, nd, shape, strides, 0, src->flags, true, out);
}

TB_API tb_status tb_tensor_transpose(const tb_tensor_t *src, int32_t dim0, int32_t dim1,
                                     tb_tensor_t **out) {
  static const char what[] = "tensor_transpose";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  int32_t a = 0, b = 0;
  if ((st = tb__normalize_dim(what, dim0, src->dl.ndim, &a)) != TB_OK) return st;
  if ((st = tb__normalize_dim(what, dim1, src->dl.ndim, &b)) != TB_OK) return st;
  int32_t perm[TB_MAX_NDIM];
  for (int32_t i = 0; i < src->dl.ndim; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return tb_tensor_permute(src, perm, out);
}

/* Resolves one -1 and checks that the element count is unchanged. */
static tb_status tb_reshape_target(const char *what, const tb_tensor_t *src, int32_t ndim,
                                   const int64_t *shape, int64_t *resolved) {
  if (ndim < 0 || ndim > TB_MAX_NDIM || (ndim > 0 && shape == NULL)) {
    return tb__fail(TB_ERR_INVALID, "%s: ndim = %d with shape %s", what, (int)ndim,
                    shape == NULL ? "NULL" : "given");
  }
  int32_t infer = -1;
  int64_t known = 1;
  for (int32_t d = 0; d < ndim; d++) {
    resolved[d] = shape[d];
    if (shape[d] == -1 && infer < 0) {
      infer = d;
      continue;
    }
    if (shape[d] < 0) {
      return tb__fail(TB_ERR_INVALID, "%s: shape[%d] = %" PRId64 " is negative", what, (int)d,
                      shape[d]);
    }
    if (tb__mul_overflows(known, shape[d], &known)) {
      return tb__fail(TB_ERR_OVERFLOW, "%s: element count overflows int64 at shape[%d] = %" PRId64,
                      what, (int)d, shape[d]);
    }
  }
  int64_t numel = tb_tensor_numel(src);
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) {
      return tb__fail(TB_ERR_INVALID, "%s: cannot infer shape[%d] for %" PRId64 " elements", what,
                      (int)infer, numel);
    }
    resolved[infer] = numel / known;
    known = numel;
  }
  if (known != numel) {
    return tb__fail(TB_ERR_INVALID, "%s: new shape has %" PRId64 " elements, the tensor %" PRId64,
                    what, known, numel);
  }
  return TB_OK;
}


TB_API tb_status tb_tensor_reshape(const tb_tensor_t *src, int32_t ndim, const int64_t *shape,
                                   tb_tensor_t **out) {
  static const char what[] = "tensor_reshape";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  int64_t resolved[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  st = tb_reshape_target(what, src, ndim, shape, resolved);
  if (st != TB_OK) return st;
  if (tb_tensor_numel(src) == 0) {
    tb__contiguous_strides(ndim, resolved, TB_ORDER_C, strides);
  } else if (!tb__layout_reshape_strides(src->dl.ndim, src->dl.shape, src->dl.strides, ndim,
                                                resolved, strides)) {
    return tb__fail(TB_ERR_LAYOUT,
                    "%s: the strides of this %d-d view cannot express the new shape without a "
                    "copy; call tb_tensor_contiguous first",
                    what, (int)src->dl.ndim);
  }
  /* A non-empty reshape reaches the same elements; an empty one has fresh
   * C strides whose reach tb__tensor_make checks (a shape whose non-zero
   * extents overflow is refused, as tb_tensor_empty refuses it). */
  return tb_view_make(what, src, ndim, resolved, strides, 0, src->flags, tb_tensor_numel(src) > 0,
                      out);
}

TB_API tb_status tb_tensor_contiguous(const tb_tensor_t *src, tb_order order,
                                      tb_tensor_t **out) {
  static const char what[] = "tensor_contiguous";
  if (src == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, src == NULL ? "src" : "out");
  }
  tb_status st = tb__check_order(what, order);
  if (st != TB_OK) return st;
  if (tb_tensor_is_contiguous(src, order)) {
    *out = tb_tensor_retain((tb_tensor_t *)(uintptr_t)src);
    return TB_OK;
  }
  return tb_tensor_copy(src, NULL, order, 0, out);
}

/* Keeps the dimensions whose `drop` entry is false (extent-1 ones only:
 * they add nothing to the reach). */
static tb_status tb_view_drop(const char *what, const tb_tensor_t *src, const bool *drop,
                              tb_tensor_t **out) {
  int64_t shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  int32_t nd = 0;
  for (int32_t d = 0; d < src->dl.ndim; d++) {
    if (drop[d]) continue;
    shape[nd] = src->dl.shape[d];
    strides[nd++] = src->dl.strides[d];
  }
  return tb_view_make(what, src, nd, shape, strides, 0, src->flags, true, out);
}

TB_API tb_status tb_tensor_squeeze(const tb_tensor_t *src, int32_t dim, tb_tensor_t **out) {
  static const char what[] = "tensor_squeeze";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  int32_t d = 0;
  st = tb__normalize_dim(what, dim, src->dl.ndim, &d);
  if (st != TB_OK) return st;
  if (src->dl.shape[d] != 1) {
    return tb__fail(TB_ERR_INVALID, "%s: shape[%d] = %" PRId64 " is not 1", what, (int)d,
                    src->dl.shape[d]);
  }
  bool drop[TB_MAX_NDIM] = {false};
  drop[d] = true;
  return tb_view_drop(what, src, drop, out);
}

TB_API tb_status tb_tensor_squeeze_all(const tb_tensor_t *src, tb_tensor_t **out) {
  static const char what[] = "tensor_squeeze_all";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  bool drop[TB_MAX_NDIM];
  for (int32_t d = 0; d < src->dl.ndim; d++) drop[d] = src->dl.shape[d] == 1;
  return tb_view_drop(what, src, drop, out);
}

TB_API tb_status tb_tensor_view_as(const tb_tensor_t *src, DLDataType dtype, tb_tensor_t **out) {
  static const char what[] = "tensor_view_as";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  const tb_dtype_info *info = NULL;
  st = tb__dtype_lookup(what, dtype, &info);
  if (st != TB_OK) return st;
  size_t from = tb_dtype_itemsize(src->dl.dtype), to = tb_dtype_itemsize(dtype);
  if (to == 0) {
    return tb__fail(TB_ERR_DTYPE, "%s: dtype = %s is a packed storage-only dtype", what,
                    info->name);
  }
  if (to != from) {
    return tb__fail(TB_ERR_DTYPE, "%s: dtype = %s has %zu-byte elements, src (%s) has %zu", what,
                    info->name, to, tb_dtype_name(src->dl.dtype), from);
  }
  if (dtype.code == TB_DL_BOOL && src->dl.dtype.code != TB_DL_BOOL) {
    return tb__fail(TB_ERR_DTYPE, "%s: dtype = bool over %s bytes, which need not be 0 or 1", what,
                    tb_dtype_name(src->dl.dtype));
  }
  /* Same element size: the same layout reaches the same bytes. */
  return tb__tensor_make(what, src->storage, dtype, src->dl.ndim, src->dl.shape, src->dl.strides,
                         src->dl.byte_offset, src->flags, true, out);
}

TB_API tb_status tb_tensor_unsqueeze(const tb_tensor_t *src, int32_t dim, tb_tensor_t **out) {
  static const char what[] = "tensor_unsqueeze";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  int32_t nd = src->dl.ndim;
  if (nd == TB_MAX_NDIM) {
    return tb__fail(TB_ERR_INVALID, "%s: ndim = %d is already the maximum", what, (int)nd);
  }
  int32_t d = 0;
  st = tb__normalize_dim(what, dim, nd + 1, &d);
  if (st != TB_OK) return st;
  int64_t shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  for (int32_t k = 0, j = 0; k <= nd; k++) {
    if (k == d) continue;
    shape[k] = src->dl.shape[j];
    strides[k] = src->dl.strides[j++];
  }
  /* Any stride addresses a single element; pick the one that keeps a
   * contiguous tensor's strides looking contiguous. */
  int64_t stride = 1;
  if (d < nd && tb__mul_overflows(src->dl.shape[d], src->dl.strides[d], &stride)) stride = 1;
  shape[d] = 1;
  strides[d] = stride; /* extent 1: adds nothing to the reach */
  return tb_view_make(what, src, nd + 1, shape, strides, 0, src->flags, true, out);
}

TB_API tb_status tb_tensor_expand(const tb_tensor_t *src, int32_t ndim, const int64_t *shape,
                                  tb_tensor_t **out) {
  static const char what[] = "tensor_expand";
  tb_status st = tb_view_begin(what, src, out);
  if (st != TB_OK) return st;
  if (ndim < src->dl.ndim || ndim > TB_MAX_NDIM || (ndim > 0 && shape == NULL)) {
    return tb__fail(TB_ERR_INVALID, "%s: ndim = %d must be in [%d, %d] with a shape", what,
                    (int)ndim, (int)src->dl.ndim, TB_MAX_NDIM);
  }
  int64_t new_shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  int32_t lead = ndim - src->dl.ndim;
  for (int32_t i = 0; i < ndim; i++) {
    int32_t j = i - lead;
    int64_t want = shape[i];
    int64_t have = j >= 0 ? src->dl.shape[j] : 1;
    if (want == -1 && j >= 0) want = have;
    if (want < 0) {
      return tb__fail(TB_ERR_INVALID, "%s: shape[%d] = %" PRId64 " is negative", what, (int)i,
                      shape[i]);
    }
    if (have != want && have != 1) {
      return tb__fail(TB_ERR_INVALID,
                      "%s: shape[%d] = %" PRId64 " cannot broadcast from extent %" PRId64, what,
                      (int)i, want, have);
    }
    new_shape[i] = want;
    strides[i] = (j >= 0 && have == want) ? src->dl.strides[j] : 0;
  }
  /* Grown extents have stride 0 and add nothing to the reach, but the
   * element count and byte size may now overflow: tb__tensor_make checks. */
  return tb_view_make(what, src, ndim, new_shape, strides, 0, src->flags | TB_FLAG_READONLY, false,
                      out);
}
