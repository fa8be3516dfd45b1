/* Tensor headers, the construction paths and the queries. */
#include <inttypes.h>
#include <string.h>

#include "device.h"
#include "dtype.h"

/* ---- the tensor header ---- */

static size_t tb_header_size(int32_t ndim) {
  return sizeof(tb_tensor_t) + 2 * (size_t)ndim * sizeof(int64_t);
}

/* Fills a fresh header over storage; the caller accounts for the reference
 * to storage the header holds. */
static void tb_header_init(tb_tensor_t *t, tb_storage *storage, DLDataType dtype, int32_t ndim,
                           const int64_t *shape, const int64_t *strides, uint64_t byte_offset,
                           uint32_t flags, const tb_allocator *allocator) {
  if (ndim > 0) {
    memcpy(t->dims, shape, (size_t)ndim * sizeof(int64_t));
    memcpy(t->dims + ndim, strides, (size_t)ndim * sizeof(int64_t));
  }
  t->dl = (DLTensor){
      .data = storage->data,
      .device = storage->device,
      .ndim = ndim,
      .dtype = dtype,
      .shape = t->dims,
      .strides = t->dims + ndim,
      .byte_offset = byte_offset,
  };
  atomic_init(&t->refcount, 1);
  t->storage = storage;
  t->flags = flags;
  t->allocator = *allocator;
}

tb_status tb__tensor_make(const char *what, tb_storage *storage, DLDataType dtype, int32_t ndim,
                          const int64_t *shape, const int64_t *strides, uint64_t byte_offset,
                          uint32_t flags, bool within_source, tb_tensor_t **out) {
#ifndef __OPTIMIZE__
  within_source = false; /* unoptimized (sanitizer) builds verify every view */
#endif
  if (!within_source) {
    /* The reach invariant (core/layout.h) for the new layout: (R1) always,
     * (R2) when it has elements. */
    tb_extent e;
    tb_status st = tb__layout_extent(what, dtype, ndim, shape, strides, &e);
    if (st != TB_OK) return st;
    int64_t lo, hi;
    if (e.numel > 0 &&
        (byte_offset > (uint64_t)INT64_MAX ||
         tb__add_overflows((int64_t)byte_offset, e.low_byte, &lo) || lo < 0 ||
         tb__add_overflows((int64_t)byte_offset, e.high_byte, &hi) ||
         (uint64_t)hi > storage->nbytes)) {
      return tb__fail(TB_ERR_OVERFLOW,
                      "%s: the view's bytes byte_offset = %" PRIu64 " + [%" PRId64 ", %" PRId64
                      ") leave its storage of %" PRIu64 " bytes",
                      what, byte_offset, e.low_byte, e.high_byte, storage->nbytes);
    }
  }
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  tb_tensor_t *t = tb__alloc(&allocator, tb_header_size(ndim), _Alignof(tb_tensor_t), "tensor");
  if (t == NULL) return TB_ERR_NOMEM;
  tb__storage_retain(storage);
  tb_header_init(t, storage, dtype, ndim, shape, strides, byte_offset, flags, &allocator);
  *out = t;
  return TB_OK;
}

tb_status tb__tensor_make_owner(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                const int64_t *strides, uint64_t byte_offset, uint32_t flags,
                                tb_tensor_t **out) {
  /* [header | dims | storage record]; ndim <= TB_MAX_NDIM keeps it small.
   * The block is aligned for the header, hence for the record too: */
  _Static_assert(_Alignof(tb_storage) <= _Alignof(tb_tensor_t),
                 "the storage record needs no more alignment than the header");
  const size_t align = _Alignof(tb_storage);
  const size_t at = (tb_header_size(ndim) + align - 1) & ~(align - 1);
  const size_t size = at + sizeof(tb_storage);
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  tb_tensor_t *t = tb__alloc(&allocator, size, _Alignof(tb_tensor_t), "tensor");
  if (t == NULL) return TB_ERR_NOMEM;
  tb_storage *storage = (tb_storage *)(void *)((char *)t + at);
  tb__storage_init(storage, &allocator, t, size);
  tb_header_init(t, storage, dtype, ndim, shape, strides, byte_offset, flags, &allocator);
  *out = t;
  return TB_OK;
}

TB_API tb_tensor_t *tb_tensor_retain(tb_tensor_t *t) {
  if (t != NULL) atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
  return t;
}

