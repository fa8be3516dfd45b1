/*
 * DLPack: export (__dlpack__, __dlpack_device__, the capsule destructors),
 * import (from_dlpack: a producer's C exchange table, __dlpack__ capsules,
 * the buffer protocol, with a per-type cache of what a producer offers), the
 * storage deleters that take the GIL, and the DLPack 1.3 C exchange table
 * this module publishes on the Tensor type.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

#include <stdatomic.h>

/* ------------------------------------------------------------------------ */
/* The DLPack 1.3 C exchange table. Declared here: the system's dlpack.h     */
/* (Debian: 0.6) predates it.                                               */
/* ------------------------------------------------------------------------ */

typedef struct tbpy_exchange_header {
  DLPackVersion version;
  struct tbpy_exchange_header *prev_api;
} tbpy_exchange_header;

typedef void (*tbpy_set_error_fn)(void *error_ctx, const char *kind, const char *message);

typedef struct tbpy_exchange_api {
  tbpy_exchange_header header;
  int (*managed_tensor_allocator)(DLTensor *prototype, DLManagedTensorVersioned **out,
                                  void *error_ctx, tbpy_set_error_fn set_error);
  int (*managed_tensor_from_py_object_no_sync)(void *py_object, DLManagedTensorVersioned **out);
  int (*managed_tensor_to_py_object_no_sync)(DLManagedTensorVersioned *tensor,
                                             void **out_py_object);
  int (*dltensor_from_py_object_no_sync)(void *py_object, DLTensor *out);
  int (*current_work_stream)(DLDeviceType device_type, int32_t device_id, void **out_stream);
} tbpy_exchange_api;

static const char kCapsuleVersioned[] = "dltensor_versioned";
static const char kCapsuleLegacy[] = "dltensor";
static const char kCapsuleUsedVersioned[] = "used_dltensor_versioned";
static const char kCapsuleUsedLegacy[] = "used_dltensor";
static const char kCapsuleExchange[] = "dlpack_exchange_api";

/* ------------------------------------------------------------------------ */
/* Deleters that may end in Python code                                     */
/* ------------------------------------------------------------------------ */

/*
 * Takes the GIL from any thread. Returns false, touching nothing, when
 * Python code must not run: the interpreter is gone, or it is finalizing and
 * this thread does not hold the GIL (taking it then could block forever).
 * The memory concerned is then left to the process's exit.
 */
static bool tbpy_gil_enter(PyGILState_STATE *state) {
  if (!Py_IsInitialized()) return false;
  if (!PyGILState_Check() && TBPY_IS_FINALIZING()) return false;
  *state = PyGILState_Ensure();
  return true;
}

/* Runs fn(arg) holding the GIL: directly when this thread holds it already
 * (the common case: a Tensor deallocated by Python), else through
 * tbpy_gil_enter. */
static void tbpy_call_with_gil(void (*fn)(void *), void *arg) {
  if (Py_IsInitialized() && PyGILState_Check()) {
    fn(arg);
    return;
  }
  PyGILState_STATE state;
  if (!tbpy_gil_enter(&state)) return;
  fn(arg);
  PyGILState_Release(state);
}

/* Storage deleter for memory shared through the buffer protocol. */
static void release_py_buffer_locked(void *ctx) {
  Py_buffer *view = ctx;
  PyBuffer_Release(view);
  PyMem_RawFree(view);
}

static void release_py_buffer(void *data, void *ctx) {
  (void)data;
  tbpy_call_with_gil(release_py_buffer_locked, ctx);
}

/* Storage deleters for a producer's DLPack tensor. Old producers (NumPy 1.x)
 * decref Python objects in their deleters without taking the GIL, so it is
 * taken for them. */
static void delete_versioned_locked(void *ctx) {
  DLManagedTensorVersioned *m = ctx;
  m->deleter(m);
}

static void delete_legacy_locked(void *ctx) {
  DLManagedTensor *m = ctx;
  m->deleter(m);
}

static void delete_foreign_versioned(void *data, void *ctx) {
  (void)data;
  DLManagedTensorVersioned *m = ctx;
  if (m->deleter != NULL) tbpy_call_with_gil(delete_versioned_locked, m);
}

static void delete_foreign_legacy(void *data, void *ctx) {
  (void)data;
  DLManagedTensor *m = ctx;
  if (m->deleter != NULL) tbpy_call_with_gil(delete_legacy_locked, m);
}

/* ------------------------------------------------------------------------ */
/* DLPack export                                                            */
/* ------------------------------------------------------------------------ */

