/* Internal declarations shared by the library's modules. Not installed. */
#ifndef TB_INTERNAL_H
#define TB_INTERNAL_H

#include <stdatomic.h>
#include <string.h>

#include "tensorbridge/tensorbridge.h"

/* Internal symbols carry a double-underscore prefix and stay hidden. */
#define TB_INTERNAL __attribute__((visibility("hidden")))

#if defined(__GNUC__) || defined(__clang__)
#define TB_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#define TB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TB_PRINTF(fmt_index, first_arg)
#define TB_UNLIKELY(x) (x)
#endif

/* ---- errors (error.c) ---- */

/* Records a message for the calling thread and returns status unchanged, so
 * that failure paths read `return tb__fail(TB_ERR_INVALID, "...", ...);`. */
TB_INTERNAL tb_status tb__fail(tb_status status, const char *fmt, ...) TB_PRINTF(2, 3);

/*
 * Probes: a call whose failure the caller recovers from (a backend asked
 * whether it can run a copy, or where a pointer lives) records a message
 * like any failure, but the public call around it may still succeed, and a
 * successful public call leaves tb_last_error() untouched. Save the message
 * before such a probe and put it back when the probe failed and the caller
 * carries on. The buffer is as large as error.c's, so nothing is cut.
 */
#define TB__ERROR_SAVE_CAPACITY 512
typedef struct tb_error_save {
  char text[TB__ERROR_SAVE_CAPACITY];
} tb_error_save;
static inline void tb__error_save(tb_error_save *s) {
  const char *m = tb_last_error();
  size_t n = strlen(m);
  if (n >= sizeof s->text) n = sizeof s->text - 1;
  memcpy(s->text, m, n);
  s->text[n] = '\0';
}
static inline void tb__error_restore(const tb_error_save *s) {
  (void)tb__fail(TB_OK, "%s", s->text);
}

/* ---- allocator (alloc.c) ---- */

/* A snapshot of the current allocator; objects keep theirs to free with. */
TB_INTERNAL void tb__allocator_current(tb_allocator *out);
/* Allocates through `a`; on failure records a TB_ERR_NOMEM message naming
 * `what` and returns NULL. */
TB_INTERNAL void *tb__alloc(const tb_allocator *a, size_t size, size_t alignment,
                            const char *what);
TB_INTERNAL void tb__free(const tb_allocator *a, void *ptr, size_t size);

/* ---- devices ---- */

/* Devices whose memory the CPU can address directly. */
TB_INTERNAL bool tb__device_is_host(DLDevice device);
/* Devices whose DLTensor.data is an address (pointer arithmetic is
 * meaningful), as opposed to a handle such as an OpenCL cl_mem. */
TB_INTERNAL bool tb__device_data_is_address(DLDevice device);
/* A known DLPack 1.3 device type (any backend or none). */
TB_INTERNAL bool tb__device_type_known(int32_t device_type);
/* "cpu", "cuda", ... for messages; "unknown" otherwise. */
TB_INTERNAL const char *tb__device_type_name(int32_t device_type);

/* ---- storage (storage.c) ---- */

typedef struct tb_device_vtable tb_device_vtable;

/*
 * A block of memory on one device and how to free it. Shared by every tensor
 * that views it; freed exactly once, by whichever release drops the count to 0.
 *
 * The record itself lives inside a larger allocation, `block`: the header of
 * the tensor that created the storage (one allocation per construction, see
 * tb__tensor_make_owner). That header is freed with the storage, never
 * before, so views may outlive the tensor they came from.
 */
typedef struct tb_storage {
  atomic_int_fast64_t refcount;
  void *data;          /* base pointer or device handle */
  uint64_t nbytes;     /* bytes addressable from data */
  DLDevice device;
  tb_deleter_fn deleter; /* external owner's deleter, or NULL */
  void *deleter_data;    /* the pointer the owner handed over */
  void *deleter_ctx;
  const tb_device_vtable *backend; /* frees data when the library owns it */
  tb_allocator allocator;          /* frees block (and, via backend, data) */
  void *block;                     /* the allocation holding this record */
  size_t block_size;
} tb_storage;

/* Initialises a record inside `block` (block_size bytes from allocator) with
 * refcount 1 and no memory: releasing it then frees only the block. */
TB_INTERNAL void tb__storage_init(tb_storage *s, const tb_allocator *allocator, void *block,
                                  size_t block_size);
/* Gives an initialised, empty storage nbytes of fresh memory on device, from
 * the device's backend. On failure the storage stays empty. */
TB_INTERNAL tb_status tb__storage_alloc_data(tb_storage *s, DLDevice device, uint64_t nbytes);
TB_INTERNAL void tb__storage_retain(tb_storage *s);
TB_INTERNAL void tb__storage_release(tb_storage *s);

/* ---- tensors (tensor.c) ---- */

struct tb_tensor {
  DLTensor dl;                 /* shape and strides point into dims[] */
  atomic_int_fast64_t refcount;
  tb_storage *storage;         /* one reference held */
  uint32_t flags;              /* TB_FLAG_* */
  tb_allocator allocator;      /* frees this header */
  int64_t dims[];              /* shape[ndim] then strides[ndim] */
};

/*
 * Makes a tensor header over `storage` (takes a new reference to it). shape
 * and strides are copied. Views go through it, and it enforces the reach
 * invariant (core/layout.h) on what they make: the layout must pass
 * tb__layout_extent, and a non-empty one must lie inside the storage,
 * [byte_offset + low_byte, byte_offset + high_byte) within [0, nbytes],
 * else TB_ERR_OVERFLOW prefixed by `what` (a reshape of an empty tensor to
 * a shape whose reach overflows, an expand whose element count does).
 * `within_source` says the caller derived the layout from a tensor's so
 * that its reach is a subset of that tensor's (view.c's select, slice,
 * permute, squeeze, unsqueeze, non-empty reshape): the check is then
 * skipped in optimized builds, where it would cost a quarter of a view,
 * and still made in unoptimized ones (the sanitizer build), so that the
 * tests verify every such derivation.
 */
TB_INTERNAL tb_status tb__tensor_make(const char *what, tb_storage *storage, DLDataType dtype,
                                      int32_t ndim, const int64_t *shape,
                                      const int64_t *strides, uint64_t byte_offset,
                                      uint32_t flags, bool within_source, tb_tensor_t **out);

/*
 * Makes a tensor together with a new, empty storage, in one allocation: the
 * storage record sits after the header and holds the tensor's reference.
 * The caller then gives the storage its memory (external, or through
 * tb__storage_alloc_data) and sets dl.data; on failure, releasing the tensor
 * frees the block and nothing else. Every constructor that makes storage
 * goes through it.
 */
TB_INTERNAL tb_status tb__tensor_make_owner(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                            const int64_t *strides, uint64_t byte_offset,
                                            uint32_t flags, tb_tensor_t **out);

/* tb_from_array with `what` prefixing its messages (DLPack imports use it). */
TB_INTERNAL tb_status tb__wrap(const char *what, void *data, uint64_t byte_offset,
                               DLDataType dtype, int32_t ndim, const int64_t *shape,
                               const int64_t *strides, DLDevice device, uint32_t flags,
                               tb_deleter_fn deleter, void *ctx, tb_tensor_t **out);

/* Layout arithmetic (shape, strides, extents, the reach invariant). */
#include "core/layout.h"

#endif /* TB_INTERNAL_H */