TB_API void tb_tensor_release(tb_tensor_t *t) {
  if (t == NULL) return;
  /* acq_rel rather than release + a standalone acquire fence: the same
   * ordering, in a form ThreadSanitizer models. */
  if (atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) != 1) return;
  tb_storage *storage = t->storage;
  /* A header that shares its block with the storage goes with the storage. */
  if (storage->block != (void *)t) {
    tb_allocator allocator = t->allocator;
    tb__free(&allocator, t, tb_header_size(t->dl.ndim));
  }
  tb__storage_release(storage);
}

/* ---- construction ---- */

/* The last step of a constructor that filled a fresh tensor: hands it to
 * *out when the filling step succeeded, releases it otherwise. */
static tb_status tb_hand_over(tb_status st, tb_tensor_t *t, tb_tensor_t **out) {
  if (st != TB_OK) {
    tb_tensor_release(t);
    return st;
  }
  *out = t;
  return TB_OK;
}

static tb_status tb_check_out(const char *what, tb_tensor_t **out) {
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  return TB_OK;
}

TB_API tb_status tb_from_array(void *data, uint64_t byte_offset, DLDataType dtype, int32_t ndim,
                               const int64_t *shape, const int64_t *strides, DLDevice device,
                               uint32_t flags, tb_deleter_fn deleter, void *ctx,
                               tb_tensor_t **out) {
  return tb__wrap("from_array", data, byte_offset, dtype, ndim, shape, strides, device, flags,
                  deleter, ctx, out);
}

/* Checks that every byte the elements reach has an address: base +
 * byte_offset + [low_byte, high_byte) must not wrap around. */
static tb_status tb_check_address_range(const char *what, const void *data, uint64_t byte_offset,
                                        const tb_extent *e) {
  uint64_t first, end;
  if (__builtin_add_overflow((uint64_t)(uintptr_t)data, byte_offset, &first) ||
      first < (uint64_t)-e->low_byte ||
      __builtin_add_overflow(first, (uint64_t)e->high_byte, &end) || end > UINTPTR_MAX) {
    return tb__fail(TB_ERR_OVERFLOW,
                    "%s: data = %p with byte_offset = %" PRIu64 " and byte extent [%" PRId64
                    ", %" PRId64 ") wraps around the address space",
                    what, data, byte_offset, e->low_byte, e->high_byte);
  }
  return TB_OK;
}

/*
 * Memory on a device the CPU cannot address is only usable through that
 * device's backend: without a backend, or with no such device present
 * (CUDA without a driver or a GPU), nothing could read, copy or free it, so
 * wrapping it is refused. Host-accessible device types (CUDA pinned and
 * managed memory, ROCm host memory) are plain host memory to the library and
 * need no backend.
 */
static tb_status tb_check_device_present(const char *what, DLDevice device) {
  const int32_t type = (int32_t)device.device_type;
  const char *name = tb__device_type_name(type);
  const tb_device_vtable *b = tb_get_backend(type);
  if (b == NULL) {
    return tb__fail(TB_ERR_DEVICE,
                    "%s: no %s device is present (this build has no %s backend): the memory of "
                    "%s:%d could not be read or copied",
                    what, name, name, name, (int)device.device_id);
  }
  int32_t count = b->device_count(b);
  if (count <= 0) {
    return tb__fail(TB_ERR_DEVICE,
                    "%s: no %s device is present (no driver, or it found no device): the memory "
                    "of %s:%d could not be read or copied",
                    what, name, name, (int)device.device_id);
  }
  if (device.device_id >= count) {
    return tb__fail(TB_ERR_DEVICE, "%s: device %s:%d is not present (%d %s device%s found)", what,
                    name, (int)device.device_id, (int)count, name, count == 1 ? "" : "s");
  }
  return TB_OK;
}