static void capsule_delete_versioned(PyObject *capsule) {
  /* A consumer that took the tensor renamed the capsule: nothing to do. */
  if (!PyCapsule_IsValid(capsule, kCapsuleVersioned)) return;
  DLManagedTensorVersioned *m = PyCapsule_GetPointer(capsule, kCapsuleVersioned);
  if (m != NULL && m->deleter != NULL) m->deleter(m);
}

static void capsule_delete_legacy(PyObject *capsule) {
  if (!PyCapsule_IsValid(capsule, kCapsuleLegacy)) return;
  DLManagedTensor *m = PyCapsule_GetPointer(capsule, kCapsuleLegacy);
  if (m != NULL && m->deleter != NULL) m->deleter(m);
}

PyObject *tbpy_Tensor_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames) {
  static const int params[] = {KW_STREAM, KW_MAX_VERSION, KW_DL_DEVICE, KW_COPY};
  PyObject *a[4];
  if (tbpy_parse_args("__dlpack__", args, nargs, kwnames, params, 4, 0, 0, a) < 0) return NULL;
  const tb_tensor_t *t = TENSOR(self);
  DLDevice own = tb_tensor_device(t);

  /* stream: None is "not given" (0 for the library); 0 itself is forbidden. */
  intptr_t stream = 0;
  if (a[0] != NULL && a[0] != Py_None) {
    if (!PyLong_Check(a[0])) {
      PyErr_Format(PyExc_TypeError, "__dlpack__: stream must be None or an int, not %R", a[0]);
      return NULL;
    }
    long long s = PyLong_AsLongLong(a[0]);
    if (s == -1 && PyErr_Occurred()) return NULL;
    if (tbpy_device_is_host(own) && s != -1) {
      PyErr_Format(PyExc_ValueError,
                   "__dlpack__: a tensor on the %s has no streams: stream must be None (or -1), "
                   "not %lld", own.device_type == kDLCPU ? "CPU" : "host", s);
      return NULL;
    }
    if (s == 0) {
      PyErr_SetString(PyExc_ValueError,
                      "__dlpack__: stream = 0 is ambiguous in DLPack: pass None or 1 for the "
                      "legacy default stream, 2 for the per-thread default stream, or a stream's "
                      "handle");
      return NULL;
    }
    stream = (intptr_t)s;
  }

  bool versioned = false;
  long answer_minor = TB_DLPACK_MINOR; /* the highest 1.x minor not above the consumer's */
  if (a[1] != NULL && a[1] != Py_None) {
    PyObject *seq = a[1];
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) != 2) {
      PyErr_Format(PyExc_TypeError, "__dlpack__: max_version must be a (major, minor) tuple, not %R",
                   seq);
      return NULL;
    }
    long major = PyLong_AsLong(PyTuple_GET_ITEM(seq, 0));
    if (major == -1 && PyErr_Occurred()) return NULL;
    long minor = PyLong_AsLong(PyTuple_GET_ITEM(seq, 1));
    if (minor == -1 && PyErr_Occurred()) return NULL;
    versioned = major >= 1;
    if (major == 1 && minor < TB_DLPACK_MINOR) answer_minor = minor < 0 ? 0 : minor;
  }

  tb_copy_mode copy;
  if (tbpy_copy_mode_from_py(a[3], &copy) < 0) return NULL;

  tb_tensor_t *src = NULL; /* a copy on the requested device, when one was asked */
  if (a[2] != NULL && a[2] != Py_None) {
    DLDevice want;
    if (tbpy_device_from_py(a[2], &want) < 0) {
      /* A (type, id) pair naming a device this producer cannot export to is
       * a BufferError (the array API's rule); a malformed dl_device keeps its
       * ValueError or TypeError. */
      if (PyErr_ExceptionMatches(PyExc_ValueError) && PyTuple_Check(a[2]) &&
          PyTuple_GET_SIZE(a[2]) == 2) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_Format(PyExc_BufferError, "__dlpack__: cannot export to dl_device=%R: %S", a[2],
                     value != NULL ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
      }
      return NULL;
    }
    if (!tbpy_device_equal(want, own)) {
      if (copy == TB_COPY_NEVER) {
        PyErr_SetString(PyExc_BufferError,
                        "__dlpack__: dl_device differs from the tensor's device, which needs a "
                        "copy, and copy=False");
        return NULL;
      }
      tb_status st = tb_tensor_to(t, want, NULL, TB_ORDER_C, 0, &src);
      if (st != TB_OK) return tbpy_raise_buffer(st);
      copy = TB_COPY_IF_NEEDED; /* src is already fresh */
    }
  }

  if (!versioned && src == NULL && copy != TB_COPY_ALWAYS && tb_tensor_is_readonly(t)) {
    PyErr_SetString(PyExc_BufferError,
                    "__dlpack__: the tensor is read-only, and a legacy capsule (asked for without "
                    "max_version) cannot say so: a consumer that passes max_version=(1, 0) or "
                    "later gets it read-only; copy=True exports a writable copy (or hand over "
                    "t.copy())");
    return NULL;
  }
  tb_export_options options = {.copy = copy, .stream = stream};
  PyObject *capsule = NULL;
  if (versioned) {
    DLManagedTensorVersioned *m;
    tb_status st = tb_to_dlpack_versioned(src != NULL ? src : t, &options, &m);
    if (st != TB_OK) {
      tb_tensor_release(src);
      return tbpy_raise_buffer(st);
    }
    if (src != NULL) m->flags |= DLPACK_FLAG_BITMASK_IS_COPIED;
    /* The struct is the same across 1.x; its version says what the consumer
     * may rely on, so it names the consumer's minor when that is lower, and
     * what that minor cannot express is refused. */
    const char *needs = NULL;
    const DLTensor *dl = &m->dl_tensor;
    if (answer_minor < 1 && dl->dtype.code >= TB_DL_FLOAT8_E3M4 && dl->dtype.code <= TB_DL_FLOAT4_E2M1FN) {
      needs = "float8/float6/float4 dtypes need DLPack 1.1";
    } else if (answer_minor < 1 && (m->flags & DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED)) {
      needs = "padded sub-byte dtypes need DLPack 1.1";
    } else if (answer_minor < 2 && (int)dl->device.device_type == TB_DL_TRN) {
      needs = "Trainium devices need DLPack 1.2";
    }
    if (needs != NULL) {
      m->deleter(m);
      tb_tensor_release(src);
      return PyErr_Format(PyExc_BufferError, "__dlpack__: %s; the consumer's max_version is (1, %ld)",
                          needs, answer_minor);
    }
    m->version.minor = (uint32_t)answer_minor;
    capsule = PyCapsule_New(m, kCapsuleVersioned, capsule_delete_versioned);
    if (capsule == NULL) m->deleter(m);
  } else {
    DLManagedTensor *m;
    tb_status st = tb_to_dlpack(src != NULL ? src : t, &options, &m);
    if (st != TB_OK) {
      tb_tensor_release(src);
      return tbpy_raise_buffer(st);
    }
    capsule = PyCapsule_New(m, kCapsuleLegacy, capsule_delete_legacy);
    if (capsule == NULL) m->deleter(m);
  }
  tb_tensor_release(src);
  return capsule;
}

