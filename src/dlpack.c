/*
 * DLPack export and import, for the versioned (1.x) and the legacy struct.
 *
 * Export: one allocation holds the managed struct, its shape and strides and
 * a reference to the exported tensor; the consumer's single deleter call
 * drops the reference and frees the block.
 *
 * Import: every field is validated before anything is kept; the producer's
 * deleter becomes the storage's deleter (run once, when the last reference
 * goes) or is run at once when the import is refused or copies.
 */
#include <inttypes.h>
#include <string.h>

#include "device.h"
#include "dtype.h"

/* ---- export ---- */

typedef struct tb_export_block {
  union {
    DLManagedTensorVersioned versioned;
    DLManagedTensor legacy;
  } managed; /* first: the deleter's `self` is the block */
  tb_tensor_t *owner;
  tb_allocator allocator;
  size_t size;
  int64_t dims[]; /* shape[ndim], strides[ndim] */
} tb_export_block;

static const tb_export_options tb_default_export = {NULL, TB_LAYOUT_ANY, TB_COPY_IF_NEEDED, 0, 0};
static const tb_import_options tb_default_import = {NULL, NULL, TB_LAYOUT_ANY, 0,
                                                    TB_COPY_IF_NEEDED, 0};

static tb_status tb_check_copy_mode(const char *what, tb_copy_mode copy, tb_layout layout) {
  if ((unsigned)copy > TB_COPY_NEVER) {
    return tb__fail(TB_ERR_INVALID, "%s: options.copy = %d is not a tb_copy_mode", what, (int)copy);
  }
  if ((unsigned)layout > TB_LAYOUT_F) {
    return tb__fail(TB_ERR_INVALID, "%s: options.layout = %d is not a tb_layout", what,
                    (int)layout);
  }
  return TB_OK;
}

static bool tb_layout_ok(const tb_tensor_t *t, tb_layout layout) {
  switch (layout) {
    case TB_LAYOUT_C: return tb_tensor_is_contiguous(t, TB_ORDER_C);
    case TB_LAYOUT_F: return tb_tensor_is_contiguous(t, TB_ORDER_F);
    default: return true;
  }
}

static const char *tb_layout_name(tb_layout layout) {
  return layout == TB_LAYOUT_F ? "Fortran-contiguous" : "C-contiguous";
}

/* Copies src into fresh memory on `device` with the given dtype and layout. */
static tb_status tb_copy_for(const tb_tensor_t *src, DLDevice device, DLDataType dtype,
                             tb_layout layout, tb_tensor_t **out) {
  return tb_tensor_to(src, device, &dtype, layout == TB_LAYOUT_F ? TB_ORDER_F : TB_ORDER_C, 0, out);
}

/* DLPack's stream exchange: the consumer's stream waits for the work the
 * library queued on the device (its default stream), without a host wait. */
static tb_status tb_export_sync(const char *what, const tb_tensor_t *t, intptr_t stream) {
  if (stream == 0 || stream == -1) return TB_OK;
  /* Pinned and managed memory are host-accessible but written by a device's
   * stream: only plain CPU memory has no stream to wait for. */
  if (t->dl.device.device_type == kDLCPU) {
    return tb__fail(TB_ERR_INVALID, "%s: stream = %" PRIdPTR " given for a %s tensor; only 0 or -1",
                    what, stream, tb__device_type_name((int32_t)t->dl.device.device_type));
  }
  const tb_device_vtable *b;
  tb_status st = tb__device_lookup(what, t->dl.device, &b);
  if (st != TB_OK || b->stream_wait == NULL) return st;
  return b->stream_wait(b, t->dl.device.device_id, NULL, (void *)stream);
}

/*
 * Chooses what to export: t itself (a new reference) or a copy when the
 * options ask for a different dtype or layout, or for a copy outright.
 */