tb_status tb__wrap(const char *what, void *data, uint64_t byte_offset, DLDataType dtype,
                   int32_t ndim, const int64_t *shape, const int64_t *strides, DLDevice device,
                   uint32_t flags, tb_deleter_fn deleter, void *ctx, tb_tensor_t **out) {
  tb_status st = tb_check_out(what, out);
  if (st != TB_OK) return st;
  if ((flags & ~TB_FLAG_READONLY) != 0) {
    return tb__fail(TB_ERR_INVALID, "%s: flags = 0x%x has unknown bits", what, (unsigned)flags);
  }
  if (!tb__device_type_known((int32_t)device.device_type) || device.device_id < 0) {
    return tb__fail(TB_ERR_DEVICE, "%s: device (type = %d, id = %d) is not a DLPack device",
                    what, (int)device.device_type, (int)device.device_id);
  }
  if (device.device_type == kDLCPU && device.device_id != 0) {
    return tb__fail(TB_ERR_DEVICE, "%s: device cpu:%d does not exist; the CPU is device_id 0",
                    what, (int)device.device_id);
  }
  st = tb__check_ndim(what, ndim, shape);
  if (st != TB_OK) return st;
  int64_t c_strides[TB_MAX_NDIM];
  if (strides == NULL) {
    tb__contiguous_strides(ndim, shape, TB_ORDER_C, c_strides);
    strides = c_strides;
  }
  tb_extent e;
  st = tb__layout_extent(what, dtype, ndim, shape, strides, &e);
  if (st != TB_OK) return st;
  if (data == NULL && e.numel > 0) {
    return tb__fail(TB_ERR_INVALID, "%s: data is NULL but the tensor has %" PRId64 " elements",
                    what, e.numel);
  }
  if (byte_offset > (uint64_t)INT64_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "%s: byte_offset = %" PRIu64 " exceeds int64", what,
                    byte_offset);
  }
  if (e.numel > 0 && tb__device_data_is_address(device)) {
    st = tb_check_address_range(what, data, byte_offset, &e);
    if (st != TB_OK) return st;
  }
  /* The storage spans from the lowest byte any element reaches. Negative
   * strides may reach below data + byte_offset; where data is an address the
   * base moves down to cover them, for handles the offset must cover them. */
  const int64_t low = e.low_byte;
  int64_t offset = (int64_t)byte_offset;
  void *base = data;
  if (offset + low < 0) {
    if (!tb__device_data_is_address(device)) {
      return tb__fail(TB_ERR_INVALID,
                      "%s: strides reach %" PRId64 " bytes below data, more than byte_offset = %" PRIu64
                      ", and %s data is a handle, not an address",
                      what, -low, byte_offset, tb__device_type_name((int32_t)device.device_type));
    }
    base = (void *)((uintptr_t)data + (uintptr_t)(offset + low));
    offset = -low;
  }
  int64_t nbytes = 0;
  if (e.numel > 0 && tb__add_overflows(offset, e.high_byte, &nbytes)) {
    return tb__fail(TB_ERR_OVERFLOW, "%s: byte_offset = %" PRIu64 " plus the extent overflows int64",
                    what, byte_offset);
  }
  /* Last of the checks, so that a malformed struct gets the same status on
   * every machine, and no driver is loaded for one. */
  if (!tb__device_is_host(device)) {
    st = tb_check_device_present(what, device);
    if (st != TB_OK) return st;
  }
  st = tb__tensor_make_owner(dtype, ndim, shape, strides, (uint64_t)offset, flags, out);
  if (st != TB_OK) return st; /* the caller keeps ownership on failure */
  tb_storage *s = (*out)->storage;
  s->data = base;
  s->nbytes = (uint64_t)nbytes;
  s->device = device;
  s->deleter = deleter;
  s->deleter_data = data;
  s->deleter_ctx = ctx;
  (*out)->dl.data = base;
  (*out)->dl.device = device;
  return TB_OK;
}

TB_API tb_status tb_tensor_empty(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                 DLDevice device, tb_order order, tb_tensor_t **out) {
  static const char what[] = "tensor_empty";
  tb_status st = tb_check_out(what, out);
  if (st != TB_OK) return st;
  st = tb__check_order(what, order);
  if (st != TB_OK) return st;
  st = tb__check_ndim(what, ndim, shape);
  if (st != TB_OK) return st;
  int64_t strides[TB_MAX_NDIM];
  tb__contiguous_strides(ndim, shape, order, strides);
  tb_extent e;
  st = tb__layout_extent(what, dtype, ndim, shape, strides, &e);
  if (st != TB_OK) return st;
  tb_tensor_t *t;
  st = tb__tensor_make_owner(dtype, ndim, shape, strides, 0, 0, &t);
  if (st != TB_OK) return st;
  st = tb__storage_alloc_data(t->storage, device, (uint64_t)e.nbytes);
  t->dl.data = t->storage->data;
  t->dl.device = device;
  return tb_hand_over(st, t, out);
}