PyObject *tbpy_Tensor_dlpack_device(PyObject *self, PyObject *unused) {
  (void)unused;
  DLDevice d = tb_tensor_device(TENSOR(self));
  return Py_BuildValue("(ii)", (int)d.device_type, (int)d.device_id);
}

/* ------------------------------------------------------------------------ */
/* DLPack import                                                            */
/* ------------------------------------------------------------------------ */

typedef struct import_request {
  const DLDevice *device; /* NULL: stay on the producer's device */
  tb_copy_mode copy;
  bool legacy_writable; /* share a legacy capsule's memory writable */
} import_request;

/*
 * Imports a producer's DLTensor. On success *out is a new tensor and
 * *shared says whether it holds the producer's memory (the storage now owns
 * ctx through deleter) or is a fresh copy (the caller is done with the
 * producer's tensor and deletes it). On failure the caller still owns the
 * producer's tensor and a BufferError is set.
 */
static int import_dltensor(const char *what, const DLTensor *dl, bool readonly,
                           bool producer_copied, tb_deleter_fn deleter, void *ctx,
                           const import_request *req, tb_tensor_t **out, bool *shared) {
  bool other_device = req->device != NULL && !tbpy_device_equal(*req->device, dl->device);
  bool copy = other_device || (req->copy == TB_COPY_ALWAYS && !producer_copied);
  if (copy && req->copy == TB_COPY_NEVER) {
    PyErr_Format(PyExc_BufferError, "%s: the tensor is on another device than the one asked "
                 "for, which needs a copy, and copy=False", what);
    return -1;
  }
  tb_status st;
  if (copy) {
    /* A copy is the caller's own: writable, whatever the producer's was. */
    tb_import_options options = {.device = req->device, .copy = TB_COPY_ALWAYS};
    st = tb_from_dltensor(dl, 0, &options, out);
  } else {
    st = tb_from_array(dl->data, dl->byte_offset, dl->dtype, dl->ndim, dl->shape, dl->strides,
                       dl->device, readonly ? TB_FLAG_READONLY : 0, deleter, ctx, out);
  }
  if (st != TB_OK) {
    tbpy_raise_buffer(st);
    return -1;
  }
  *shared = !copy;
  return 0;
}

/* Checks the versioned header before the DLTensor: major version, flags,
 * and the strides rule of DLPack >= 1.2. */