static tb_status tb_export_source(const char *what, const tb_tensor_t *t,
                                  const tb_export_options *o, bool legacy, tb_tensor_t **out,
                                  bool *copied) {
  *out = NULL;
  tb_status st = tb_check_copy_mode(what, o->copy, o->layout);
  if (st != TB_OK) return st;
  if ((o->flags & ~TB_EXPORT_ALLOW_READONLY_LEGACY) != 0) {
    return tb__fail(TB_ERR_INVALID, "%s: options.flags = 0x%x has unknown bits", what,
                    (unsigned)o->flags);
  }
  DLDataType dtype = o->dtype != NULL ? *o->dtype : t->dl.dtype;
  const char *reason = NULL;
  if (!tb_dtype_equal(dtype, t->dl.dtype)) {
    reason = "a different dtype";
  } else if (!tb_layout_ok(t, o->layout)) {
    reason = tb_layout_name(o->layout);
  }
  bool copy = o->copy == TB_COPY_ALWAYS || (reason != NULL && o->copy == TB_COPY_IF_NEEDED);
  if (reason != NULL && o->copy == TB_COPY_NEVER) {
    return tb__fail(TB_ERR_COPY_REQUIRED, "%s: exporting as %s needs a copy and copy = NEVER",
                    what, reason);
  }
  if (legacy && !copy && (t->flags & TB_FLAG_READONLY) &&
      !(o->flags & TB_EXPORT_ALLOW_READONLY_LEGACY)) {
    return tb__fail(TB_ERR_READONLY,
                    "%s: the tensor is read-only and the legacy DLManagedTensor cannot say so; "
                    "export versioned, copy, or pass TB_EXPORT_ALLOW_READONLY_LEGACY",
                    what);
  }
  *copied = copy;
  if (copy) {
    st = tb_copy_for(t, t->dl.device, dtype, o->layout, out);
  } else {
    *out = tb_tensor_retain((tb_tensor_t *)(uintptr_t)t);
  }
  if (st == TB_OK) st = tb_export_sync(what, *out, o->stream);
  if (st != TB_OK && *out != NULL) {
    tb_tensor_release(*out);
    *out = NULL;
  }
  return st;
}

/* Fills `dl` from `t`: data at the first element where data is an address,
 * NULL when empty; shape and strides copied into `dims`. */
static void tb_export_dltensor(const tb_tensor_t *t, int64_t *dims, DLTensor *dl) {
  int32_t nd = t->dl.ndim;
  if (nd > 0) {
    memcpy(dims, t->dl.shape, (size_t)nd * sizeof *dims);
    memcpy(dims + nd, t->dl.strides, (size_t)nd * sizeof *dims);
  }
  *dl = t->dl;
  dl->shape = dims;
  dl->strides = dims + nd;
  if (tb_tensor_numel(t) == 0) {
    dl->data = NULL;
    dl->byte_offset = 0;
  } else if (tb__device_data_is_address(t->dl.device)) {
    dl->data = (void *)((uintptr_t)t->dl.data + (uintptr_t)t->dl.byte_offset);
    dl->byte_offset = 0;
  }
}

static void tb_export_free(tb_export_block *b) {
  tb_tensor_release(b->owner);
  tb_allocator allocator = b->allocator;
  tb__free(&allocator, b, b->size);
}

static void tb_delete_versioned(DLManagedTensorVersioned *self) {
  if (self != NULL) tb_export_free((tb_export_block *)(void *)self);
}

static void tb_delete_legacy(DLManagedTensor *self) {
  if (self != NULL) tb_export_free((tb_export_block *)(void *)self);
}

static tb_status tb_export(const char *what, const tb_tensor_t *t, const tb_export_options *o,
                           bool legacy, const void *user_out, tb_export_block **out,
                           bool *copied) {
  if (t == NULL || user_out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, t == NULL ? "tensor" : "out");
  }
  tb_tensor_t *src;
  tb_status st = tb_export_source(what, t, o != NULL ? o : &tb_default_export, legacy, &src,
                                  copied);
  if (st != TB_OK) return st;
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  size_t size = sizeof(tb_export_block) + 2 * (size_t)src->dl.ndim * sizeof(int64_t);
  tb_export_block *b = tb__alloc(&allocator, size, _Alignof(tb_export_block), what);
  if (b == NULL) {
    tb_tensor_release(src);
    return TB_ERR_NOMEM;
  }
  /* No memset: the caller sets every field of the managed struct, and
   * zeroing the block first (`rep stos`) cost as much as the rest. */
  b->owner = src;
  b->allocator = allocator;
  b->size = size;
  *out = b;
  return TB_OK;
}