/* Copies one host element *value (of value_dtype) to every element of the
 * layout (ndim, shape, strides, dtype) over t's memory, converting it: a
 * source with stride 0 in every dimension. tb_tensor_fill uses t's own
 * layout; tb_tensor_zeros of packed storage its bytes as uint8. */
static tb_status tb_broadcast(const char *what, const tb_tensor_t *t, int32_t ndim,
                              const int64_t *shape, const int64_t *strides, DLDataType dtype,
                              const void *value, DLDataType value_dtype) {
  static const int64_t zero_strides[TB_MAX_NDIM] = {0};
  tb_copy_desc desc = {
      .ndim = ndim,
      .shape = shape,
      .dst = t->dl.data,
      .dst_byte_offset = t->dl.byte_offset,
      .dst_strides = strides,
      .dst_dtype = dtype,
      .dst_device = t->dl.device,
      .src = value,
      .src_byte_offset = 0,
      .src_strides = zero_strides,
      .src_dtype = value_dtype,
      .src_device = {kDLCPU, 0},
      .cast_flags = 0,
  };
  return tb__copy(what, &desc);
}

TB_API tb_status tb_tensor_zeros(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                 DLDevice device, tb_order order, tb_tensor_t **out) {
  static const unsigned char zero[16] = {0};
  tb_status st = tb_check_out("tensor_zeros", out);
  if (st != TB_OK) return st;
  const tb_dtype_info *info = tb__dtype_info(dtype);
  if (info != NULL && info->itemsize == 0) {
    /* Packed storage: zero bits are zero elements. The fresh tensor's bytes
     * are one contiguous run, filled as that many uint8 zeros by the copy
     * engine, so that device memory is zeroed by its backend like host
     * memory. */
    static const int64_t unit_stride = 1;
    const DLDataType u8 = {kDLUInt, 8, 1};
    tb_tensor_t *t;
    st = tb_tensor_empty(dtype, ndim, shape, device, order, &t);
    if (st != TB_OK) return st;
    int64_t nbytes = tb_tensor_nbytes(t);
    if (nbytes > 0) st = tb_broadcast("tensor_zeros", t, 1, &nbytes, &unit_stride, u8, zero, u8);
    return tb_hand_over(st, t, out);
  }
  return tb_tensor_full(dtype, ndim, shape, device, order, zero, dtype, out);
}

TB_API tb_status tb_tensor_full(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                DLDevice device, tb_order order, const void *value,
                                DLDataType value_dtype, tb_tensor_t **out) {
  tb_status st = tb_check_out("tensor_full", out);
  if (st != TB_OK) return st;
  tb_tensor_t *t;
  st = tb_tensor_empty(dtype, ndim, shape, device, order, &t);
  if (st != TB_OK) return st;
  return tb_hand_over(tb_tensor_fill(t, value, value_dtype), t, out);
}

static tb_status tb_check_writable(const char *what, const tb_tensor_t *t) {
  if (t->flags & TB_FLAG_READONLY) {
    return tb__fail(TB_ERR_READONLY, "%s: the destination tensor is read-only", what);
  }
  return TB_OK;
}

TB_API tb_status tb_tensor_fill(tb_tensor_t *t, const void *value, DLDataType value_dtype) {
  static const char what[] = "tensor_fill";
  if (t == NULL || value == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, t == NULL ? "tensor" : "value");
  }
  tb_status st = tb_check_writable(what, t);
  if (st != TB_OK) return st;
  return tb_broadcast(what, t, t->dl.ndim, t->dl.shape, t->dl.strides, t->dl.dtype, value,
                      value_dtype);
}

/* The host byte range [lo, hi) a tensor's elements occupy. */
static void tb_host_range(const tb_tensor_t *t, uintptr_t *lo, uintptr_t *hi) {
  tb_extent e;
  /* The layout was validated when t was made; this cannot fail. */
  (void)tb__layout_extent("range", t->dl.dtype, t->dl.ndim, t->dl.shape, t->dl.strides, &e);
  uintptr_t first = (uintptr_t)t->dl.data + (uintptr_t)t->dl.byte_offset;
  *lo = first + (uintptr_t)e.low_byte;
  *hi = first + (uintptr_t)e.high_byte;
}