static int check_versioned(const char *what, const DLManagedTensorVersioned *m) {
  if (m->version.major != TB_DLPACK_MAJOR) {
    PyErr_Format(PyExc_BufferError, "%s: DLPack version %u.%u is not supported (major %d)", what,
                 (unsigned)m->version.major, (unsigned)m->version.minor, TB_DLPACK_MAJOR);
    return -1;
  }
  const uint64_t known = DLPACK_FLAG_BITMASK_READ_ONLY | DLPACK_FLAG_BITMASK_IS_COPIED;
  if ((m->flags & ~known) != 0) {
    PyErr_Format(PyExc_BufferError, "%s: flags = 0x%llx has bits this library does not support",
                 what, (unsigned long long)m->flags);
    return -1;
  }
  if (m->version.minor >= 2 && m->dl_tensor.ndim > 0 && m->dl_tensor.strides == NULL) {
    PyErr_Format(PyExc_BufferError, "%s: strides is NULL with ndim = %d; DLPack >= 1.2 requires "
                 "strides", what, (int)m->dl_tensor.ndim);
    return -1;
  }
  return 0;
}

/* import_dltensor for a versioned tensor, after check_versioned: its flags
 * say whether the memory is read-only and whether the producer copied. */
static int import_versioned(const char *what, DLManagedTensorVersioned *m,
                            const import_request *req, tb_tensor_t **out, bool *shared) {
  if (check_versioned(what, m) < 0) return -1;
  return import_dltensor(what, &m->dl_tensor, (m->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0,
                         (m->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0, delete_foreign_versioned,
                         m, req, out, shared);
}

/* Imports a DLPack capsule. The capsule is renamed "used_*" only when the
 * import succeeded; a refused capsule is left as it was. */
static PyObject *import_capsule(PyObject *capsule, const import_request *req) {
  static const char what[] = "from_dlpack";
  const char *name = PyCapsule_GetName(capsule);
  if (name == NULL && PyErr_Occurred()) return NULL;
  bool versioned;
  if (name != NULL && strcmp(name, kCapsuleVersioned) == 0) {
    versioned = true;
  } else if (name != NULL && strcmp(name, kCapsuleLegacy) == 0) {
    versioned = false;
  } else if (name != NULL && (strcmp(name, kCapsuleUsedVersioned) == 0 ||
                              strcmp(name, kCapsuleUsedLegacy) == 0)) {
    PyErr_Format(PyExc_BufferError,
                 "%s: the DLPack capsule was already consumed (its name is '%s'); a capsule "
                 "can be imported only once", what, name);
    return NULL;
  } else {
    PyErr_Format(PyExc_TypeError,
                 "%s: a capsule named %s%s%s is not a DLPack tensor (expected 'dltensor' or "
                 "'dltensor_versioned')", what, name != NULL ? "'" : "",
                 name != NULL ? name : "NULL", name != NULL ? "'" : "");
    return NULL;
  }
  void *pointer = PyCapsule_GetPointer(capsule, name);
  if (pointer == NULL) return NULL;
  tb_tensor_t *t;
  bool shared;
  if (versioned) {
    DLManagedTensorVersioned *m = pointer;
    if (import_versioned(what, m, req, &t, &shared) < 0) return NULL;
    if (PyCapsule_SetName(capsule, kCapsuleUsedVersioned) < 0) PyErr_Clear();
    if (!shared && m->deleter != NULL) m->deleter(m);
  } else {
    DLManagedTensor *m = pointer;
    /* A legacy capsule has no READ_ONLY flag: its memory is taken as
     * read-only unless the caller vouches otherwise (NumPy's rule). */
    if (import_dltensor(what, &m->dl_tensor, !req->legacy_writable, false, delete_foreign_legacy,
                        m, req, &t, &shared) < 0) {
      return NULL;
    }
    if (PyCapsule_SetName(capsule, kCapsuleUsedLegacy) < 0) PyErr_Clear();
    if (!shared && m->deleter != NULL) m->deleter(m);
  }
  return tbpy_tensor_wrap(t);
}

/* Imports through a producer's exchange table: an owning versioned tensor,
 * whose deleter runs on every path. */
static PyObject *import_exchange(PyObject *obj, const tbpy_exchange_api *api,
                                 const import_request *req) {
  static const char what[] = "from_dlpack (exchange API)";
  DLManagedTensorVersioned *m = NULL;
  if (api->managed_tensor_from_py_object_no_sync(obj, &m) != 0) {
    if (!PyErr_Occurred()) {
      PyErr_SetString(PyExc_BufferError, "from_dlpack: the producer's exchange API failed");
    }
    return NULL;
  }
  if (m == NULL) {
    PyErr_SetString(PyExc_BufferError, "from_dlpack: the producer's exchange API gave no tensor");
    return NULL;
  }
  tb_tensor_t *t;
  bool shared;
  if (import_versioned(what, m, req, &t, &shared) < 0) {
    if (m->deleter != NULL) m->deleter(m);
    return NULL;
  }
  if (!shared && m->deleter != NULL) m->deleter(m);
  return tbpy_tensor_wrap(t);
}

/* Shares (or copies) memory exported through the buffer protocol. */
static PyObject *import_buffer(PyObject *obj, const import_request *req) {
  static const char what[] = "from_dlpack (buffer protocol)";
  Py_buffer *view = PyMem_RawMalloc(sizeof *view);
  if (view == NULL) return PyErr_NoMemory();
  if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) < 0) {
    PyMem_RawFree(view);
    return NULL;
  }
  DLDataType dt;
  int64_t shape[TB_MAX_NDIM], strides[TB_MAX_NDIM];
  const char *problem = NULL;
  if (!tbpy_dtype_from_format(view->format, view->itemsize, &dt)) {
    problem = "its format has no DLPack dtype";
  } else if (view->ndim < 0 || view->ndim > TB_MAX_NDIM) {
    problem = "its ndim is out of range";
  } else {
    for (int d = 0; d < view->ndim; d++) {
      shape[d] = view->shape != NULL ? (int64_t)view->shape[d] : (int64_t)(view->len / view->itemsize);
      if (view->strides != NULL) {
        if (view->strides[d] % view->itemsize != 0) problem = "a stride is not a whole number of items";
        strides[d] = (int64_t)(view->strides[d] / view->itemsize);
      }
    }
  }
  if (view->suboffsets != NULL) problem = "it uses suboffsets (PIL-style arrays)";
  if (problem != NULL) {
    PyErr_Format(PyExc_BufferError, "%s: cannot share the buffer of %.100s (format '%s'): %s",
                 what, Py_TYPE(obj)->tp_name, view->format != NULL ? view->format : "B", problem);
    PyBuffer_Release(view);
    PyMem_RawFree(view);
    return NULL;
  }
  DLTensor dl = {
      .data = view->buf,
      .device = {kDLCPU, 0},
      .ndim = view->ndim,
      .dtype = dt,
      .shape = shape,
      .strides = view->strides != NULL ? strides : NULL,
      .byte_offset = 0,
  };
  tb_tensor_t *t;
  bool shared;
  if (import_dltensor(what, &dl, view->readonly != 0, false, release_py_buffer, view, req, &t,
                      &shared) < 0) {
    PyBuffer_Release(view);
    PyMem_RawFree(view);
    return NULL;
  }
  if (!shared) {
    PyBuffer_Release(view);
    PyMem_RawFree(view);
  }
  return tbpy_tensor_wrap(t);
}