TB_API tb_status tb_to_dlpack_versioned(const tb_tensor_t *t, const tb_export_options *options,
                                        DLManagedTensorVersioned **out) {
  tb_export_block *b = NULL;
  bool copied = false;
  tb_status st = tb_export("to_dlpack_versioned", t, options, false, out, &b, &copied);
  if (st != TB_OK) return st;
  DLManagedTensorVersioned *m = &b->managed.versioned;
  m->version = (DLPackVersion){TB_DLPACK_MAJOR, TB_DLPACK_MINOR};
  m->manager_ctx = b->owner;
  m->deleter = tb_delete_versioned;
  m->flags = 0;
  if (b->owner->flags & TB_FLAG_READONLY) m->flags |= DLPACK_FLAG_BITMASK_READ_ONLY;
  if (copied) m->flags |= DLPACK_FLAG_BITMASK_IS_COPIED;
  tb_export_dltensor(b->owner, b->dims, &m->dl_tensor);
  *out = m;
  return TB_OK;
}

TB_API tb_status tb_to_dlpack(const tb_tensor_t *t, const tb_export_options *options,
                              DLManagedTensor **out) {
  tb_export_block *b = NULL;
  bool copied = false;
  tb_status st = tb_export("to_dlpack", t, options, true, out, &b, &copied);
  if (st != TB_OK) return st;
  DLManagedTensor *m = &b->managed.legacy;
  m->manager_ctx = b->owner;
  m->deleter = tb_delete_legacy;
  tb_export_dltensor(b->owner, b->dims, &m->dl_tensor);
  *out = m;
  return TB_OK;
}

/* ---- import ---- */

static void tb_call_versioned_deleter(void *data, void *ctx) {
  (void)data;
  DLManagedTensorVersioned *m = ctx;
  if (m->deleter != NULL) m->deleter(m);
}

static void tb_call_legacy_deleter(void *data, void *ctx) {
  (void)data;
  DLManagedTensor *m = ctx;
  if (m->deleter != NULL) m->deleter(m);
}

/* What the producer says about the memory beyond the DLTensor itself. */
typedef struct tb_import_source {
  bool strides_may_be_null; /* legacy, or versioned minor < 2 */
  bool readonly;            /* READ_ONLY, or TB_FLAG_READONLY for borrowed tensors */
  bool copied;              /* IS_COPIED: nobody else sees this memory */
  tb_deleter_fn deleter;
  void *ctx;
} tb_import_source;

/* The checks that tb__wrap does not make itself, in the facts sheet's order. */
static tb_status tb_validate_dltensor(const char *what, const DLTensor *dl,
                                      const tb_import_source *src) {
  if (dl->ndim < 0 || dl->ndim > TB_MAX_NDIM) {
    return tb__fail(TB_ERR_INVALID, "%s: ndim = %d is outside [0, %d]", what, (int)dl->ndim,
                    TB_MAX_NDIM);
  }
  if (dl->ndim > 0 && dl->shape == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: shape is NULL with ndim = %d", what, (int)dl->ndim);
  }
  if (dl->ndim > 0 && dl->strides == NULL && !src->strides_may_be_null) {
    return tb__fail(TB_ERR_INVALID,
                    "%s: strides is NULL with ndim = %d; DLPack >= 1.2 requires strides", what,
                    (int)dl->ndim);
  }
  return TB_OK;
}

/* Whether the shared tensor meets the options, or why not. */
static const char *tb_import_mismatch(const tb_tensor_t *t, const tb_import_options *o,
                                      const tb_import_source *src) {
  if (o->dtype != NULL && !tb_dtype_equal(*o->dtype, t->dl.dtype)) return "a different dtype";
  if (o->device != NULL && (o->device->device_type != t->dl.device.device_type ||
                            o->device->device_id != t->dl.device.device_id)) {
    return "a different device";
  }
  if (!tb_layout_ok(t, o->layout)) return tb_layout_name(o->layout);
  if ((o->flags & TB_IMPORT_REQUIRE_WRITABLE) && src->readonly) return "a writable tensor";
  if (o->alignment > 1 && tb_tensor_numel(t) > 0 &&
      ((uintptr_t)t->dl.data + (uintptr_t)t->dl.byte_offset) % o->alignment != 0) {
    return "aligned data";
  }
  return NULL;
}