static bool tb_tensors_overlap(const tb_tensor_t *a, const tb_tensor_t *b) {
  if (!tb__device_is_host(a->dl.device) || !tb__device_is_host(b->dl.device)) {
    return a->storage == b->storage;
  }
  if (tb_tensor_numel(a) == 0 || tb_tensor_numel(b) == 0) return false;
  uintptr_t alo, ahi, blo, bhi;
  tb_host_range(a, &alo, &ahi);
  tb_host_range(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

TB_API tb_status tb_tensor_copy_into(tb_tensor_t *dst, const tb_tensor_t *src,
                                     uint32_t cast_flags) {
  static const char what[] = "tensor_copy_into";
  if (dst == NULL || src == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, dst == NULL ? "dst" : "src");
  }
  tb_status st = tb_check_writable(what, dst);
  if (st != TB_OK) return st;
  if (dst->dl.ndim != src->dl.ndim) {
    return tb__fail(TB_ERR_INVALID, "%s: dst ndim = %d differs from src ndim = %d", what,
                    (int)dst->dl.ndim, (int)src->dl.ndim);
  }
  for (int32_t d = 0; d < src->dl.ndim; d++) {
    if (dst->dl.shape[d] != src->dl.shape[d]) {
      return tb__fail(TB_ERR_INVALID,
                      "%s: dst shape[%d] = %" PRId64 " differs from src shape[%d] = %" PRId64,
                      what, (int)d, dst->dl.shape[d], (int)d, src->dl.shape[d]);
    }
  }
  if ((cast_flags & ~TB_CAST_DISCARD_IMAG) != 0) {
    return tb__fail(TB_ERR_INVALID, "%s: cast_flags = 0x%x has unknown bits", what,
                    (unsigned)cast_flags);
  }
  if (tb_tensors_overlap(dst, src)) {
    /* Read everything before writing anything: stage through a copy. */
    tb_tensor_t *staged;
    st = tb_tensor_copy(src, NULL, TB_ORDER_C, 0, &staged);
    if (st != TB_OK) return st;
    st = tb_tensor_copy_into(dst, staged, cast_flags);
    tb_tensor_release(staged);
    return st;
  }
  tb_copy_desc desc = {
      .ndim = src->dl.ndim,
      .shape = src->dl.shape,
      .dst = dst->dl.data,
      .dst_byte_offset = dst->dl.byte_offset,
      .dst_strides = dst->dl.strides,
      .dst_dtype = dst->dl.dtype,
      .dst_device = dst->dl.device,
      .src = src->dl.data,
      .src_byte_offset = src->dl.byte_offset,
      .src_strides = src->dl.strides,
      .src_dtype = src->dl.dtype,
      .src_device = src->dl.device,
      .cast_flags = cast_flags,
  };
  return tb__copy(what, &desc);
}

TB_API tb_status tb_tensor_to(const tb_tensor_t *src, DLDevice device, const DLDataType *dtype,
                              tb_order order, uint32_t cast_flags, tb_tensor_t **out) {
  static const char what[] = "tensor_to";
  tb_status st = tb_check_out(what, out);
  if (st != TB_OK) return st;
  if (src == NULL) return tb__fail(TB_ERR_INVALID, "%s: src is NULL", what);
  tb_tensor_t *t;
  st = tb_tensor_empty(dtype != NULL ? *dtype : src->dl.dtype, src->dl.ndim, src->dl.shape, device,
                       order, &t);
  if (st != TB_OK) return st;
  return tb_hand_over(tb_tensor_copy_into(t, src, cast_flags), t, out);
}

TB_API tb_status tb_tensor_copy(const tb_tensor_t *src, const DLDataType *dtype, tb_order order,
                                uint32_t cast_flags, tb_tensor_t **out) {
  if (src == NULL) return tb__fail(TB_ERR_INVALID, "tensor_copy: src is NULL");
  return tb_tensor_to(src, src->dl.device, dtype, order, cast_flags, out);
}

TB_API tb_status tb_tensor_new(const void *data, DLDataType src_dtype, int32_t ndim,
                               const int64_t *shape, const int64_t *strides,
                               const DLDataType *dtype, tb_order order, uint32_t cast_flags,
                               tb_tensor_t **out) {
  static const char what[] = "tensor_new";
  tb_status st = tb_check_out(what, out);
  if (st != TB_OK) return st;
  /* Borrow the caller's memory for the duration of the copy. The cast drops
   * const only to fit the view; the view is read-only and never written. */
  tb_tensor_t *view;
  st = tb_from_array((void *)(uintptr_t)data, 0, src_dtype, ndim, shape, strides,
                     (DLDevice){kDLCPU, 0}, TB_FLAG_READONLY, NULL, NULL, &view);
  if (st != TB_OK) return st;
  st = tb_tensor_copy(view, dtype, order, cast_flags, out);
  tb_tensor_release(view);
  return st;
}

/* ---- queries ---- */

TB_API int32_t tb_tensor_ndim(const tb_tensor_t *t) { return t->dl.ndim; }
TB_API const int64_t *tb_tensor_shape(const tb_tensor_t *t) { return t->dl.shape; }
TB_API const int64_t *tb_tensor_strides(const tb_tensor_t *t) { return t->dl.strides; }
TB_API DLDataType tb_tensor_dtype(const tb_tensor_t *t) { return t->dl.dtype; }
TB_API DLDevice tb_tensor_device(const tb_tensor_t *t) { return t->dl.device; }
TB_API void tb_tensor_dtype_p(const tb_tensor_t *t, DLDataType *out) { *out = t->dl.dtype; }
TB_API void tb_tensor_device_p(const tb_tensor_t *t, DLDevice *out) { *out = t->dl.device; }
TB_API void *tb_tensor_base(const tb_tensor_t *t) { return t->dl.data; }
TB_API uint64_t tb_tensor_byte_offset(const tb_tensor_t *t) { return t->dl.byte_offset; }
TB_API bool tb_tensor_is_readonly(const tb_tensor_t *t) {
  return (t->flags & TB_FLAG_READONLY) != 0;
}
TB_API const DLTensor *tb_tensor_dltensor(const tb_tensor_t *t) { return &t->dl; }

TB_API bool tb_tensor_shares_storage(const tb_tensor_t *a, const tb_tensor_t *b) {
  return a->storage == b->storage;
}

TB_API void *tb_tensor_data(const tb_tensor_t *t) {
  if (!tb__device_is_host(t->dl.device) || t->dl.data == NULL) return NULL;
  return (char *)t->dl.data + t->dl.byte_offset;
}

TB_API int64_t tb_tensor_numel(const tb_tensor_t *t) {
  int64_t n = 1; /* validated at construction: cannot overflow */
  for (int32_t d = 0; d < t->dl.ndim; d++) n *= t->dl.shape[d];
  return n;
}

TB_API int64_t tb_tensor_nbytes(const tb_tensor_t *t) {
  const tb_dtype_info *info = tb__dtype_info(t->dl.dtype);
  int64_t n = tb_tensor_numel(t);
  return info->itemsize > 0 ? n * (int64_t)info->itemsize : (n * info->bits + 7) / 8;
}

TB_API bool tb_tensor_is_contiguous(const tb_tensor_t *t, tb_order order) {
  return tb__layout_is_contiguous(t->dl.ndim, t->dl.shape, t->dl.strides, order);
}

TB_API tb_status tb_tensor_element_ptr(const tb_tensor_t *t, const int64_t *index, void **out) {
  static const char what[] = "tensor_element_ptr";
  if (t == NULL || out == NULL || (index == NULL && t->dl.ndim > 0)) {
    return tb__fail(TB_ERR_INVALID, "%s: tensor, index and out must not be NULL", what);
  }
  char *p = tb_tensor_data(t);
  if (p == NULL && tb_tensor_numel(t) > 0) {
    return tb__fail(TB_ERR_DEVICE, "%s: device %s:%d is not host-accessible", what,
                    tb__device_type_name((int32_t)t->dl.device.device_type),
                    (int)t->dl.device.device_id);
  }
  size_t item = tb_dtype_itemsize(t->dl.dtype);
  if (item == 0) {
    return tb__fail(TB_ERR_DTYPE, "%s: %s elements are packed and not addressable", what,
                    tb_dtype_name(t->dl.dtype));
  }
  int64_t offset = 0;
  for (int32_t d = 0; d < t->dl.ndim; d++) {
    if (index[d] < 0 || index[d] >= t->dl.shape[d]) {
      return tb__fail(TB_ERR_INDEX, "%s: index[%d] = %" PRId64 " is outside [0, %" PRId64 ")",
                      what, (int)d, index[d], t->dl.shape[d]);
    }
    /* Within [min_offset, max_offset] by the reach invariant (core/layout.h),
     * and so is every partial sum: neither this nor the byte conversion
     * below can overflow. */
    offset += index[d] * t->dl.strides[d];
  }
  *out = p + offset * (int64_t)item;
  return TB_OK;
}