/*
 * What from_dlpack needs to know of a producer's type, cached per type so
 * that a call on a known type makes no attribute lookup. A cache entry holds
 * strong references to the type and to the attributes it found, and is valid
 * while the type's version tag is the one recorded: CPython gives a modified
 * type (or a type whose base was modified) a new tag, and a held type cannot
 * be freed and its address reused.
 */
typedef struct producer_info {
  PyTypeObject *type;
  unsigned int version_tag;
  PyObject *exchange_attr;           /* what `exchange` was read from, or NULL */
  const tbpy_exchange_api *exchange; /* the type's exchange table, or NULL */
  PyObject *dlpack;                  /* the type's __dlpack__, or NULL */
  /* __dlpack__ refused max_version with a TypeError (NumPy 1.x): ask for a
   * legacy capsule directly, which saves raising and clearing that error on
   * every call. Set only for static (C) types, whose methods cannot change;
   * a Python class may forward to producers of either kind. */
  bool legacy;
} producer_info;

/* The exchange table behind a type attribute (a capsule, DLPack 1.3, or an
 * int address, 1.2), or NULL (no exception) for anything else or a table of
 * another major version. */
static const tbpy_exchange_api *exchange_api_from(PyObject *attr) {
  const tbpy_exchange_header *h = NULL;
  if (attr != NULL && PyCapsule_CheckExact(attr)) {
    h = PyCapsule_GetPointer(attr, kCapsuleExchange);
  } else if (attr != NULL && PyLong_Check(attr)) {
    h = PyLong_AsVoidPtr(attr);
  }
  if (h == NULL) PyErr_Clear();
  while (h != NULL && h->version.major != TB_DLPACK_MAJOR) h = h->prev_api;
  return (const tbpy_exchange_api *)h;
}