static tb_status tb_check_import_options(const char *what, const tb_import_options *o) {
  tb_status st = tb_check_copy_mode(what, o->copy, o->layout);
  if (st != TB_OK) return st;
  if ((o->flags & ~(TB_IMPORT_REQUIRE_WRITABLE | TB_IMPORT_KEEP_ON_ERROR)) != 0) {
    return tb__fail(TB_ERR_INVALID, "%s: options.flags = 0x%x has unknown bits", what,
                    (unsigned)o->flags);
  }
  if (o->alignment != 0 && (o->alignment & (o->alignment - 1)) != 0) {
    return tb__fail(TB_ERR_INVALID, "%s: options.alignment = %u is not a power of two", what,
                    (unsigned)o->alignment);
  }
  if (o->alignment > TB_DATA_ALIGNMENT && o->copy != TB_COPY_NEVER) {
    return tb__fail(TB_ERR_UNSUPPORTED,
                    "%s: options.alignment = %u exceeds what a copy guarantees (%d)", what,
                    (unsigned)o->alignment, TB_DATA_ALIGNMENT);
  }
  return TB_OK;
}

/*
 * The one import path. On every return the producer's deleter has either
 * become the storage's deleter of the shared tensor or has already run.
 */
/*
 * Asks the device's backend where the data really lives: a managed
 * allocation takes the GPU it belongs to, and a pointer declared on one GPU
 * but living on another is refused. Unknown pointers keep the declared device.
 * The question is a probe: when the backend cannot answer (no driver, no
 * device, a pointer it does not know) the import carries on, and the
 * message the backend recorded is taken back, since a successful import
 * leaves tb_last_error() as it was. Without a device there is nothing to
 * ask; tb__wrap then refuses device memory and accepts host-accessible
 * memory (pinned, managed) as host memory.
 */
static tb_status tb_resolve_device(const char *what, const DLTensor *dl, DLDevice *device) {
  const tb_device_vtable *b = tb_get_backend((int32_t)dl->device.device_type);
  if (b == NULL || b->pointer_device == NULL || dl->data == NULL ||
      !tb__device_data_is_address(dl->device) || b->device_count(b) <= 0) {
    return TB_OK;
  }
  DLDevice found;
  const void *first = (const void *)((uintptr_t)dl->data + (uintptr_t)dl->byte_offset);
  tb_error_save saved;
  tb__error_save(&saved);
  if (b->pointer_device(b, first, &found) != TB_OK) {
    tb__error_restore(&saved);
    return TB_OK;
  }
  if (found.device_type != dl->device.device_type || found.device_id == dl->device.device_id) {
    return TB_OK;
  }
  if ((int32_t)dl->device.device_type == TB_DL_CUDA_MANAGED) {
    device->device_id = found.device_id;
    return TB_OK;
  }
  return tb__fail(TB_ERR_DEVICE, "%s: data lives on %s:%d, not on %s:%d as declared", what,
                  tb__device_type_name((int32_t)found.device_type), (int)found.device_id,
                  tb__device_type_name((int32_t)dl->device.device_type), (int)dl->device.device_id);
}

/* Gives a refused import back: the producer's deleter runs now, unless the
 * caller asked to keep ownership on refusal. */
static tb_status tb_refuse(const tb_import_source *src, const tb_import_options *o, void *data,
                           tb_status st) {
  if (src->deleter != NULL && !(o->flags & TB_IMPORT_KEEP_ON_ERROR)) src->deleter(data, src->ctx);
  return st;
}

/* Drops the shared tensor of a refused import; with TB_IMPORT_KEEP_ON_ERROR
 * its storage forgets the producer's deleter first (this is the only
 * reference, so nobody else can be relying on it). */
static void tb_release_refused(tb_tensor_t *shared, const tb_import_options *o) {
  if (o->flags & TB_IMPORT_KEEP_ON_ERROR) shared->storage->deleter = NULL;
  tb_tensor_release(shared);
}