/* Looks type up into *out, every reference in it new. */
static void producer_lookup(PyTypeObject *type, producer_info *out) {
  *out = (producer_info){.type = type};
  Py_INCREF(type);
  out->exchange_attr = tbpy_type_attr(type, s_exchange_capsule);
  if (out->exchange_attr == NULL || !PyCapsule_CheckExact(out->exchange_attr)) {
    Py_XDECREF(out->exchange_attr);
    out->exchange_attr = tbpy_type_attr(type, s_exchange_int);
  }
  out->exchange = exchange_api_from(out->exchange_attr);
  out->dlpack = tbpy_type_attr(type, s_dlpack);
  /* Read after the lookups, which give a type without a valid tag one. */
  out->version_tag = tbpy_version_tag_valid(type) ? type->tp_version_tag : 0;
}

/* Drops the references an entry (or a fresh lookup) holds. */
static void producer_clear(producer_info *p) {
  PyTypeObject *type = p->type;
  PyObject *exchange_attr = p->exchange_attr, *dlpack = p->dlpack;
  *p = (producer_info){0};
  /* Last: releasing may run arbitrary code, which may use the cache. */
  Py_XDECREF(dlpack);
  Py_XDECREF(exchange_attr);
  Py_XDECREF((PyObject *)type);
}

#define TBPY_PRODUCER_CACHE 8
static producer_info producer_cache[TBPY_PRODUCER_CACHE];
static unsigned producer_next;

static producer_info *producer_cached(PyTypeObject *type) {
  if (!tbpy_version_tag_valid(type)) return NULL;
  for (int i = 0; i < TBPY_PRODUCER_CACHE; i++) {
    producer_info *e = &producer_cache[i];
    if (e->type == type && e->version_tag == type->tp_version_tag) return e;
  }
  return NULL;
}

/*
 * Fills *out for the type of a live object, for one from_dlpack call. Only
 * out->dlpack is a strong reference (released by the caller): calling it may
 * change the class or the cache. The rest is borrowed from the type, which
 * the object keeps alive; the exchange table is used without calling Python.
 */
static void producer_of(PyTypeObject *type, producer_info *out) {
  const producer_info *e = producer_cached(type);
  if (e != NULL) {
    *out = *e;
    Py_XINCREF(out->dlpack);
    return;
  }
  producer_info found;
  producer_lookup(type, &found);
  *out = found;
  Py_XINCREF(out->dlpack);
  if (found.version_tag == 0) {
    producer_clear(&found);
    return;
  }
  producer_info *slot = &producer_cache[producer_next++ % TBPY_PRODUCER_CACHE];
  producer_info old = *slot;
  *slot = found; /* the entry takes found's references */
  producer_clear(&old);
}

static void producer_mark_legacy(PyTypeObject *type) {
  if (PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE)) return;
  producer_info *e = producer_cached(type);
  if (e != NULL) e->legacy = true;
}

/* The body of from_dlpack for a producer whose type is described by *p;
 * copy_arg is the caller's `copy` argument (NULL or None: not given). */
static PyObject *import_from(PyObject *obj, const producer_info *p, const import_request *req,
                             PyObject *copy_arg) {
  /* 1. The producer's C exchange table: no capsule, no method call. */
  if (p->exchange != NULL) return import_exchange(obj, p->exchange, req);

  /* 2. A bare capsule (the old to_dlpack() style). */
  if (PyCapsule_CheckExact(obj)) return import_capsule(obj, req);

  /* 3. __dlpack__: versioned first, legacy when the producer is too old to
   *    take max_version. */
  PyObject *method = p->dlpack;
  if (method != NULL) {
    PyObject *stack[5] = {NULL, obj, s_max_version_value, NULL, NULL};
    Py_ssize_t nkw = 1;
    int which = 0;
    PyObject *dl_device = NULL;
    if (req->device != NULL) {
      dl_device = Py_BuildValue("(ii)", (int)req->device->device_type, (int)req->device->device_id);
      if (dl_device == NULL) return NULL;
      stack[1 + 1 + nkw++] = dl_device;
      which |= 1;
    }
    if (copy_arg != NULL && copy_arg != Py_None) {
      stack[1 + 1 + nkw++] = copy_arg;
      which |= 2;
    }
    PyObject *capsule;
    if (p->legacy) {
      capsule = PyObject_CallMethodNoArgs(obj, s_dlpack);
    } else {
      if (Py_IS_TYPE(method, &PyMethodDescr_Type) || PyFunction_Check(method)) {
        /* A C method or a Python function on the type: call it with obj as
         * self, without a second attribute lookup. */
        capsule = PyObject_Vectorcall(method, stack + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                      s_kwnames[which]);
      } else {
        capsule = PyObject_VectorcallMethod(s_dlpack, stack + 1,
                                            1 | PY_VECTORCALL_ARGUMENTS_OFFSET, s_kwnames[which]);
      }
      if (capsule == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        capsule = PyObject_CallMethodNoArgs(obj, s_dlpack);
        if (capsule != NULL && PyCapsule_CheckExact(capsule)) producer_mark_legacy(Py_TYPE(obj));
      }
    }
    Py_XDECREF(dl_device);
    if (capsule == NULL) {
      /* A producer's refusal (BufferError) falls back to the buffer
       * protocol only where that shares the same memory exactly: NumPy 1.x
       * refuses to export read-only and bool arrays over DLPack, and their
       * buffers are shareable. Otherwise the producer's error stands, as
       * the array API asks (NumPy's BufferError for a datetime64 array, not
       * the buffer protocol's ValueError). */
      if (PyErr_ExceptionMatches(PyExc_BufferError) && PyObject_CheckBuffer(obj)) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyObject *r = import_buffer(obj, req);
        /* NumPy arrays of ml_dtypes' dtypes (bfloat16, float8) have neither
         * DLPack nor a buffer, but their bytes share exactly as unsigned
         * integers: the package's hook does that, or answers None. */
        if (r == NULL && tbpy_refused_hook != NULL) {
          PyErr_Clear();
          PyObject *device = req->device == NULL
                                 ? Py_NewRef(Py_None)
                                 : Py_BuildValue("(ii)", (int)req->device->device_type,
                                                 (int)req->device->device_id);
          r = device == NULL ? NULL
                             : PyObject_CallFunctionObjArgs(tbpy_refused_hook, obj, device,
                                                            copy_arg != NULL ? copy_arg : Py_None,
                                                            NULL);
          Py_XDECREF(device);
          if (r == Py_None) Py_CLEAR(r);
        }
        if (r != NULL) {
          Py_XDECREF(type);
          Py_XDECREF(value);
          Py_XDECREF(traceback);
          return r;
        }
        /* Nothing can stand in: the producer's refusal stands, in its own
         * words (PyErr_Restore drops whatever the fallbacks raised). */
        PyErr_Restore(type, value, traceback);
      }
      return NULL;
    }
    if (!PyCapsule_CheckExact(capsule)) {
      PyErr_Format(PyExc_TypeError, "from_dlpack: %.100s.__dlpack__() returned %.100s, not a capsule",
                   Py_TYPE(obj)->tp_name, Py_TYPE(capsule)->tp_name);
      Py_DECREF(capsule);
      return NULL;
    }
    PyObject *r = import_capsule(capsule, req);
    if (r == NULL) {
      /* The producer's capsule destructor runs now, maybe in Python code:
       * keep the import's exception out of its way. */
      PyObject *type, *value, *traceback;
      PyErr_Fetch(&type, &value, &traceback);
      Py_DECREF(capsule);
      PyErr_Restore(type, value, traceback);
      return NULL;
    }
    Py_DECREF(capsule);
    return r;
  }

  /* 4. The buffer protocol. */
  if (PyObject_CheckBuffer(obj)) return import_buffer(obj, req);

  PyErr_Format(PyExc_TypeError,
               "from_dlpack: %.100s supports neither DLPack (__dlpack__) nor the buffer protocol",
               Py_TYPE(obj)->tp_name);
  return NULL;
}