static tb_status tb_import(const char *what, const DLTensor *dl, const tb_import_source *src,
                           const tb_import_options *o, tb_tensor_t **out) {
  tb_status st = TB_OK;
  if (out == NULL) st = tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  if (st == TB_OK) st = tb_check_import_options(what, o);
  if (st == TB_OK) st = tb_validate_dltensor(what, dl, src);
  DLDevice device = dl->device;
  if (st == TB_OK) st = tb_resolve_device(what, dl, &device);
  tb_tensor_t *shared = NULL;
  if (st == TB_OK) {
    st = tb__wrap(what, dl->data, dl->byte_offset, dl->dtype, dl->ndim, dl->shape, dl->strides,
                  device, src->readonly ? TB_FLAG_READONLY : 0, src->deleter, src->ctx, &shared);
  }
  if (st != TB_OK) return tb_refuse(src, o, dl->data, st);
  const char *reason = tb_import_mismatch(shared, o, src);
  /* A request the shared memory cannot meet needs a copy; ALWAYS needs one
   * unless the producer already made this memory for us alone. */
  bool copy = reason != NULL || (o->copy == TB_COPY_ALWAYS && !src->copied);
  if (reason != NULL && o->copy == TB_COPY_NEVER) {
    tb_release_refused(shared, o);
    return tb__fail(TB_ERR_COPY_REQUIRED, "%s: the request needs %s, which needs a copy, and copy = NEVER",
                    what, reason);
  }
  if (!copy) {
    *out = shared;
    return TB_OK;
  }
  tb_tensor_t *fresh;
  st = tb_copy_for(shared, o->device != NULL ? *o->device : shared->dl.device,
                   o->dtype != NULL ? *o->dtype : shared->dl.dtype, o->layout, &fresh);
  if (st != TB_OK) {
    tb_release_refused(shared, o);
    return st;
  }
  tb_tensor_release(shared); /* the producer's memory is no longer needed */
  *out = fresh;
  return TB_OK;
}

TB_API tb_status tb_from_dlpack_versioned(DLManagedTensorVersioned *managed,
                                          const tb_import_options *options, tb_tensor_t **out) {
  static const char what[] = "dlpack import";
  if (managed == NULL) return tb__fail(TB_ERR_INVALID, "%s: managed is NULL", what);
  const tb_import_options *o = options != NULL ? options : &tb_default_import;
  tb_import_source src = {
      .strides_may_be_null = managed->version.minor < 2,
      .deleter = tb_call_versioned_deleter,
      .ctx = managed,
  };
  if (managed->version.major != TB_DLPACK_MAJOR) {
    /* Only the fields before `flags` are stable across majors. */
    uint32_t major = managed->version.major;
    tb_refuse(&src, o, NULL, TB_OK);
    return tb__fail(TB_ERR_VERSION, "%s: version.major = %u, this library speaks %d", what,
                    (unsigned)major, TB_DLPACK_MAJOR);
  }
  const uint64_t known = DLPACK_FLAG_BITMASK_READ_ONLY | DLPACK_FLAG_BITMASK_IS_COPIED;
  if ((managed->flags & ~known) != 0) {
    uint64_t flags = managed->flags;
    tb_refuse(&src, o, NULL, TB_OK);
    return tb__fail(TB_ERR_UNSUPPORTED,
                    "%s: flags = 0x%" PRIx64 " has bits this library does not support%s", what,
                    flags,
                    (flags & DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED)
                        ? " (IS_SUBBYTE_TYPE_PADDED: only packed sub-byte data is supported)"
                        : "");
  }
  src.readonly = (managed->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0;
  src.copied = (managed->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0;
  return tb_import(what, &managed->dl_tensor, &src, o, out);
}

TB_API tb_status tb_from_dlpack(DLManagedTensor *managed, const tb_import_options *options,
                                tb_tensor_t **out) {
  static const char what[] = "dlpack import (legacy)";
  if (managed == NULL) return tb__fail(TB_ERR_INVALID, "%s: managed is NULL", what);
  tb_import_source src = {
      .strides_may_be_null = true,
      .deleter = tb_call_legacy_deleter,
      .ctx = managed,
  };
  return tb_import(what, &managed->dl_tensor, &src, options != NULL ? options : &tb_default_import,
                   out);
}

TB_API tb_status tb_from_dltensor(const DLTensor *tensor, uint32_t flags,
                                  const tb_import_options *options, tb_tensor_t **out) {
  static const char what[] = "dltensor import";
  if (tensor == NULL) return tb__fail(TB_ERR_INVALID, "%s: tensor is NULL", what);
  if ((flags & ~TB_FLAG_READONLY) != 0) {
    return tb__fail(TB_ERR_INVALID, "%s: flags = 0x%x has unknown bits", what, (unsigned)flags);
  }
  tb_import_source src = {
      .strides_may_be_null = true,
      .readonly = (flags & TB_FLAG_READONLY) != 0,
  };
  return tb_import(what, tensor, &src, options != NULL ? options : &tb_default_import, out);
}