PyObject *tbpy_from_dlpack(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
  (void)module;
  static const int params[] = {-1, KW_DEVICE, KW_COPY, KW_LEGACY_WRITABLE};
  PyObject *a[4];
  if (tbpy_parse_args("from_dlpack", args, nargs, kwnames, params, 4, 1, 1, a) < 0) return NULL;
  PyObject *obj = a[0];
  DLDevice device;
  import_request req = {NULL, TB_COPY_IF_NEEDED, false};
  if (a[3] != NULL) {
    int w = PyObject_IsTrue(a[3]);
    if (w < 0) return NULL;
    req.legacy_writable = w != 0;
  }
  if (a[1] != NULL && a[1] != Py_None) {
    if (tbpy_device_from_py(a[1], &device) < 0) return NULL;
    req.device = &device;
  }
  if (tbpy_copy_mode_from_py(a[2], &req.copy) < 0) return NULL;

  producer_info producer;
  producer_of(Py_TYPE(obj), &producer);
  PyObject *r = import_from(obj, &producer, &req, a[2]);
  if (r != NULL || producer.dlpack == NULL) {
    Py_XDECREF(producer.dlpack);
    return r;
  }
  /* Dropping the method may run code: keep the exception out of its way. */
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  Py_DECREF(producer.dlpack);
  PyErr_Restore(type, value, traceback);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* The exchange table this module publishes                                 */
/* ------------------------------------------------------------------------ */

/* Calls of each table function, for _exchange_calls() (tests read it to see
 * which path a consumer took). Atomic: the allocator and current_work_stream
 * may be called without the GIL. */
enum { XAPI_ALLOCATOR, XAPI_FROM_PY, XAPI_TO_PY, XAPI_DLTENSOR_FROM_PY, XAPI_STREAM, XAPI_COUNT };
static const char *const xapi_names[XAPI_COUNT] = {
    "managed_tensor_allocator", "managed_tensor_from_py_object_no_sync",
    "managed_tensor_to_py_object_no_sync", "dltensor_from_py_object_no_sync",
    "current_work_stream"};
static atomic_ulong xapi_calls[XAPI_COUNT];
#define XAPI_COUNT_CALL(i) atomic_fetch_add_explicit(&xapi_calls[i], 1, memory_order_relaxed)

PyObject *tbpy_exchange_calls(PyObject *module, PyObject *unused) {
  (void)module;
  (void)unused;
  PyObject *out = PyDict_New();
  for (int i = 0; out != NULL && i < XAPI_COUNT; i++) {
    PyObject *n = PyLong_FromUnsignedLong(atomic_load_explicit(&xapi_calls[i],
                                                               memory_order_relaxed));
    if (n == NULL || PyDict_SetItemString(out, xapi_names[i], n) < 0) Py_CLEAR(out);
    Py_XDECREF(n);
  }
  return out;
}

static int xapi_allocator(DLTensor *prototype, DLManagedTensorVersioned **out, void *error_ctx,
                          tbpy_set_error_fn set_error) {
  XAPI_COUNT_CALL(XAPI_ALLOCATOR);
  tb_tensor_t *t = NULL;
  tb_status st = tb_tensor_empty(prototype->dtype, prototype->ndim, prototype->shape,
                                 prototype->device, TB_ORDER_C, &t);
  if (st == TB_OK) st = tb_to_dlpack_versioned(t, NULL, out);
  tb_tensor_release(t);
  if (st != TB_OK) {
    if (set_error != NULL) set_error(error_ctx, tbpy_exception_name(st), tb_last_error());
    return -1;
  }
  return 0;
}

static int xapi_from_py(void *py_object, DLManagedTensorVersioned **out) {
  XAPI_COUNT_CALL(XAPI_FROM_PY);
  const tb_tensor_t *t = tbpy_tensor_arg("exchange API", py_object);
  if (t == NULL) return -1;
  tb_status st = tb_to_dlpack_versioned(t, NULL, out);
  if (st != TB_OK) {
    tbpy_raise_buffer(st);
    return -1;
  }
  return 0;
}

static int xapi_to_py(DLManagedTensorVersioned *m, void **out_py_object) {
  XAPI_COUNT_CALL(XAPI_TO_PY);
  import_request req = {NULL, TB_COPY_IF_NEEDED, false};
  tb_tensor_t *t;
  bool shared;
  if (import_versioned("exchange API import", m, &req, &t, &shared) < 0) {
    if (m->deleter != NULL) m->deleter(m);
    return -1;
  }
  PyObject *o = tbpy_tensor_wrap(t);
  if (o == NULL) return -1;
  *out_py_object = o;
  return 0;
}

static int xapi_dltensor_from_py(void *py_object, DLTensor *out) {
  XAPI_COUNT_CALL(XAPI_DLTENSOR_FROM_PY);
  const tb_tensor_t *t = tbpy_tensor_arg("exchange API", py_object);
  if (t == NULL) return -1;
  *out = *tb_tensor_dltensor(t);
  /* As in every export: data at the first element, byte_offset 0. */
  void *first = tb_tensor_data(t);
  if (first != NULL) {
    out->data = first;
    out->byte_offset = 0;
  } else if (tb_tensor_numel(t) == 0) {
    out->data = NULL;
    out->byte_offset = 0;
  }
  return 0;
}

static int xapi_current_work_stream(DLDeviceType device_type, int32_t device_id,
                                    void **out_stream) {
  XAPI_COUNT_CALL(XAPI_STREAM);
  (void)device_type;
  (void)device_id;
  /* No backend of this build queues work: there is never a stream. */
  *out_stream = NULL;
  return 0;
}

static tbpy_exchange_api tbpy_exchange_table = {
    .header = {{TB_DLPACK_MAJOR, TB_DLPACK_MINOR}, NULL},
    .managed_tensor_allocator = xapi_allocator,
    .managed_tensor_from_py_object_no_sync = xapi_from_py,
    .managed_tensor_to_py_object_no_sync = xapi_to_py,
    .dltensor_from_py_object_no_sync = xapi_dltensor_from_py,
    .current_work_stream = xapi_current_work_stream,
};

PyObject *tbpy_exchange_capsule(void) {
  return PyCapsule_New(&tbpy_exchange_table, kCapsuleExchange, NULL);
}
