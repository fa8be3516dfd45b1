/*
 * tensorbridge._tensorbridge: the Python face of libtensorbridge.
 *
 * One type, Tensor, holding one reference to a tb_tensor_t. It speaks:
 *   - DLPack as a producer: __dlpack__ / __dlpack_device__ (versioned and
 *     legacy capsules) and the DLPack 1.3 C exchange table published on the
 *     type as __dlpack_c_exchange_api__;
 *   - DLPack as a consumer: from_dlpack() takes a producer's exchange table,
 *     then __dlpack__ (versioned first, legacy on TypeError), then the buffer
 *     protocol;
 *   - the buffer protocol as an exporter, for host tensors.
 *
 * Ownership across the boundary follows the capsule rules: a capsule is
 * renamed "used_*" only once its tensor is owned by a tb_tensor_t, a refused
 * capsule stays untouched (its own destructor deletes it), and every deleter
 * that may end in Python code takes the GIL first, on whatever thread it runs,
 * and does nothing once the interpreter is gone.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tensorbridge/tensorbridge.h"

/* ------------------------------------------------------------------------ */
/* Interpreter compatibility                                                */
/* ------------------------------------------------------------------------ */

#if PY_VERSION_HEX >= 0x030D0000
#define TBPY_IS_FINALIZING() Py_IsFinalizing()
#else
#define TBPY_IS_FINALIZING() _Py_IsFinalizing()
#endif

#if PY_VERSION_HEX < 0x030B0000
#define PyFloat_Unpack2 _PyFloat_Unpack2
#endif

/* An attribute found on a type through its MRO, as the type holds it (no
 * descriptor is called, the metaclass is not consulted): a new reference, or
 * NULL without an exception when the type has none. */
static PyObject *tbpy_type_attr(PyTypeObject *type, PyObject *name) {
#if PY_VERSION_HEX >= 0x030D0000
  return _PyType_LookupRef(type, name);
#else
  PyObject *v = _PyType_Lookup(type, name);
  Py_XINCREF(v);
  return v;
#endif
}

/* Whether type->tp_version_tag currently identifies the type's contents. On
 * the versions this package supports (3.10 on), modifying a type or a base
 * sets the tag to 0 until a lookup assigns a fresh one, never reused. */
static bool tbpy_version_tag_valid(PyTypeObject *type) { return type->tp_version_tag != 0; }

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
/* Module globals                                                           */
/* ------------------------------------------------------------------------ */

enum {
  KW_STREAM,
  KW_MAX_VERSION,
  KW_DL_DEVICE,
  KW_COPY,
  KW_DEVICE,
  KW_DTYPE,
  KW_COUNT
};
static const char *const kw_text[KW_COUNT] = {"stream", "max_version", "dl_device",
                                               "copy",   "device",      "dtype"};
static PyObject *kw_str[KW_COUNT];

static PyObject *s_dlpack;            /* "__dlpack__" */
static PyObject *s_exchange_capsule;  /* "__dlpack_c_exchange_api__" (1.3, a capsule) */
static PyObject *s_exchange_int;      /* "__c_dlpack_exchange_api__" (1.2, an int) */
static PyObject *s_max_version_value; /* (1, 3) */
/* kwnames for obj.__dlpack__(max_version=..[, dl_device=..][, copy=..]) */
static PyObject *s_kwnames[4];

static PyTypeObject Tensor_Type;

typedef struct {
  PyObject_HEAD
  tb_tensor_t *t;
} TensorObject;

#define Tensor_Check(op) Py_IS_TYPE((op), &Tensor_Type)
#define TENSOR(op) (((TensorObject *)(op))->t)

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static PyObject *tbpy_exception_for(tb_status st) {
  switch (st) {
    case TB_ERR_NOMEM: return PyExc_MemoryError;
    case TB_ERR_OVERFLOW: return PyExc_OverflowError;
    case TB_ERR_DTYPE: return PyExc_TypeError;
    case TB_ERR_INDEX: return PyExc_IndexError;
    case TB_ERR_VERSION: return PyExc_BufferError;
    default: return PyExc_ValueError;
  }
}

static const char *tbpy_exception_name(tb_status st) {
  switch (st) {
    case TB_ERR_NOMEM: return "MemoryError";
    case TB_ERR_OVERFLOW: return "OverflowError";
    case TB_ERR_DTYPE: return "TypeError";
    case TB_ERR_INDEX: return "IndexError";
    case TB_ERR_VERSION: return "BufferError";
    default: return "ValueError";
  }
}

/* Raises the library's last error with the exception its status maps to. */
static PyObject *tbpy_raise(tb_status st) {
  PyErr_SetString(tbpy_exception_for(st), tb_last_error());
  return NULL;
}

/* The same in a DLPack or buffer-protocol exchange: BufferError, the
 * standard's exception for data that cannot be exchanged. */
static PyObject *tbpy_raise_buffer(tb_status st) {
  PyErr_SetString(st == TB_ERR_NOMEM ? PyExc_MemoryError : PyExc_BufferError, tb_last_error());
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Devices                                                                  */
/* ------------------------------------------------------------------------ */

static const struct {
  int32_t type;
  const char *name;
  bool host; /* the CPU can dereference data */
} tbpy_devices[] = {
    {TB_DL_CPU, "cpu", true},
    {TB_DL_CUDA, "cuda", false},
    {TB_DL_CUDA_HOST, "cuda_host", true},
    {TB_DL_OPENCL, "opencl", false},
    {TB_DL_VULKAN, "vulkan", false},
    {TB_DL_METAL, "metal", false},
    {TB_DL_VPI, "vpi", false},
    {TB_DL_ROCM, "rocm", false},
    {TB_DL_ROCM_HOST, "rocm_host", true},
    {TB_DL_EXT_DEV, "ext_dev", false},
    {TB_DL_CUDA_MANAGED, "cuda_managed", true},
    {TB_DL_ONEAPI, "oneapi", false},
    {TB_DL_WEBGPU, "webgpu", false},
    {TB_DL_HEXAGON, "hexagon", false},
    {TB_DL_MAIA, "maia", false},
    {TB_DL_TRN, "trn", false},
};
#define TBPY_DEVICE_COUNT (sizeof tbpy_devices / sizeof tbpy_devices[0])

static const char *device_type_name(int32_t type) {
  for (size_t i = 0; i < TBPY_DEVICE_COUNT; i++) {
    if (tbpy_devices[i].type == type) return tbpy_devices[i].name;
  }
  return NULL;
}

static bool device_is_host(DLDevice d) {
  for (size_t i = 0; i < TBPY_DEVICE_COUNT; i++) {
    if (tbpy_devices[i].type == (int32_t)d.device_type) return tbpy_devices[i].host;
  }
  return false;
}

static bool device_equal(DLDevice a, DLDevice b) {
  return a.device_type == b.device_type && a.device_id == b.device_id;
}

/* "cpu" for the CPU, "name:id" for other devices. */
static PyObject *device_str(DLDevice d) {
  const char *name = device_type_name((int32_t)d.device_type);
  if (name == NULL) return PyUnicode_FromFormat("device%d:%d", (int)d.device_type, (int)d.device_id);
  if (d.device_type == kDLCPU && d.device_id == 0) return PyUnicode_FromString(name);
  return PyUnicode_FromFormat("%s:%d", name, (int)d.device_id);
}

/* Parses "cpu", "cuda", "cuda:1", (device_type, device_id), or any object
 * whose str() is one of those (torch.device). Returns 0 or -1 (ValueError or
 * TypeError set). */
static int device_from_py(PyObject *obj, DLDevice *out) {
  if (PyTuple_Check(obj)) {
    if (PyTuple_GET_SIZE(obj) != 2) {
      PyErr_SetString(PyExc_ValueError, "a device tuple is (device_type, device_id)");
      return -1;
    }
    long type = PyLong_AsLong(PyTuple_GET_ITEM(obj, 0));
    if (type == -1 && PyErr_Occurred()) return -1;
    long id = PyLong_AsLong(PyTuple_GET_ITEM(obj, 1));
    if (id == -1 && PyErr_Occurred()) return -1;
    if (device_type_name((int32_t)type) == NULL || type != (int32_t)type || id < 0 ||
        id > INT32_MAX) {
      PyErr_Format(PyExc_ValueError, "(%ld, %ld) is not a DLPack device", type, id);
      return -1;
    }
    out->device_type = (DLDeviceType)type;
    out->device_id = (int32_t)id;
    return 0;
  }
  PyObject *text = PyUnicode_Check(obj) ? Py_NewRef(obj) : PyObject_Str(obj);
  if (text == NULL) return -1;
  Py_ssize_t len;
  const char *s = PyUnicode_AsUTF8AndSize(text, &len);
  if (s == NULL) {
    Py_DECREF(text);
    return -1;
  }
  const char *colon = strchr(s, ':');
  size_t name_len = colon != NULL ? (size_t)(colon - s) : (size_t)len;
  long id = 0;
  bool ok = name_len > 0;
  if (ok && colon != NULL) {
    char *end;
    id = strtol(colon + 1, &end, 10);
    ok = end != colon + 1 && *end == '\0' && id >= 0 && id <= INT32_MAX;
  }
  int found = -1;
  for (size_t i = 0; ok && i < TBPY_DEVICE_COUNT; i++) {
    if (strlen(tbpy_devices[i].name) == name_len && memcmp(tbpy_devices[i].name, s, name_len) == 0) {
      found = (int)i;
    }
  }
  if (found < 0) {
    PyErr_Format(PyExc_ValueError, "unknown device %R (expected 'cpu', 'cuda', 'cuda:1', ...)",
                 obj);
    Py_DECREF(text);
    return -1;
  }
  Py_DECREF(text);
  out->device_type = (DLDeviceType)tbpy_devices[found].type;
  out->device_id = (int32_t)id;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Dtypes                                                                   */
/* ------------------------------------------------------------------------ */

/* Parses a dtype: a name the library knows ("float32", "torch.int16",
 * aliases included), a Python type (bool, int, float, complex), or an object
 * whose __name__ or str() is such a name (numpy.dtype, numpy.float32,
 * torch.float32). */
static int dtype_from_py(PyObject *obj, DLDataType *out) {
  if (obj == (PyObject *)&PyBool_Type) return tb_dtype_from_name("bool", out) == TB_OK ? 0 : -1;
  if (obj == (PyObject *)&PyLong_Type) return tb_dtype_from_name("int64", out) == TB_OK ? 0 : -1;
  if (obj == (PyObject *)&PyFloat_Type) return tb_dtype_from_name("float64", out) == TB_OK ? 0 : -1;
  if (obj == (PyObject *)&PyComplex_Type) {
    return tb_dtype_from_name("complex128", out) == TB_OK ? 0 : -1;
  }
  PyObject *text;
  if (PyUnicode_Check(obj)) {
    text = Py_NewRef(obj);
  } else if (PyType_Check(obj)) {
    text = PyObject_GetAttrString(obj, "__name__");
  } else {
    text = PyObject_Str(obj);
  }
  if (text == NULL) return -1;
  const char *s = PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : NULL;
  if (s == NULL) {
    Py_DECREF(text);
    if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%R is not a dtype", obj);
    return -1;
  }
  static const char *const prefixes[] = {"torch.", "numpy.", "jax.numpy.", "jnp."};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(s, prefixes[i], n) == 0) {
      s += n;
      break;
    }
  }
  if (tb_dtype_from_name(s, out) != TB_OK) {
    PyErr_Format(PyExc_TypeError, "unknown dtype %R", obj);
    Py_DECREF(text);
    return -1;
  }
  Py_DECREF(text);
  return 0;
}

static PyObject *dtype_str(DLDataType dt) {
  const char *name = tb_dtype_name(dt);
  if (name != NULL) return PyUnicode_FromString(name);
  return PyUnicode_FromFormat("dtype(code=%d, bits=%d, lanes=%d)", (int)dt.code, (int)dt.bits,
                              (int)dt.lanes);
}

/* The struct-module format of a dtype, or NULL when it has none. */
static const char *buffer_format(DLDataType dt) {
  if (dt.lanes != 1) return NULL;
  switch (dt.code) {
    case TB_DL_BOOL: return dt.bits == 8 ? "?" : NULL;
    case TB_DL_INT:
      switch (dt.bits) {
        case 8: return "b";
        case 16: return "h";
        case 32: return "i";
        case 64: return "q";
        default: return NULL;
      }
    case TB_DL_UINT:
      switch (dt.bits) {
        case 8: return "B";
        case 16: return "H";
        case 32: return "I";
        case 64: return "Q";
        default: return NULL;
      }
    case TB_DL_FLOAT:
      switch (dt.bits) {
        case 16: return "e";
        case 32: return "f";
        case 64: return "d";
        default: return NULL;
      }
    case TB_DL_COMPLEX:
      switch (dt.bits) {
        case 64: return "Zf";
        case 128: return "Zd";
        default: return NULL;
      }
    default: return NULL;
  }
}

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* The dtype of a buffer-protocol format ("<f", "q", "Zd", "?"), sized by
 * itemsize. Returns false for formats DLPack cannot describe. */
static bool dtype_from_format(const char *fmt, Py_ssize_t itemsize, DLDataType *out) {
  if (fmt == NULL) fmt = "B";
  if (*fmt == '@' || *fmt == '=') {
    fmt++;
  } else if (*fmt == '<' || *fmt == '>' || *fmt == '!') {
    bool little = *fmt == '<';
    if (little != host_is_little_endian()) return false;
    fmt++;
  }
  bool complex = false;
  if (*fmt == 'Z') {
    complex = true;
    fmt++;
  }
  char c = *fmt;
  if (c == '\0' || fmt[1] != '\0' || itemsize <= 0 || itemsize > 16) return false;
  uint8_t bits = (uint8_t)(itemsize * 8);
  uint8_t code;
  if (complex) {
    if (c != 'f' && c != 'd') return false;
    code = TB_DL_COMPLEX;
  } else {
    switch (c) {
      case '?': code = TB_DL_BOOL; break;
      case 'b': case 'h': case 'i': case 'l': case 'q': case 'n': code = TB_DL_INT; break;
      case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N': code = TB_DL_UINT; break;
      case 'e': case 'f': case 'd': code = TB_DL_FLOAT; break;
      default: return false;
    }
  }
  DLDataType dt = {code, bits, 1};
  if (tb_dtype_itemsize(dt) != (size_t)itemsize || buffer_format(dt) == NULL) return false;
  *out = dt;
  return true;
}

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
/* Tensor objects                                                           */
/* ------------------------------------------------------------------------ */

/* A Tensor owning t (steals the reference, also on failure). */
static PyObject *tensor_wrap(tb_tensor_t *t) {
  TensorObject *o = PyObject_New(TensorObject, &Tensor_Type);
  if (o == NULL) {
    tb_tensor_release(t);
    return NULL;
  }
  o->t = t;
  return (PyObject *)o;
}

/* tensor_wrap for a status-returning call: raises on failure. Takes the
 * output's address so that it is read only after the call has written it. */
static PyObject *tensor_result(tb_status st, tb_tensor_t *const *out) {
  if (st != TB_OK) return tbpy_raise(st);
  return tensor_wrap(*out);
}

static void Tensor_dealloc(PyObject *self) {
  tb_tensor_release(TENSOR(self));
  Py_TYPE(self)->tp_free(self);
}

/* Address of the element at index (0, ..., 0), or NULL with BufferError
 * when the device's memory cannot be read from the host. */
static char *tensor_host_data(const tb_tensor_t *t, const char *what) {
  DLDevice d = tb_tensor_device(t);
  if (!device_is_host(d)) {
    PyObject *name = device_str(d);
    if (name != NULL) {
      PyErr_Format(PyExc_BufferError, "%s: the tensor lives on %U, which the host cannot read",
                   what, name);
      Py_DECREF(name);
    }
    return NULL;
  }
  static char empty; /* a valid address for tensors without elements */
  char *p = tb_tensor_data(t);
  return p != NULL ? p : &empty;
}

static PyObject *int64_tuple(const int64_t *v, int32_t n) {
  PyObject *tuple = PyTuple_New(n);
  if (tuple == NULL) return NULL;
  for (int32_t i = 0; i < n; i++) {
    PyObject *x = PyLong_FromLongLong(v[i]);
    if (x == NULL) {
      Py_DECREF(tuple);
      return NULL;
    }
    PyTuple_SET_ITEM(tuple, i, x);
  }
  return tuple;
}

/* ---- scalars ---- */

/* One element as a Python object. */
static PyObject *scalar_to_py(const char *p, DLDataType dt) {
  if (dt.lanes == 1) {
    switch (dt.code) {
      case TB_DL_BOOL:
        if (dt.bits == 8) return PyBool_FromLong(*(const unsigned char *)p != 0);
        break;
      case TB_DL_INT: {
        int64_t v;
        if (dt.bits == 8) { int8_t x; memcpy(&x, p, 1); v = x; }
        else if (dt.bits == 16) { int16_t x; memcpy(&x, p, 2); v = x; }
        else if (dt.bits == 32) { int32_t x; memcpy(&x, p, 4); v = x; }
        else if (dt.bits == 64) { memcpy(&v, p, 8); }
        else break;
        return PyLong_FromLongLong(v);
      }
      case TB_DL_UINT: {
        uint64_t v;
        if (dt.bits == 8) { uint8_t x; memcpy(&x, p, 1); v = x; }
        else if (dt.bits == 16) { uint16_t x; memcpy(&x, p, 2); v = x; }
        else if (dt.bits == 32) { uint32_t x; memcpy(&x, p, 4); v = x; }
        else if (dt.bits == 64) { memcpy(&v, p, 8); }
        else break;
        return PyLong_FromUnsignedLongLong(v);
      }
      case TB_DL_FLOAT:
        if (dt.bits == 16) {
          double v = PyFloat_Unpack2(p, host_is_little_endian());
          if (v == -1.0 && PyErr_Occurred()) return NULL;
          return PyFloat_FromDouble(v);
        }
        if (dt.bits == 32) { float x; memcpy(&x, p, 4); return PyFloat_FromDouble(x); }
        if (dt.bits == 64) { double x; memcpy(&x, p, 8); return PyFloat_FromDouble(x); }
        break;
      case TB_DL_BFLOAT:
        if (dt.bits == 16) {
          uint16_t half;
          memcpy(&half, p, 2);
          uint32_t bits = (uint32_t)half << 16;
          float x;
          memcpy(&x, &bits, 4);
          return PyFloat_FromDouble(x);
        }
        break;
      case TB_DL_COMPLEX:
        if (dt.bits == 64) {
          float x[2];
          memcpy(x, p, sizeof x);
          return PyComplex_FromDoubles(x[0], x[1]);
        }
        if (dt.bits == 128) {
          double x[2];
          memcpy(x, p, sizeof x);
          return PyComplex_FromDoubles(x[0], x[1]);
        }
        break;
      default: break;
    }
  }
  PyObject *name = dtype_str(dt);
  if (name != NULL) {
    PyErr_Format(PyExc_TypeError, "%U elements have no Python number type", name);
    Py_DECREF(name);
  }
  return NULL;
}

/* One Python number as an element of the dtype it naturally has: bool,
 * int64 (uint64 above its range), float64 or complex128. Returns 1 on
 * success, 0 when value is not a Python number, -1 with an exception. */
typedef union {
  unsigned char b;
  int64_t i;
  uint64_t u;
  double f;
  double c[2];
} scalar_value;

static int scalar_from_py(PyObject *v, scalar_value *out, DLDataType *dt) {
  if (PyBool_Check(v)) {
    out->b = v == Py_True;
    *dt = tb_dtype(TB_DL_BOOL, 8);
    return 1;
  }
  if (PyLong_Check(v)) {
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow == 0) {
      out->i = x;
      *dt = tb_dtype(TB_DL_INT, 64);
      return 1;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(v);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    out->u = u;
    *dt = tb_dtype(TB_DL_UINT, 64);
    return 1;
  }
  if (PyFloat_Check(v)) {
    out->f = PyFloat_AS_DOUBLE(v);
    *dt = tb_dtype(TB_DL_FLOAT, 64);
    return 1;
  }
  if (PyComplex_Check(v)) {
    out->c[0] = PyComplex_RealAsDouble(v);
    out->c[1] = PyComplex_ImagAsDouble(v);
    *dt = tb_dtype(TB_DL_COMPLEX, 128);
    return 1;
  }
  return 0;
}

/* ---- tolist / item / repr ---- */

static PyObject *tolist_rec(const tb_tensor_t *t, const char *p, int32_t d, size_t itemsize) {
  if (d == tb_tensor_ndim(t)) return scalar_to_py(p, tb_tensor_dtype(t));
  int64_t n = tb_tensor_shape(t)[d];
  int64_t step = tb_tensor_strides(t)[d] * (int64_t)itemsize;
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (list == NULL) return NULL;
  for (int64_t i = 0; i < n; i++) {
    PyObject *item = tolist_rec(t, p + i * step, d + 1, itemsize);
    if (item == NULL) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, item);
  }
  return list;
}

static PyObject *Tensor_tolist(PyObject *self, PyObject *unused) {
  (void)unused;
  const tb_tensor_t *t = TENSOR(self);
  const char *p = tensor_host_data(t, "tolist");
  if (p == NULL) return NULL;
  return tolist_rec(t, p, 0, tb_dtype_itemsize(tb_tensor_dtype(t)));
}

/* The single element of a tensor with exactly one. */
static PyObject *Tensor_item(PyObject *self, PyObject *unused) {
  (void)unused;
  const tb_tensor_t *t = TENSOR(self);
  if (tb_tensor_numel(t) != 1) {
    PyErr_Format(PyExc_ValueError,
                 "item(): the tensor has %lld elements; only one-element tensors convert",
                 (long long)tb_tensor_numel(t));
    return NULL;
  }
  const char *p = tensor_host_data(t, "item");
  if (p == NULL) return NULL;
  return scalar_to_py(p, tb_tensor_dtype(t));
}

/* Above this many elements, repr shows the first and last few per dimension. */
#define TBPY_REPR_THRESHOLD 1000
#define TBPY_REPR_EDGE 3

static PyObject *repr_join(PyObject *items, const char *sep_text, Py_ssize_t indent) {
  char text[16 + TB_MAX_NDIM + 16];
  size_t n = strlen(sep_text);
  if (indent > TB_MAX_NDIM + 8) indent = TB_MAX_NDIM + 8;
  memcpy(text, sep_text, n);
  memset(text + n, ' ', (size_t)indent);
  text[n + (size_t)indent] = '\0';
  PyObject *sep = PyUnicode_FromString(text);
  if (sep == NULL) return NULL;
  PyObject *body = PyUnicode_Join(sep, items);
  Py_DECREF(sep);
  if (body == NULL) return NULL;
  PyObject *r = PyUnicode_FromFormat("[%U]", body);
  Py_DECREF(body);
  return r;
}

static PyObject *repr_rec(const tb_tensor_t *t, const char *p, int32_t d, size_t itemsize,
                          bool summarize, Py_ssize_t indent) {
  int32_t nd = tb_tensor_ndim(t);
  if (d == nd) {
    PyObject *v = scalar_to_py(p, tb_tensor_dtype(t));
    if (v == NULL) return NULL;
    PyObject *r = PyObject_Repr(v);
    Py_DECREF(v);
    return r;
  }
  int64_t n = tb_tensor_shape(t)[d];
  int64_t step = tb_tensor_strides(t)[d] * (int64_t)itemsize;
  PyObject *items = PyList_New(0);
  if (items == NULL) return NULL;
  bool cut = summarize && n > 2 * TBPY_REPR_EDGE;
  for (int64_t i = 0; i < n; i++) {
    if (cut && i == TBPY_REPR_EDGE) {
      PyObject *dots = PyUnicode_FromString("...");
      if (dots == NULL || PyList_Append(items, dots) < 0) {
        Py_XDECREF(dots);
        Py_DECREF(items);
        return NULL;
      }
      Py_DECREF(dots);
      i = n - TBPY_REPR_EDGE;
    }
    PyObject *item = repr_rec(t, p + i * step, d + 1, itemsize, summarize, indent + 1);
    if (item == NULL || PyList_Append(items, item) < 0) {
      Py_XDECREF(item);
      Py_DECREF(items);
      return NULL;
    }
    Py_DECREF(item);
  }
  /* Rows of a matrix go on their own lines; deeper blocks get a blank line. */
  const char *sep = d == nd - 1 ? ", " : (d == nd - 2 ? ",\n" : ",\n\n");
  PyObject *r = repr_join(items, sep, d == nd - 1 ? 0 : indent + 1);
  Py_DECREF(items);
  return r;
}

static PyObject *Tensor_repr(PyObject *self) {
  const tb_tensor_t *t = TENSOR(self);
  DLDevice dev = tb_tensor_device(t);
  int32_t nd = tb_tensor_ndim(t);
  PyObject *dtype = dtype_str(tb_tensor_dtype(t));
  PyObject *shape = int64_tuple(tb_tensor_shape(t), nd);
  PyObject *device = device_str(dev);
  PyObject *body = NULL, *extra = NULL, *r = NULL;
  if (dtype == NULL || shape == NULL || device == NULL) goto done;
  bool readable = device_is_host(dev) && buffer_format(tb_tensor_dtype(t)) != NULL;
  if (tb_tensor_dtype(t).code == TB_DL_BFLOAT && tb_tensor_dtype(t).bits == 16) readable = true;
  if (readable) {
    const char *p = tensor_host_data(t, "repr");
    if (p == NULL) goto done;
    body = repr_rec(t, p, 0, tb_dtype_itemsize(tb_tensor_dtype(t)), tb_tensor_numel(t) > TBPY_REPR_THRESHOLD,
                    (Py_ssize_t)strlen("tensor("));
    if (body == NULL) goto done;
    /* An empty tensor's brackets do not show its shape. */
    if (tb_tensor_numel(t) == 0 && nd > 1) {
      extra = PyUnicode_FromFormat(", shape=%R", shape);
    } else {
      extra = PyUnicode_FromString("");
    }
  } else {
    body = PyUnicode_FromString(device_is_host(dev) ? "<no Python view of these elements>"
                                                    : "<memory the host cannot read>");
    extra = PyUnicode_FromFormat(", shape=%R", shape);
  }
  if (body == NULL || extra == NULL) goto done;
  if (dev.device_type == kDLCPU) {
    r = PyUnicode_FromFormat("tensor(%U%U, dtype=%U%s)", body, extra, dtype,
                             tb_tensor_is_readonly(t) ? ", readonly=True" : "");
  } else {
    r = PyUnicode_FromFormat("tensor(%U%U, dtype=%U, device='%U'%s)", body, extra, dtype, device,
                             tb_tensor_is_readonly(t) ? ", readonly=True" : "");
  }
done:
  Py_XDECREF(dtype);
  Py_XDECREF(shape);
  Py_XDECREF(device);
  Py_XDECREF(body);
  Py_XDECREF(extra);
  return r;
}

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

static PyObject *Tensor_get_shape(PyObject *self, void *closure) {
  (void)closure;
  return int64_tuple(tb_tensor_shape(TENSOR(self)), tb_tensor_ndim(TENSOR(self)));
}

static PyObject *Tensor_get_strides(PyObject *self, void *closure) {
  (void)closure;
  return int64_tuple(tb_tensor_strides(TENSOR(self)), tb_tensor_ndim(TENSOR(self)));
}

static PyObject *Tensor_get_dtype(PyObject *self, void *closure) {
  (void)closure;
  return dtype_str(tb_tensor_dtype(TENSOR(self)));
}

static PyObject *Tensor_get_device(PyObject *self, void *closure) {
  (void)closure;
  return device_str(tb_tensor_device(TENSOR(self)));
}

static PyObject *Tensor_get_ndim(PyObject *self, void *closure) {
  (void)closure;
  return PyLong_FromLong(tb_tensor_ndim(TENSOR(self)));
}

static PyObject *Tensor_get_itemsize(PyObject *self, void *closure) {
  (void)closure;
  return PyLong_FromSize_t(tb_dtype_itemsize(tb_tensor_dtype(TENSOR(self))));
}

static PyObject *Tensor_get_nbytes(PyObject *self, void *closure) {
  (void)closure;
  return PyLong_FromLongLong(tb_tensor_nbytes(TENSOR(self)));
}

static PyObject *Tensor_get_readonly(PyObject *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(tb_tensor_is_readonly(TENSOR(self)));
}

static PyObject *Tensor_get_T(PyObject *self, void *closure) {
  (void)closure;
  const tb_tensor_t *t = TENSOR(self);
  int32_t nd = tb_tensor_ndim(t);
  int32_t perm[TB_MAX_NDIM];
  for (int32_t i = 0; i < nd; i++) perm[i] = nd - 1 - i;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_permute(t, perm, &out), &out);
}

static PyObject *Tensor_get_requires_grad(PyObject *self, void *closure) {
  (void)self;
  (void)closure;
  Py_RETURN_FALSE;
}

static PyGetSetDef Tensor_getset[] = {
    {"shape", Tensor_get_shape, NULL, "The extents, a tuple of ints.", NULL},
    {"strides", Tensor_get_strides, NULL, "The strides in elements (not bytes), a tuple of ints.",
     NULL},
    {"dtype", Tensor_get_dtype, NULL, "The element type's name ('float32', 'int16', ...).", NULL},
    {"device", Tensor_get_device, NULL, "The device: 'cpu', 'cuda:0', ...", NULL},
    {"ndim", Tensor_get_ndim, NULL, "The number of dimensions.", NULL},
    {"itemsize", Tensor_get_itemsize, NULL, "Bytes per element.", NULL},
    {"nbytes", Tensor_get_nbytes, NULL, "Bytes of all elements.", NULL},
    {"readonly", Tensor_get_readonly, NULL, "Whether writes through this tensor are refused.",
     NULL},
    {"T", Tensor_get_T, NULL, "A view with the dimensions reversed.", NULL},
    {"requires_grad", Tensor_get_requires_grad, NULL, "Always False: no autograd here.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------------------ */
/* Argument parsing for METH_FASTCALL | METH_KEYWORDS                       */
/* ------------------------------------------------------------------------ */

/*
 * params[i] is a KW_* id, or -1 for a positional-only parameter. The first
 * npos parameters may be given by position; the rest only by keyword. out[i]
 * receives a borrowed reference or stays NULL when not given.
 */
static int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, const int *params, Py_ssize_t nparams, Py_ssize_t npos,
                      Py_ssize_t nrequired, PyObject **out) {
  for (Py_ssize_t i = 0; i < nparams; i++) out[i] = NULL;
  if (nargs > npos) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional argument%s (%zd given)",
                 fname, npos, npos == 1 ? "" : "s", nargs);
    return -1;
  }
  for (Py_ssize_t i = 0; i < nargs; i++) out[i] = args[i];
  Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; k++) {
    PyObject *name = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t found = -1;
    for (Py_ssize_t i = 0; i < nparams && found < 0; i++) {
      if (params[i] >= 0 && name == kw_str[params[i]]) found = i;
    }
    for (Py_ssize_t i = 0; i < nparams && found < 0; i++) {
      if (params[i] >= 0 && PyUnicode_Compare(name, kw_str[params[i]]) == 0) found = i;
    }
    if (found < 0) {
      if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, name);
      }
      return -1;
    }
    if (out[found] != NULL) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument %R", fname, name);
      return -1;
    }
    out[found] = args[nargs + k];
  }
  for (Py_ssize_t i = 0; i < nrequired; i++) {
    if (out[i] == NULL) {
      PyErr_Format(PyExc_TypeError, "%s() missing a required argument", fname);
      return -1;
    }
  }
  return 0;
}

/* copy=None/True/False as a tb_copy_mode. */
static int copy_mode_from_py(PyObject *obj, tb_copy_mode *out) {
  if (obj == NULL || obj == Py_None) {
    *out = TB_COPY_IF_NEEDED;
  } else if (obj == Py_True) {
    *out = TB_COPY_ALWAYS;
  } else if (obj == Py_False) {
    *out = TB_COPY_NEVER;
  } else {
    PyErr_Format(PyExc_TypeError, "copy must be None, True or False, not %R", obj);
    return -1;
  }
  return 0;
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

/* Copies t to `device` for an export that asked for another device. */
static tb_status copy_to_device(const tb_tensor_t *t, DLDevice device, tb_tensor_t **out) {
  tb_tensor_t *fresh;
  tb_status st = tb_tensor_empty(tb_tensor_dtype(t), tb_tensor_ndim(t), tb_tensor_shape(t), device,
                                 TB_ORDER_C, &fresh);
  if (st != TB_OK) return st;
  st = tb_tensor_copy_into(fresh, t, 0);
  if (st != TB_OK) {
    tb_tensor_release(fresh);
    return st;
  }
  *out = fresh;
  return TB_OK;
}

/* __dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None) */
static PyObject *Tensor_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
  static const int params[] = {KW_STREAM, KW_MAX_VERSION, KW_DL_DEVICE, KW_COPY};
  PyObject *a[4];
  if (parse_args("__dlpack__", args, nargs, kwnames, params, 4, 0, 0, a) < 0) return NULL;
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
    if (s == 0) {
      PyErr_SetString(PyExc_ValueError, "__dlpack__: stream = 0 is not allowed (use 1 or 2)");
      return NULL;
    }
    if (device_is_host(own) && s != -1) {
      PyErr_Format(PyExc_ValueError,
                   "__dlpack__: stream must be None (or -1) for a host tensor, not %lld", s);
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
  if (copy_mode_from_py(a[3], &copy) < 0) return NULL;

  tb_tensor_t *src = NULL; /* a copy on the requested device, when one was asked */
  if (a[2] != NULL && a[2] != Py_None) {
    DLDevice want;
    if (device_from_py(a[2], &want) < 0) {
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
    if (!device_equal(want, own)) {
      if (copy == TB_COPY_NEVER) {
        PyErr_SetString(PyExc_BufferError,
                        "__dlpack__: dl_device differs from the tensor's device, which needs a "
                        "copy, and copy=False");
        return NULL;
      }
      tb_status st = copy_to_device(t, want, &src);
      if (st != TB_OK) return tbpy_raise_buffer(st);
      copy = TB_COPY_IF_NEEDED; /* src is already fresh */
    }
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

static PyObject *Tensor_dlpack_device(PyObject *self, PyObject *unused) {
  (void)unused;
  DLDevice d = tb_tensor_device(TENSOR(self));
  return Py_BuildValue("(ii)", (int)d.device_type, (int)d.device_id);
}

/* ------------------------------------------------------------------------ */
/* Buffer protocol export                                                   */
/* ------------------------------------------------------------------------ */

static int Tensor_getbuffer(PyObject *self, Py_buffer *view, int flags) {
  const tb_tensor_t *t = TENSOR(self);
  DLDataType dt = tb_tensor_dtype(t);
  const char *fmt = buffer_format(dt);
  if (fmt == NULL) {
    const char *name = tb_dtype_name(dt);
    PyErr_Format(PyExc_BufferError,
                 "%s has no buffer-protocol format; exchange it through DLPack (__dlpack__)",
                 name != NULL ? name : "this dtype");
    return -1;
  }
  char *data = tensor_host_data(t, "buffer protocol");
  if (data == NULL) return -1;
  bool readonly = tb_tensor_is_readonly(t);
  if ((flags & PyBUF_WRITABLE) && readonly) {
    PyErr_SetString(PyExc_BufferError, "the tensor is read-only: no writable buffer");
    return -1;
  }
  bool c_contig = tb_tensor_is_contiguous(t, TB_ORDER_C);
  bool f_contig = tb_tensor_is_contiguous(t, TB_ORDER_F);
  if ((flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS && !c_contig) {
    PyErr_SetString(PyExc_BufferError, "the tensor is not C-contiguous");
    return -1;
  }
  if ((flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS && !f_contig) {
    PyErr_SetString(PyExc_BufferError, "the tensor is not Fortran-contiguous");
    return -1;
  }
  if ((flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS && !c_contig && !f_contig) {
    PyErr_SetString(PyExc_BufferError, "the tensor is not contiguous");
    return -1;
  }
  if ((flags & PyBUF_STRIDES) != PyBUF_STRIDES && !c_contig) {
    PyErr_SetString(PyExc_BufferError,
                    "the tensor is not C-contiguous and the consumer did not ask for strides");
    return -1;
  }
  int32_t nd = tb_tensor_ndim(t);
  size_t itemsize = tb_dtype_itemsize(dt);
  Py_ssize_t *dims = NULL;
  if (nd > 0) {
    dims = PyMem_Malloc(2 * (size_t)nd * sizeof *dims);
    if (dims == NULL) {
      PyErr_NoMemory();
      return -1;
    }
    for (int32_t d = 0; d < nd; d++) {
      dims[d] = (Py_ssize_t)tb_tensor_shape(t)[d];
      dims[nd + d] = (Py_ssize_t)(tb_tensor_strides(t)[d] * (int64_t)itemsize);
    }
  }
  view->buf = data;
  view->obj = Py_NewRef(self);
  view->len = (Py_ssize_t)(tb_tensor_numel(t) * (int64_t)itemsize);
  view->readonly = readonly;
  view->itemsize = (Py_ssize_t)itemsize;
  /* The format strings are static literals; the protocol's field is not const. */
  view->format = (flags & PyBUF_FORMAT) ? (char *)(uintptr_t)fmt : NULL;
  if (flags & PyBUF_ND) {
    view->ndim = nd;
    view->shape = dims;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES && dims != NULL ? dims + nd : NULL;
  } else {
    view->ndim = 1;
    view->shape = NULL;
    view->strides = NULL;
  }
  view->suboffsets = NULL;
  view->internal = dims;
  return 0;
}

static void Tensor_releasebuffer(PyObject *self, Py_buffer *view) {
  (void)self;
  PyMem_Free(view->internal);
  view->internal = NULL;
}

static PyBufferProcs Tensor_as_buffer = {
    .bf_getbuffer = Tensor_getbuffer,
    .bf_releasebuffer = Tensor_releasebuffer,
};

/* ------------------------------------------------------------------------ */
/* DLPack import                                                            */
/* ------------------------------------------------------------------------ */

typedef struct import_request {
  const DLDevice *device; /* NULL: stay on the producer's device */
  tb_copy_mode copy;
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
  bool other_device = req->device != NULL && !device_equal(*req->device, dl->device);
  bool copy = other_device || (req->copy == TB_COPY_ALWAYS && !producer_copied);
  if (copy && req->copy == TB_COPY_NEVER) {
    PyErr_Format(PyExc_BufferError, "%s: the tensor is on another device than the one asked "
                 "for, which needs a copy, and copy=False", what);
    return -1;
  }
  tb_status st;
  if (copy) {
    tb_import_options options = {.device = req->device, .copy = TB_COPY_ALWAYS};
    st = tb_from_dltensor(dl, readonly ? TB_FLAG_READONLY : 0, &options, out);
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
    if (check_versioned(what, m) < 0) return NULL;
    if (import_dltensor(what, &m->dl_tensor, (m->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0,
                        (m->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0, delete_foreign_versioned,
                        m, req, &t, &shared) < 0) {
      return NULL;
    }
    if (PyCapsule_SetName(capsule, kCapsuleUsedVersioned) < 0) PyErr_Clear();
    if (!shared && m->deleter != NULL) m->deleter(m);
  } else {
    DLManagedTensor *m = pointer;
    if (import_dltensor(what, &m->dl_tensor, false, false, delete_foreign_legacy, m, req, &t,
                        &shared) < 0) {
      return NULL;
    }
    if (PyCapsule_SetName(capsule, kCapsuleUsedLegacy) < 0) PyErr_Clear();
    if (!shared && m->deleter != NULL) m->deleter(m);
  }
  return tensor_wrap(t);
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
  if (check_versioned(what, m) < 0 ||
      import_dltensor(what, &m->dl_tensor, (m->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0,
                      (m->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0, delete_foreign_versioned, m,
                      req, &t, &shared) < 0) {
    if (m->deleter != NULL) m->deleter(m);
    return NULL;
  }
  if (!shared && m->deleter != NULL) m->deleter(m);
  return tensor_wrap(t);
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
  if (!dtype_from_format(view->format, view->itemsize, &dt)) {
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
  return tensor_wrap(t);
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
        Py_buffer view;
        if (PyObject_GetBuffer(obj, &view, PyBUF_RECORDS_RO) == 0) {
          PyBuffer_Release(&view);
          Py_XDECREF(type);
          Py_XDECREF(value);
          Py_XDECREF(traceback);
          return import_buffer(obj, req);
        }
        PyErr_Clear();
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

/* from_dlpack(x, /, *, device=None, copy=None) */
static PyObject *tbpy_from_dlpack(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
  (void)module;
  static const int params[] = {-1, KW_DEVICE, KW_COPY};
  PyObject *a[3];
  if (parse_args("from_dlpack", args, nargs, kwnames, params, 3, 1, 1, a) < 0) return NULL;
  PyObject *obj = a[0];
  DLDevice device;
  import_request req = {NULL, TB_COPY_IF_NEEDED};
  if (a[1] != NULL && a[1] != Py_None) {
    if (device_from_py(a[1], &device) < 0) return NULL;
    req.device = &device;
  }
  if (copy_mode_from_py(a[2], &req.copy) < 0) return NULL;

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

static int xapi_allocator(DLTensor *prototype, DLManagedTensorVersioned **out, void *error_ctx,
                          tbpy_set_error_fn set_error) {
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
  PyObject *obj = py_object;
  if (!Tensor_Check(obj)) {
    PyErr_Format(PyExc_TypeError, "expected a tensorbridge.Tensor, got %.100s",
                 Py_TYPE(obj)->tp_name);
    return -1;
  }
  tb_status st = tb_to_dlpack_versioned(TENSOR(obj), NULL, out);
  if (st != TB_OK) {
    tbpy_raise_buffer(st);
    return -1;
  }
  return 0;
}

static int xapi_to_py(DLManagedTensorVersioned *m, void **out_py_object) {
  import_request req = {NULL, TB_COPY_IF_NEEDED};
  tb_tensor_t *t;
  bool shared;
  if (check_versioned("exchange API import", m) < 0 ||
      import_dltensor("exchange API import", &m->dl_tensor,
                      (m->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0,
                      (m->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0, delete_foreign_versioned, m,
                      &req, &t, &shared) < 0) {
    if (m->deleter != NULL) m->deleter(m);
    return -1;
  }
  PyObject *o = tensor_wrap(t);
  if (o == NULL) return -1;
  *out_py_object = o;
  return 0;
}

static int xapi_dltensor_from_py(void *py_object, DLTensor *out) {
  PyObject *obj = py_object;
  if (!Tensor_Check(obj)) {
    PyErr_Format(PyExc_TypeError, "expected a tensorbridge.Tensor, got %.100s",
                 Py_TYPE(obj)->tp_name);
    return -1;
  }
  const tb_tensor_t *t = TENSOR(obj);
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

/* ------------------------------------------------------------------------ */
/* Indexing: ints, slices (any step), Ellipsis and None make views          */
/* ------------------------------------------------------------------------ */

static bool is_int_index(PyObject *item) {
  return !PyBool_Check(item) && PyIndex_Check(item) && !Tensor_Check(item);
}

/* The view that key selects; a new reference. */
static tb_tensor_t *index_view(const tb_tensor_t *t, PyObject *key) {
  PyObject *items;
  if (PyTuple_Check(key)) {
    items = Py_NewRef(key);
  } else {
    items = PyTuple_Pack(1, key);
    if (items == NULL) return NULL;
  }
  Py_ssize_t n = PyTuple_GET_SIZE(items);
  int32_t consuming = 0;
  int ellipses = 0;
  for (Py_ssize_t k = 0; k < n; k++) {
    PyObject *item = PyTuple_GET_ITEM(items, k);
    if (item == Py_Ellipsis) {
      ellipses++;
    } else if (item == Py_None) {
      continue;
    } else if (PySlice_Check(item) || is_int_index(item)) {
      consuming++;
    } else {
      PyErr_Format(PyExc_IndexError,
                   "only integers, slices (':'), ellipsis ('...') and None are valid indices, "
                   "not %.100s", Py_TYPE(item)->tp_name);
      Py_DECREF(items);
      return NULL;
    }
  }
  int32_t nd = tb_tensor_ndim(t);
  if (ellipses > 1) {
    PyErr_SetString(PyExc_IndexError, "an index can only have a single ellipsis ('...')");
    Py_DECREF(items);
    return NULL;
  }
  if (consuming > nd) {
    PyErr_Format(PyExc_IndexError, "too many indices: the tensor has %d dimension%s, %d were indexed",
                 (int)nd, nd == 1 ? "" : "s", (int)consuming);
    Py_DECREF(items);
    return NULL;
  }
  tb_tensor_t *cur = tb_tensor_retain((tb_tensor_t *)(uintptr_t)t);
  int32_t dim = 0; /* the dimension of cur that the next item applies to */
  for (Py_ssize_t k = 0; k < n; k++) {
    PyObject *item = PyTuple_GET_ITEM(items, k);
    tb_tensor_t *next = NULL;
    tb_status st = TB_OK;
    if (item == Py_Ellipsis) {
      dim += nd - consuming;
      continue;
    } else if (item == Py_None) {
      st = tb_tensor_unsqueeze(cur, dim, &next);
      dim++;
    } else if (PySlice_Check(item)) {
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(item, &start, &stop, &step) < 0) {
        tb_tensor_release(cur);
        Py_DECREF(items);
        return NULL;
      }
      /* PySlice_Unpack's open ends are PY_SSIZE_T_MIN / MAX, which the
       * library reads as open ends too. */
      st = tb_tensor_slice(cur, dim, start == PY_SSIZE_T_MIN ? INT64_MIN : (int64_t)start,
                           stop == PY_SSIZE_T_MAX ? INT64_MAX : (int64_t)stop, (int64_t)step,
                           &next);
      dim++;
    } else {
      Py_ssize_t i = PyNumber_AsSsize_t(item, PyExc_IndexError);
      if (i == -1 && PyErr_Occurred()) {
        tb_tensor_release(cur);
        Py_DECREF(items);
        return NULL;
      }
      st = tb_tensor_select(cur, dim, (int64_t)i, &next);
    }
    tb_tensor_release(cur);
    if (st != TB_OK) {
      tbpy_raise(st);
      Py_DECREF(items);
      return NULL;
    }
    cur = next;
  }
  Py_DECREF(items);
  return cur;
}

static PyObject *Tensor_subscript(PyObject *self, PyObject *key) {
  tb_tensor_t *v = index_view(TENSOR(self), key);
  return v != NULL ? tensor_wrap(v) : NULL;
}

static Py_ssize_t Tensor_length(PyObject *self) {
  const tb_tensor_t *t = TENSOR(self);
  if (tb_tensor_ndim(t) == 0) {
    PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
    return -1;
  }
  return (Py_ssize_t)tb_tensor_shape(t)[0];
}

static PyObject *Tensor_sq_item(PyObject *self, Py_ssize_t i) {
  const tb_tensor_t *t = TENSOR(self);
  if (tb_tensor_ndim(t) == 0) {
    PyErr_SetString(PyExc_TypeError, "iteration over a 0-d tensor");
    return NULL;
  }
  tb_tensor_t *out;
  tb_status st = tb_tensor_select(t, 0, (int64_t)i, &out);
  if (st != TB_OK) {
    PyErr_SetString(PyExc_IndexError, tb_last_error());
    return NULL;
  }
  return tensor_wrap(out);
}

/* Anything from_dlpack or tensorbridge.tensor() accepts, as a Tensor. */
static PyObject *as_tensor(PyObject *value) {
  if (Tensor_Check(value)) return Py_NewRef(value);
  PyObject *dlpack = tbpy_type_attr(Py_TYPE(value), s_dlpack);
  Py_XDECREF(dlpack); /* only its presence matters */
  if (dlpack != NULL || PyObject_CheckBuffer(value)) {
    PyObject *args[1] = {value};
    return tbpy_from_dlpack(NULL, args, 1, NULL);
  }
  PyObject *mod = PyImport_ImportModule("tensorbridge._convert");
  if (mod == NULL) return NULL;
  PyObject *r = PyObject_CallMethod(mod, "tensor", "O", value);
  Py_DECREF(mod);
  if (r != NULL && !Tensor_Check(r)) {
    Py_DECREF(r);
    PyErr_SetString(PyExc_TypeError, "tensorbridge.tensor() returned a non-Tensor");
    return NULL;
  }
  return r;
}

static int Tensor_ass_subscript(PyObject *self, PyObject *key, PyObject *value) {
  if (value == NULL) {
    PyErr_SetString(PyExc_TypeError, "tensor elements cannot be deleted");
    return -1;
  }
  tb_tensor_t *dst = index_view(TENSOR(self), key);
  if (dst == NULL) return -1;
  scalar_value v;
  DLDataType vt;
  int is_scalar = scalar_from_py(value, &v, &vt);
  tb_status st;
  if (is_scalar < 0) {
    tb_tensor_release(dst);
    return -1;
  } else if (is_scalar) {
    st = tb_tensor_fill(dst, &v, vt);
  } else {
    PyObject *src_obj = as_tensor(value);
    if (src_obj == NULL) {
      tb_tensor_release(dst);
      return -1;
    }
    tb_tensor_t *src = tb_tensor_retain(TENSOR(src_obj));
    Py_DECREF(src_obj);
    st = TB_OK;
    /* Broadcast the source over the destination, as NumPy does. */
    bool same = tb_tensor_ndim(src) == tb_tensor_ndim(dst);
    for (int32_t d = 0; same && d < tb_tensor_ndim(dst); d++) {
      same = tb_tensor_shape(src)[d] == tb_tensor_shape(dst)[d];
    }
    if (!same) {
      tb_tensor_t *wide;
      st = tb_tensor_expand(src, tb_tensor_ndim(dst), tb_tensor_shape(dst), &wide);
      tb_tensor_release(src);
      src = st == TB_OK ? wide : NULL;
    }
    if (st == TB_OK) st = tb_tensor_copy_into(dst, src, 0);
    tb_tensor_release(src);
  }
  tb_tensor_release(dst);
  if (st != TB_OK) {
    tbpy_raise(st);
    return -1;
  }
  return 0;
}

static PyMappingMethods Tensor_as_mapping = {
    .mp_length = Tensor_length,
    .mp_subscript = Tensor_subscript,
    .mp_ass_subscript = Tensor_ass_subscript,
};

static PySequenceMethods Tensor_as_sequence = {
    .sq_length = Tensor_length,
    .sq_item = Tensor_sq_item,
};

/* ---- numbers, for one-element tensors ---- */

static int Tensor_bool(PyObject *self) {
  const tb_tensor_t *t = TENSOR(self);
  if (tb_tensor_numel(t) != 1) {
    PyErr_Format(PyExc_ValueError,
                 "the truth value of a tensor with %lld elements is ambiguous",
                 (long long)tb_tensor_numel(t));
    return -1;
  }
  PyObject *v = Tensor_item(self, NULL);
  if (v == NULL) return -1;
  int r = PyObject_IsTrue(v);
  Py_DECREF(v);
  return r;
}

static PyObject *Tensor_float(PyObject *self) {
  PyObject *v = Tensor_item(self, NULL);
  if (v == NULL) return NULL;
  PyObject *r = PyNumber_Float(v);
  Py_DECREF(v);
  return r;
}

static PyObject *Tensor_int(PyObject *self) {
  PyObject *v = Tensor_item(self, NULL);
  if (v == NULL) return NULL;
  PyObject *r = PyNumber_Long(v);
  Py_DECREF(v);
  return r;
}

static PyObject *Tensor_index(PyObject *self) {
  DLDataType dt = tb_tensor_dtype(TENSOR(self));
  if (dt.code != TB_DL_INT && dt.code != TB_DL_UINT) {
    PyErr_SetString(PyExc_TypeError, "only integer tensors with one element can be an index");
    return NULL;
  }
  return Tensor_item(self, NULL);
}

static PyNumberMethods Tensor_as_number = {
    .nb_bool = Tensor_bool,
    .nb_int = Tensor_int,
    .nb_float = Tensor_float,
    .nb_index = Tensor_index,
};

/* ------------------------------------------------------------------------ */
/* Methods                                                                  */
/* ------------------------------------------------------------------------ */

/* Integers from *args or from one sequence argument: t.reshape(2, 3) or
 * t.reshape((2, 3)). */
static int int64s_from_args(PyObject *args, int64_t *out, int32_t *n) {
  PyObject *seq = args;
  if (PyTuple_GET_SIZE(args) == 1 && !PyIndex_Check(PyTuple_GET_ITEM(args, 0))) {
    seq = PyTuple_GET_ITEM(args, 0);
  }
  PyObject *fast = PySequence_Fast(seq, "expected integers or one sequence of integers");
  if (fast == NULL) return -1;
  Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
  if (len > TB_MAX_NDIM) {
    PyErr_Format(PyExc_ValueError, "at most %d dimensions", TB_MAX_NDIM);
    Py_DECREF(fast);
    return -1;
  }
  for (Py_ssize_t i = 0; i < len; i++) {
    long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
    if (v == -1 && PyErr_Occurred()) {
      Py_DECREF(fast);
      return -1;
    }
    out[i] = v;
  }
  *n = (int32_t)len;
  Py_DECREF(fast);
  return 0;
}

static PyObject *Tensor_reshape(PyObject *self, PyObject *args) {
  int64_t shape[TB_MAX_NDIM];
  int32_t n;
  if (int64s_from_args(args, shape, &n) < 0) return NULL;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_reshape(TENSOR(self), n, shape, &out), &out);
}

static PyObject *Tensor_expand(PyObject *self, PyObject *args) {
  int64_t shape[TB_MAX_NDIM];
  int32_t n;
  if (int64s_from_args(args, shape, &n) < 0) return NULL;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_expand(TENSOR(self), n, shape, &out), &out);
}

static PyObject *Tensor_permute(PyObject *self, PyObject *args) {
  int64_t dims[TB_MAX_NDIM];
  int32_t n;
  if (int64s_from_args(args, dims, &n) < 0) return NULL;
  const tb_tensor_t *t = TENSOR(self);
  if (n != tb_tensor_ndim(t)) {
    PyErr_Format(PyExc_ValueError, "permute: %d dimensions given for a %d-d tensor", (int)n,
                 (int)tb_tensor_ndim(t));
    return NULL;
  }
  int32_t perm[TB_MAX_NDIM];
  for (int32_t i = 0; i < n; i++) perm[i] = (int32_t)dims[i];
  tb_tensor_t *out;
  return tensor_result(tb_tensor_permute(t, perm, &out), &out);
}

static PyObject *Tensor_transpose(PyObject *self, PyObject *args) {
  int d0, d1;
  if (!PyArg_ParseTuple(args, "ii:transpose", &d0, &d1)) return NULL;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_transpose(TENSOR(self), d0, d1, &out), &out);
}

static int int_from_py(PyObject *obj, int *out) {
  long v = PyLong_AsLong(obj);
  if (v == -1 && PyErr_Occurred()) return -1;
  if (v < INT32_MIN || v > INT32_MAX) {
    PyErr_SetString(PyExc_IndexError, "dimension out of range");
    return -1;
  }
  *out = (int)v;
  return 0;
}

static PyObject *Tensor_squeeze(PyObject *self, PyObject *args) {
  PyObject *dim = Py_None;
  if (!PyArg_ParseTuple(args, "|O:squeeze", &dim)) return NULL;
  tb_tensor_t *out;
  if (dim == Py_None) return tensor_result(tb_tensor_squeeze_all(TENSOR(self), &out), &out);
  int d;
  if (int_from_py(dim, &d) < 0) return NULL;
  return tensor_result(tb_tensor_squeeze(TENSOR(self), d, &out), &out);
}

static PyObject *Tensor_unsqueeze(PyObject *self, PyObject *arg) {
  int d;
  if (int_from_py(arg, &d) < 0) return NULL;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_unsqueeze(TENSOR(self), d, &out), &out);
}

static PyObject *Tensor_contiguous(PyObject *self, PyObject *unused) {
  (void)unused;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_contiguous(TENSOR(self), TB_ORDER_C, &out), &out);
}

static PyObject *Tensor_is_contiguous(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(tb_tensor_is_contiguous(TENSOR(self), TB_ORDER_C));
}

static PyObject *Tensor_numel(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLongLong(tb_tensor_numel(TENSOR(self)));
}

/* Address of the first element (as torch's data_ptr()), 0 when empty. */
static PyObject *Tensor_data_ptr(PyObject *self, PyObject *unused) {
  (void)unused;
  const tb_tensor_t *t = TENSOR(self);
  uintptr_t p = (uintptr_t)tb_tensor_base(t) + (uintptr_t)tb_tensor_byte_offset(t);
  if (tb_tensor_numel(t) == 0) p = 0;
  return PyLong_FromVoidPtr((void *)p);
}

static PyObject *Tensor_detach(PyObject *self, PyObject *unused) {
  (void)unused;
  return tensor_wrap(tb_tensor_retain(TENSOR(self)));
}

/* A C-order copy, writable. */
static PyObject *Tensor_copy(PyObject *self, PyObject *unused) {
  (void)unused;
  tb_tensor_t *out;
  return tensor_result(tb_tensor_copy(TENSOR(self), NULL, TB_ORDER_C, 0, &out), &out);
}

/* to(device=None, dtype=None, *, copy=False): self when nothing changes and
 * no copy was asked, else a converted copy. A lone positional argument that
 * names a dtype is taken as the dtype (t.to("float64")). */
static PyObject *Tensor_to(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
  static const int params[] = {KW_DEVICE, KW_DTYPE, KW_COPY};
  PyObject *a[3];
  if (parse_args("to", args, nargs, kwnames, params, 3, 2, 0, a) < 0) return NULL;
  const tb_tensor_t *t = TENSOR(self);
  DLDevice device = tb_tensor_device(t);
  DLDataType dtype = tb_tensor_dtype(t);
  if (nargs == 1 && a[1] == NULL && PyUnicode_Check(a[0])) {
    DLDataType probe;
    const char *s = PyUnicode_AsUTF8(a[0]);
    if (s == NULL) return NULL;
    if (tb_dtype_from_name(s, &probe) == TB_OK) {
      a[1] = a[0];
      a[0] = NULL;
    }
  }
  if (a[0] != NULL && a[0] != Py_None && device_from_py(a[0], &device) < 0) return NULL;
  if (a[1] != NULL && a[1] != Py_None && dtype_from_py(a[1], &dtype) < 0) return NULL;
  int copy = a[2] != NULL ? PyObject_IsTrue(a[2]) : 0;
  if (copy < 0) return NULL;
  if (!copy && device_equal(device, tb_tensor_device(t)) && tb_dtype_equal(dtype, tb_tensor_dtype(t))) {
    return Py_NewRef(self);
  }
  tb_tensor_t *out;
  tb_status st = tb_tensor_empty(dtype, tb_tensor_ndim(t), tb_tensor_shape(t), device, TB_ORDER_C,
                                 &out);
  if (st == TB_OK) {
    st = tb_tensor_copy_into(out, t, 0);
    if (st != TB_OK) tb_tensor_release(out);
  }
  return tensor_result(st, &out);
}

/* ------------------------------------------------------------------------ */
/* tensor(nested sequences): one C pass                                     */
/* ------------------------------------------------------------------------ */

/*
 * _convert.py's _from_sequence in C, by the rules of its Python reference
 * (_flatten, _kind), which stays as the fallback:
 *   - exact lists and tuples nest; the shape is the first-element chain's,
 *     and every sequence must have its level's extent;
 *   - each leaf has a kind, bool < int < float < complex: Python's number
 *     types by their exact type, anything else by _convert._kind itself
 *     (seq_kind_other); the highest kind packs the data (bool,
 *     int64, float64, complex128, as int()/float()/complex()/truth convert
 *     each leaf) and names the default dtype (bool, int64, float32,
 *     complex64);
 *   - the packed tensor is cast to the dtype by tb_tensor_copy, as _new's
 *     tb_tensor_new did, so every value is the library's single rounding.
 * Two passes: the first finds the shape, checks the structure and folds the
 * kinds; the second converts into the packed tensor.
 *
 * What the C pass does not reproduce exactly is left to the Python code:
 * ragged input, str and bytes, Tensors inside, list and tuple subclasses,
 * more than TB_MAX_NDIM levels, and sequences that a leaf's Python methods
 * change while they are read. The pass then returns NotImplemented, with no
 * exception set, and the Python code computes the result or the error (its
 * errors name the element and the shapes). A leaf's kind error waits until
 * the whole structure has been checked, as in the Python code, where
 * _flatten finishes before _kind runs.
 */

enum { SEQ_BOOL, SEQ_INT, SEQ_FLOAT, SEQ_COMPLEX };
#define SEQ_FALLBACK (-2) /* leave it to the Python code */


typedef struct {
  int32_t nd;
  int64_t shape[TB_MAX_NDIM];
  int kind; /* the highest leaf kind so far; -1 before any leaf */
  /* A leaf's kind raised: the exception, held until the structure is known
   * to be sound (kinds are no longer looked at). */
  bool kind_failed;
  PyObject *exc_type, *exc_value, *exc_tb;
} seq_scan;

/* Whether _flatten would treat x as more than a leaf: str and bytes (an
 * error), Tensors, lists and tuples. 1, 0 or -1. */
static int seq_is_structural(PyObject *x) {
  PyObject *const types[] = {(PyObject *)&PyUnicode_Type, (PyObject *)&PyBytes_Type,
                             (PyObject *)&Tensor_Type, (PyObject *)&PyList_Type,
                             (PyObject *)&PyTuple_Type};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    int r = PyObject_IsInstance(x, types[i]);
    if (r != 0) return r;
  }
  return 0;
}

/* _kind(x) for any leaf: SEQ_*, or -1 with its TypeError (or whatever a
 * lookup raised). Each test in _kind's order, so that the same attribute
 * lookups run. */
static int seq_kind_other(PyObject *x) {
  /* _convert._kind itself, looked up once: one set of rules for both paths
   * (it runs only for leaves that are not exactly bool, int, float or
   * complex: NumPy scalars, Fractions, user types). */
  static PyObject *kind_fn = NULL;
  if (kind_fn == NULL) {
    PyObject *mod = PyImport_ImportModule("tensorbridge._convert");
    if (mod == NULL) return -1;
    kind_fn = PyObject_GetAttrString(mod, "_kind");
    Py_DECREF(mod);
    if (kind_fn == NULL) return -1;
  }
  PyObject *name = PyObject_CallOneArg(kind_fn, x);
  if (name == NULL) return -1;
  int kind = -1;
  if (!PyUnicode_Check(name)) {
    PyErr_Format(PyExc_RuntimeError, "tensor(): _kind returned %R", name);
  } else if (PyUnicode_CompareWithASCIIString(name, "bool") == 0) {
    kind = SEQ_BOOL;
  } else if (PyUnicode_CompareWithASCIIString(name, "int") == 0) {
    kind = SEQ_INT;
  } else if (PyUnicode_CompareWithASCIIString(name, "float") == 0) {
    kind = SEQ_FLOAT;
  } else if (PyUnicode_CompareWithASCIIString(name, "complex") == 0) {
    kind = SEQ_COMPLEX;
  } else {
    PyErr_Format(PyExc_RuntimeError, "tensor(): _kind returned %R", name);
  }
  Py_DECREF(name);
  return kind;
}

/* The kind of a leaf of Python's number types, or -1 for any other object. */
static inline int seq_kind_exact(PyTypeObject *tp) {
  if (tp == &PyFloat_Type) return SEQ_FLOAT;
  if (tp == &PyLong_Type) return SEQ_INT;
  if (tp == &PyBool_Type) return SEQ_BOOL;
  if (tp == &PyComplex_Type) return SEQ_COMPLEX;
  return -1;
}

/* A leaf of another type: 0 (its kind folded into s->kind), SEQ_FALLBACK,
 * or -1 with an exception. Python code may run. */
static int seq_scan_other(PyObject *x, seq_scan *s) {
  Py_INCREF(x);
  int r = seq_is_structural(x);
  if (r != 0) {
    Py_DECREF(x);
    return r > 0 ? SEQ_FALLBACK : -1;
  }
  if (!s->kind_failed) {
    int kind = seq_kind_other(x);
    if (kind < 0) {
      PyErr_Fetch(&s->exc_type, &s->exc_value, &s->exc_tb);
      s->kind_failed = true;
    } else if (kind > s->kind) {
      s->kind = kind;
    }
  }
  Py_DECREF(x);
  return 0;
}

/* First pass over obj, a sequence at level d < s->nd: 0, SEQ_FALLBACK, or
 * -1 with an exception. */
static int seq_scan_rec(PyObject *obj, int32_t d, seq_scan *s) {
  if (!(PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) || Py_SIZE(obj) != s->shape[d]) {
    return SEQ_FALLBACK;
  }
  const Py_ssize_t n = Py_SIZE(obj);
  if (d + 1 < s->nd) {
    for (Py_ssize_t i = 0; i < n; i++) {
      PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(obj, i));
      int r = seq_scan_rec(item, d + 1, s);
      Py_DECREF(item);
      if (r != 0) return r;
      if (Py_SIZE(obj) != n) return SEQ_FALLBACK; /* changed by a leaf's Python code */
    }
    return 0;
  }
  int kind = s->kind;
  PyObject **items = PySequence_Fast_ITEMS(obj);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *x = items[i];
    int k = seq_kind_exact(Py_TYPE(x));
    if (k < 0) {
      s->kind = kind;
      int r = seq_scan_other(x, s);
      if (r != 0) return r;
      if (Py_SIZE(obj) != n) return SEQ_FALLBACK;
      items = PySequence_Fast_ITEMS(obj);
      kind = s->kind;
    } else if (k > kind) {
      kind = k;
    }
  }
  s->kind = kind;
  return 0;
}

/* The second pass's state: elements go to dst[pos] in the packed type. */
typedef struct {
  int kind;
  char *dst;
  int64_t pos;
  /* The first int beyond int64 (a reference): reported after every leaf is
   * converted, as array('q') did after the conversions. */
  PyObject *overflow;
} seq_fill;

/* int64 of an int (any int object), noting the first overflow. 0 or -1. */
static int seq_put_int(PyObject *v, seq_fill *f) {
  int overflow;
  long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
  if (x == -1 && PyErr_Occurred()) return -1;
  if (overflow != 0) {
    if (f->overflow == NULL) f->overflow = Py_NewRef(v);
    x = 0;
  }
  ((int64_t *)(void *)f->dst)[f->pos] = x;
  return 0;
}

/* Converts any leaf as _from_sequence did (truth, int(), float(),
 * complex()) into element pos. 0 or -1. Python code may run. */
static int seq_put_other(PyObject *x, seq_fill *f) {
  switch (f->kind) {
    case SEQ_BOOL: {
      int t = PyObject_IsTrue(x);
      if (t < 0) return -1;
      ((unsigned char *)f->dst)[f->pos] = (unsigned char)t;
      return 0;
    }
    case SEQ_INT: {
      PyObject *v = PyLong_CheckExact(x) ? Py_NewRef(x)
                                         : PyObject_CallOneArg((PyObject *)&PyLong_Type, x);
      if (v == NULL) return -1;
      int rc = seq_put_int(v, f);
      Py_DECREF(v);
      return rc;
    }
    case SEQ_FLOAT: {
      double v;
      if (PyFloat_CheckExact(x)) {
        v = PyFloat_AS_DOUBLE(x);
      } else if (PyLong_CheckExact(x) || PyBool_Check(x)) {
        v = PyLong_AsDouble(x);
        if (v == -1.0 && PyErr_Occurred()) return -1;
      } else {
        PyObject *r = PyObject_CallOneArg((PyObject *)&PyFloat_Type, x);
        if (r == NULL) return -1;
        v = PyFloat_AsDouble(r);
        Py_DECREF(r);
        if (v == -1.0 && PyErr_Occurred()) return -1;
      }
      ((double *)(void *)f->dst)[f->pos] = v;
      return 0;
    }
    default: {
      Py_complex c = {0.0, 0.0};
      if (PyComplex_CheckExact(x)) {
        c = PyComplex_AsCComplex(x);
      } else if (PyFloat_CheckExact(x)) {
        c.real = PyFloat_AS_DOUBLE(x);
      } else if (PyLong_CheckExact(x) || PyBool_Check(x)) {
        c.real = PyLong_AsDouble(x);
        if (c.real == -1.0 && PyErr_Occurred()) return -1;
      } else {
        PyObject *r = PyObject_CallOneArg((PyObject *)&PyComplex_Type, x);
        if (r == NULL) return -1;
        c = PyComplex_AsCComplex(r);
        Py_DECREF(r);
        if (c.real == -1.0 && PyErr_Occurred()) return -1;
      }
      double *p = (double *)(void *)f->dst + 2 * f->pos;
      p[0] = c.real;
      p[1] = c.imag;
      return 0;
    }
  }
}

/* The leaves of one innermost sequence: 0, SEQ_FALLBACK or -1. The exact
 * float, int and bool cases run without Python code; any other leaf goes
 * through seq_put_other, after which the sequence is checked again. */
static int seq_fill_leaves(PyObject *obj, Py_ssize_t n, seq_fill *f) {
  PyObject **items = PySequence_Fast_ITEMS(obj);
  for (Py_ssize_t i = 0; i < n; i++, f->pos++) {
    PyObject *x = items[i];
    PyTypeObject *tp = Py_TYPE(x);
    switch (f->kind) {
      case SEQ_FLOAT:
        if (tp == &PyFloat_Type) {
          ((double *)(void *)f->dst)[f->pos] = PyFloat_AS_DOUBLE(x);
          continue;
        }
        break;
      case SEQ_INT:
        if (tp == &PyLong_Type) {
          if (seq_put_int(x, f) < 0) return -1;
          continue;
        }
        if (tp == &PyBool_Type) {
          ((int64_t *)(void *)f->dst)[f->pos] = x == Py_True;
          continue;
        }
        break;
      case SEQ_BOOL:
        if (tp == &PyBool_Type) {
          ((unsigned char *)f->dst)[f->pos] = x == Py_True;
          continue;
        }
        break;
      default: break;
    }
    bool exact = seq_kind_exact(tp) >= 0; /* no Python code runs for these */
    Py_INCREF(x);
    int rc = seq_put_other(x, f);
    Py_DECREF(x);
    if (rc < 0) return -1;
    if (!exact) {
      if (Py_SIZE(obj) != n) return SEQ_FALLBACK;
      items = PySequence_Fast_ITEMS(obj);
    }
  }
  return 0;
}

/* Second pass over obj, a sequence at level d < nd. */
static int seq_fill_rec(PyObject *obj, int32_t d, const seq_scan *s, seq_fill *f) {
  /* Checked again: a leaf's Python code may have changed things since. */
  if (!(PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) || Py_SIZE(obj) != s->shape[d]) {
    return SEQ_FALLBACK;
  }
  const Py_ssize_t n = Py_SIZE(obj);
  if (d + 1 == s->nd) return seq_fill_leaves(obj, n, f);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(obj, i));
    int r = seq_fill_rec(item, d + 1, s, f);
    Py_DECREF(item);
    if (r != 0) return r;
    if (Py_SIZE(obj) != n) return SEQ_FALLBACK;
  }
  return 0;
}

/* OverflowError for an int beyond int64, with the interpreter's own text
 * for it (what array('q') reported). */
static void seq_raise_overflow(PyObject *v) {
  (void)PyLong_AsLongLong(v);
  PyObject *type, *value, *traceback, *text = NULL;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (value != NULL) text = PyObject_Str(value);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
  if (text == NULL) {
    PyErr_Clear();
    PyErr_SetString(PyExc_OverflowError, "tensor(): an integer does not fit in int64");
    return;
  }
  PyErr_Format(PyExc_OverflowError, "tensor(): an integer does not fit in int64 (%U)", text);
  Py_DECREF(text);
}

/* A tensor of obj's numbers (dtype NULL: the kind's default), NotImplemented
 * for the Python code to handle, or NULL with an exception. */
static PyObject *seq_to_tensor(PyObject *obj, const DLDataType *dtype) {
  seq_scan s;
  s.nd = 0;
  s.kind = -1;
  s.kind_failed = false;
  s.exc_type = s.exc_value = s.exc_tb = NULL;
  /* The shape: the chain of first elements. */
  int r = 0;
  for (PyObject *p = obj; PyList_CheckExact(p) || PyTuple_CheckExact(p);) {
    if (s.nd == TB_MAX_NDIM) {
      r = SEQ_FALLBACK;
      break;
    }
    const Py_ssize_t n = Py_SIZE(p);
    s.shape[s.nd++] = n;
    if (n == 0) break;
    p = PySequence_Fast_GET_ITEM(p, 0);
  }
  if (r == 0) {
    if (s.nd > 0) {
      r = seq_scan_rec(obj, 0, &s);
    } else {
      int k = seq_kind_exact(Py_TYPE(obj));
      if (k >= 0) {
        s.kind = k;
      } else {
        r = seq_scan_other(obj, &s);
      }
    }
  }
  if (r != 0 || s.kind_failed) {
    if (r == 0) {
      PyErr_Restore(s.exc_type, s.exc_value, s.exc_tb);
      return NULL;
    }
    Py_XDECREF(s.exc_type);
    Py_XDECREF(s.exc_value);
    Py_XDECREF(s.exc_tb);
    return r == SEQ_FALLBACK ? Py_NewRef(Py_NotImplemented) : NULL;
  }

  static const struct {
    uint8_t code, packed_bits, default_bits;
  } kinds[] = {
      [SEQ_BOOL] = {TB_DL_BOOL, 8, 8},
      [SEQ_INT] = {TB_DL_INT, 64, 64},
      [SEQ_FLOAT] = {TB_DL_FLOAT, 64, 32},
      [SEQ_COMPLEX] = {TB_DL_COMPLEX, 128, 64},
  };
  const int kind = s.kind < 0 ? SEQ_FLOAT : s.kind; /* no leaves: float, as torch */
  const DLDataType packed = tb_dtype(kinds[kind].code, kinds[kind].packed_bits);
  const DLDataType target =
      dtype != NULL ? *dtype : tb_dtype(kinds[kind].code, kinds[kind].default_bits);

  tb_tensor_t *data;
  tb_status st = tb_tensor_empty(packed, s.nd, s.shape, (DLDevice){kDLCPU, 0}, TB_ORDER_C, &data);
  if (st != TB_OK) return tbpy_raise(st);
  seq_fill f = {kind, tb_tensor_data(data), 0, NULL};
  if (s.nd > 0) {
    r = seq_fill_rec(obj, 0, &s, &f);
  } else {
    Py_INCREF(obj);
    r = seq_put_other(obj, &f);
    Py_DECREF(obj);
  }
  if (r == 0 && f.overflow != NULL) {
    seq_raise_overflow(f.overflow);
    r = -1;
  }
  Py_XDECREF(f.overflow);
  if (r != 0) {
    tb_tensor_release(data);
    return r == SEQ_FALLBACK ? Py_NewRef(Py_NotImplemented) : NULL;
  }
  if (tb_dtype_equal(target, packed)) return tensor_wrap(data);
  tb_tensor_t *out;
  st = tb_tensor_copy(data, &target, TB_ORDER_C, 0, &out);
  tb_tensor_release(data);
  return tensor_result(st, &out);
}

/* numpy.asarray, looked up on the first numpy() call. */
static PyObject *np_asarray;

/* numpy(): a NumPy array sharing the memory (read-only stays read-only). */
static PyObject *Tensor_numpy(PyObject *self, PyObject *unused) {
  (void)unused;
  /* NumPy would quietly wrap an unexportable tensor in an object array:
   * raise the buffer protocol's error instead. */
  Py_buffer view;
  if (PyObject_GetBuffer(self, &view, PyBUF_RECORDS_RO) < 0) return NULL;
  PyBuffer_Release(&view);
  if (np_asarray == NULL) {
    PyObject *np = PyImport_ImportModule("numpy");
    if (np == NULL) return NULL;
    np_asarray = PyObject_GetAttrString(np, "asarray");
    Py_DECREF(np);
    if (np_asarray == NULL) return NULL;
  }
  return PyObject_CallOneArg(np_asarray, self);
}

/* Tensor(*sizes) or Tensor(data): torch.Tensor's two forms, float32. */
static PyObject *Tensor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  (void)type;
  PyObject *device_obj = NULL;
  if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
    device_obj = PyDict_GetItemString(kwargs, "device");
    if (device_obj == NULL || PyDict_GET_SIZE(kwargs) > 1) {
      PyErr_SetString(PyExc_TypeError, "Tensor() takes only the keyword argument device");
      return NULL;
    }
  }
  Py_ssize_t n = PyTuple_GET_SIZE(args);
  bool sizes = true;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PyTuple_GET_ITEM(args, i);
    sizes = sizes && PyLong_Check(item) && !PyBool_Check(item);
  }
  if (n == 0 || sizes) {
    int64_t shape[TB_MAX_NDIM];
    int32_t nd = n == 0 ? 1 : 0;
    shape[0] = 0;
    if (n > 0 && int64s_from_args(args, shape, &nd) < 0) return NULL;
    DLDevice device = {kDLCPU, 0};
    if (device_obj != NULL && device_obj != Py_None && device_from_py(device_obj, &device) < 0) {
      return NULL;
    }
    tb_tensor_t *out;
    return tensor_result(
        tb_tensor_zeros(tb_dtype(TB_DL_FLOAT, 32), nd, shape, device, TB_ORDER_C, &out), &out);
  }
  if (n != 1) {
    PyErr_SetString(PyExc_TypeError, "Tensor() takes sizes (ints) or one data argument");
    return NULL;
  }
  PyObject *data = PyTuple_GET_ITEM(args, 0);
  if ((PyList_CheckExact(data) || PyTuple_CheckExact(data)) &&
      (device_obj == NULL || device_obj == Py_None)) {
    DLDataType f32 = tb_dtype(TB_DL_FLOAT, 32);
    PyObject *r = seq_to_tensor(data, &f32);
    if (r != Py_NotImplemented) return r;
    Py_DECREF(r);
  }
  PyObject *mod = PyImport_ImportModule("tensorbridge._convert");
  if (mod == NULL) return NULL;
  PyObject *r = PyObject_CallMethod(mod, "tensor", "OsO", data, "float32",
                                    device_obj != NULL ? device_obj : Py_None);
  Py_DECREF(mod);
  return r;
}

/* ---- torch and NumPy habits: size(), stride(), dim(), element_size(),
 * cpu(), astype() ---- */

/* v (shape or strides) whole as a tuple, or v[dim] for dim in [-ndim, ndim). */
static PyObject *dims_or_one(const char *what, const int64_t *v, int32_t ndim,
                             PyObject *const *args, Py_ssize_t nargs) {
  if (nargs > 1) {
    return PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", what, nargs);
  }
  if (nargs == 0 || args[0] == Py_None) return int64_tuple(v, ndim);
  const Py_ssize_t dim = PyNumber_AsSsize_t(args[0], PyExc_IndexError);
  if (dim == -1 && PyErr_Occurred()) return NULL;
  const Py_ssize_t d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim) {
    return PyErr_Format(PyExc_IndexError,
                        "%s(): dim = %zd is out of range for a %d-dimensional tensor", what, dim,
                        (int)ndim);
  }
  return PyLong_FromLongLong((long long)v[d]);
}

static PyObject *Tensor_size(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  const tb_tensor_t *t = TENSOR(self);
  return dims_or_one("size", tb_tensor_shape(t), tb_tensor_ndim(t), args, nargs);
}

static PyObject *Tensor_stride(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  const tb_tensor_t *t = TENSOR(self);
  return dims_or_one("stride", tb_tensor_strides(t), tb_tensor_ndim(t), args, nargs);
}

static PyObject *Tensor_dim(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(tb_tensor_ndim(TENSOR(self)));
}

static PyObject *Tensor_element_size(PyObject *self, PyObject *unused) {
  (void)unused;
  return Tensor_get_itemsize(self, NULL);
}

/* cpu(): self on the host already (as torch returns it), else a host copy. */
static PyObject *Tensor_cpu(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyObject_CallMethod(self, "to", "s", "cpu");
}

/* astype(dtype, copy=True): NumPy's; self only when copy is false and the
 * dtype is already this one. */
static PyObject *Tensor_astype(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char kw_dtype[] = "dtype", kw_copy[] = "copy";
  static char *kwlist[] = {kw_dtype, kw_copy, NULL};
  PyObject *dtype;
  int copy = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|p:astype", kwlist, &dtype, &copy)) return NULL;
  PyObject *to = PyObject_GetAttrString(self, "to");
  if (to == NULL) return NULL;
  PyObject *pos = PyTuple_Pack(2, Py_None, dtype);
  PyObject *kw = pos != NULL ? Py_BuildValue("{s:O}", "copy", copy ? Py_True : Py_False) : NULL;
  PyObject *r = kw != NULL ? PyObject_Call(to, pos, kw) : NULL;
  Py_XDECREF(kw);
  Py_XDECREF(pos);
  Py_DECREF(to);
  return r;
}

static PyMethodDef Tensor_methods[] = {
    {"__dlpack__", (PyCFunction)(void (*)(void))Tensor_dlpack, METH_FASTCALL | METH_KEYWORDS,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\n"
     "Exports the tensor as a DLPack capsule: versioned ('dltensor_versioned') when\n"
     "max_version >= (1, 0), else legacy ('dltensor')."},
    {"__dlpack_device__", Tensor_dlpack_device, METH_NOARGS,
     "__dlpack_device__()\n--\n\n(device_type, device_id) as DLPack numbers them."},
    {"size", (PyCFunction)(void (*)(void))Tensor_size, METH_FASTCALL,
     "size(dim=None)\n--\n\nThe shape as a tuple, or its extent along dim (as torch)."},
    {"stride", (PyCFunction)(void (*)(void))Tensor_stride, METH_FASTCALL,
     "stride(dim=None)\n--\n\nThe strides in elements, or the one of dim (as torch)."},
    {"dim", Tensor_dim, METH_NOARGS, "dim()\n--\n\nThe number of dimensions (ndim)."},
    {"element_size", Tensor_element_size, METH_NOARGS,
     "element_size()\n--\n\nBytes per element (itemsize)."},
    {"cpu", Tensor_cpu, METH_NOARGS,
     "cpu()\n--\n\nThe tensor itself on the host, else a copy there (as torch)."},
    {"astype", (PyCFunction)(void (*)(void))Tensor_astype, METH_VARARGS | METH_KEYWORDS,
     "astype(dtype, copy=True)\n--\n\nA copy converted to dtype; with copy=False, self when the\n"
     "dtype already matches (as NumPy)."},
    {"to", (PyCFunction)(void (*)(void))Tensor_to, METH_FASTCALL | METH_KEYWORDS,
     "to(device=None, dtype=None, *, copy=False)\n--\n\n"
     "The tensor on another device or with another dtype (a copy), or itself when\n"
     "nothing changes and copy is false."},
    {"copy", Tensor_copy, METH_NOARGS, "copy()\n--\n\nA writable C-order copy."},
    {"clone", Tensor_copy, METH_NOARGS, "clone()\n--\n\nThe same as copy()."},
    {"detach", Tensor_detach, METH_NOARGS,
     "detach()\n--\n\nThe same memory as a new Tensor (no autograd here; for torch-like code)."},
    {"numpy", Tensor_numpy, METH_NOARGS,
     "numpy()\n--\n\nA NumPy array sharing the memory (through the buffer protocol)."},
    {"tolist", Tensor_tolist, METH_NOARGS, "tolist()\n--\n\nNested lists of Python numbers."},
    {"item", Tensor_item, METH_NOARGS, "item()\n--\n\nThe only element, as a Python number."},
    {"numel", Tensor_numel, METH_NOARGS, "numel()\n--\n\nThe number of elements."},
    {"data_ptr", Tensor_data_ptr, METH_NOARGS,
     "data_ptr()\n--\n\nThe address of the first element (0 when empty)."},
    {"is_contiguous", Tensor_is_contiguous, METH_NOARGS,
     "is_contiguous()\n--\n\nWhether the layout is C-contiguous."},
    {"contiguous", Tensor_contiguous, METH_NOARGS,
     "contiguous()\n--\n\nself when C-contiguous, else a C-contiguous copy."},
    {"reshape", Tensor_reshape, METH_VARARGS,
     "reshape(*shape)\n--\n\nA view with a new shape (ValueError when that needs a copy)."},
    {"expand", Tensor_expand, METH_VARARGS,
     "expand(*shape)\n--\n\nA read-only broadcast view (stride 0 on new extents)."},
    {"permute", Tensor_permute, METH_VARARGS, "permute(*dims)\n--\n\nA view with reordered dimensions."},
    {"transpose", Tensor_transpose, METH_VARARGS, "transpose(dim0, dim1)\n--\n\nA view with two dimensions swapped."},
    {"squeeze", Tensor_squeeze, METH_VARARGS, "squeeze(dim=None)\n--\n\nA view without extent-1 dimensions."},
    {"unsqueeze", Tensor_unsqueeze, METH_O, "unsqueeze(dim)\n--\n\nA view with a new extent-1 dimension."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Tensor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorbridge.Tensor",
    .tp_basicsize = sizeof(TensorObject),
    .tp_dealloc = Tensor_dealloc,
    .tp_repr = Tensor_repr,
    .tp_as_number = &Tensor_as_number,
    .tp_as_sequence = &Tensor_as_sequence,
    .tp_as_mapping = &Tensor_as_mapping,
    .tp_as_buffer = &Tensor_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tensor(*sizes) or Tensor(data)\n--\n\n"
              "An n-dimensional array: a libtensorbridge tensor. Tensor(2, 3) is a 2 x 3\n"
              "float32 tensor of zeros; Tensor(data) copies data converted to float32\n"
              "(as torch.Tensor). Indexing with ints, slices, ... and None makes views.",
    .tp_methods = Tensor_methods,
    .tp_getset = Tensor_getset,
    .tp_new = Tensor_new,
};

/* ------------------------------------------------------------------------ */
/* Module functions                                                         */
/* ------------------------------------------------------------------------ */

/* _new(buffer, src_dtype, shape, dtype=None): a fresh tensor copied (and
 * converted) from the C-contiguous elements of a buffer. */
static PyObject *tbpy_new(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *buffer, *src_dtype_obj, *shape_obj, *dtype_obj = Py_None;
  if (!PyArg_ParseTuple(args, "OOO|O:_new", &buffer, &src_dtype_obj, &shape_obj, &dtype_obj)) {
    return NULL;
  }
  DLDataType src_dtype, dtype;
  if (dtype_from_py(src_dtype_obj, &src_dtype) < 0) return NULL;
  if (dtype_obj != Py_None && dtype_from_py(dtype_obj, &dtype) < 0) return NULL;
  int64_t shape[TB_MAX_NDIM];
  int32_t nd;
  PyObject *shape_args = PyTuple_Pack(1, shape_obj);
  if (shape_args == NULL) return NULL;
  int rc = int64s_from_args(shape_args, shape, &nd);
  Py_DECREF(shape_args);
  if (rc < 0) return NULL;
  Py_buffer view;
  if (PyObject_GetBuffer(buffer, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
  int64_t numel = 1;
  for (int32_t d = 0; d < nd; d++) numel *= shape[d] < 0 ? 0 : shape[d];
  if ((size_t)view.len < (size_t)numel * tb_dtype_itemsize(src_dtype)) {
    PyBuffer_Release(&view);
    PyErr_SetString(PyExc_ValueError, "_new: the buffer is smaller than the shape needs");
    return NULL;
  }
  tb_tensor_t *out;
  tb_status st = tb_tensor_new(view.buf, src_dtype, nd, shape, NULL,
                               dtype_obj != Py_None ? &dtype : NULL, TB_ORDER_C, 0, &out);
  PyBuffer_Release(&view);
  return tensor_result(st, &out);
}

/* _from_sequence(obj, dtype=None): tensor(obj, dtype) for Python numbers and
 * nested lists and tuples of them, or NotImplemented where _convert.py's
 * Python code is to do it (see seq_to_tensor). */
static PyObject *tbpy_from_sequence(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (nargs < 1 || nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "_from_sequence(obj, dtype=None)");
    return NULL;
  }
  DLDataType dtype;
  const bool have_dtype = nargs == 2 && args[1] != Py_None;
  if (have_dtype && dtype_from_py(args[1], &dtype) < 0) return NULL;
  return seq_to_tensor(args[0], have_dtype ? &dtype : NULL);
}

/* is_available(device): whether that device is present (a backend in this
 * build, and the device id among those its driver found). */
static PyObject *tbpy_is_available(PyObject *module, PyObject *arg) {
  (void)module;
  DLDevice device;
  if (device_from_py(arg, &device) < 0) return NULL;
  return PyBool_FromLong(device.device_id >= 0 &&
                         device.device_id < tb_device_count((int32_t)device.device_type));
}

/* _dtype_name(obj): the canonical name of anything dtype= accepts. */
static PyObject *tbpy_dtype_name(PyObject *module, PyObject *arg) {
  (void)module;
  DLDataType dt;
  if (dtype_from_py(arg, &dt) < 0) return NULL;
  return dtype_str(dt);
}

/* set_num_threads(n) / get_num_threads(): tb_set_num_threads' knob. */
static PyObject *tbpy_set_num_threads(PyObject *module, PyObject *arg) {
  (void)module;
  const long n = PyLong_AsLong(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0 || n > TB_MAX_THREADS) {
    return PyErr_Format(PyExc_ValueError, "set_num_threads: n = %ld is outside [0, %d]", n,
                        TB_MAX_THREADS);
  }
  if (tb_set_num_threads((int32_t)n) != TB_OK) {
    return PyErr_Format(PyExc_ValueError, "%s", tb_last_error());
  }
  Py_RETURN_NONE;
}

static PyObject *tbpy_get_num_threads(PyObject *module, PyObject *unused) {
  (void)module;
  (void)unused;
  return PyLong_FromLong(tb_get_num_threads());
}

static PyMethodDef module_methods[] = {
    {"set_num_threads", tbpy_set_num_threads, METH_O,
     "set_num_threads(n)\n--\n\n"
     "Threads that large copies, casts and transposes may use (the calling one\n"
     "included): 1 keeps everything on the calling thread, 0 restores the default\n"
     "(TB_NUM_THREADS, else the CPUs this process may use). As torch.set_num_threads."},
    {"get_num_threads", tbpy_get_num_threads, METH_NOARGS,
     "get_num_threads()\n--\n\nThe number of threads large copies use now."},
    {"from_dlpack", (PyCFunction)(void (*)(void))tbpy_from_dlpack, METH_FASTCALL | METH_KEYWORDS,
     "from_dlpack(x, /, *, device=None, copy=None)\n--\n\n"
     "A Tensor sharing the memory of any DLPack producer (or a copy when device or\n"
     "copy=True asks for one). Tries the producer's C exchange API, then\n"
     "x.__dlpack__(max_version=(1, 3)), then x.__dlpack__() (legacy), then the\n"
     "buffer protocol. A bare DLPack capsule is accepted too."},
    {"is_available", tbpy_is_available, METH_O,
     "is_available(device)\n--\n\nWhether tensors can be made on the device in this build."},
    {"_new", tbpy_new, METH_VARARGS, NULL},
    {"_from_sequence", (PyCFunction)(void (*)(void))tbpy_from_sequence, METH_FASTCALL, NULL},
    {"_dtype_name", tbpy_dtype_name, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef tbpy_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tensorbridge._tensorbridge",
    .m_doc = "The C extension behind the tensorbridge package.",
    .m_size = -1,
    .m_methods = module_methods,
};

static int intern_globals(void) {
  for (int i = 0; i < KW_COUNT; i++) {
    kw_str[i] = PyUnicode_InternFromString(kw_text[i]);
    if (kw_str[i] == NULL) return -1;
  }
  s_dlpack = PyUnicode_InternFromString("__dlpack__");
  s_exchange_capsule = PyUnicode_InternFromString("__dlpack_c_exchange_api__");
  s_exchange_int = PyUnicode_InternFromString("__c_dlpack_exchange_api__");
  s_max_version_value = Py_BuildValue("(ii)", TB_DLPACK_MAJOR, TB_DLPACK_MINOR);
  if (s_dlpack == NULL || s_exchange_capsule == NULL || s_exchange_int == NULL ||
      s_max_version_value == NULL) {
    return -1;
  }
  s_kwnames[0] = PyTuple_Pack(1, kw_str[KW_MAX_VERSION]);
  s_kwnames[1] = PyTuple_Pack(2, kw_str[KW_MAX_VERSION], kw_str[KW_DL_DEVICE]);
  s_kwnames[2] = PyTuple_Pack(2, kw_str[KW_MAX_VERSION], kw_str[KW_COPY]);
  s_kwnames[3] = PyTuple_Pack(3, kw_str[KW_MAX_VERSION], kw_str[KW_DL_DEVICE], kw_str[KW_COPY]);
  for (int i = 0; i < 4; i++) {
    if (s_kwnames[i] == NULL) return -1;
  }
  return 0;
}

PyMODINIT_FUNC PyInit__tensorbridge(void);

PyMODINIT_FUNC PyInit__tensorbridge(void) {
  if (intern_globals() < 0) return NULL;
  if (PyType_Ready(&Tensor_Type) < 0) return NULL;
  /* The exchange table lives on the type, where consumers look for it. */
  PyObject *table = PyCapsule_New(&tbpy_exchange_table, kCapsuleExchange, NULL);
  if (table == NULL) return NULL;
  int rc = PyDict_SetItem(Tensor_Type.tp_dict, s_exchange_capsule, table);
  Py_DECREF(table);
  if (rc < 0) return NULL;
  PyType_Modified(&Tensor_Type);

  PyObject *m = PyModule_Create(&tbpy_module);
  if (m == NULL) return NULL;
  if (PyModule_AddObjectRef(m, "Tensor", (PyObject *)&Tensor_Type) < 0 ||
      PyModule_AddStringConstant(m, "library_version", tb_version()) < 0 ||
      PyModule_AddIntConstant(m, "DLPACK_MAJOR", TB_DLPACK_MAJOR) < 0 ||
      PyModule_AddIntConstant(m, "DLPACK_MINOR", TB_DLPACK_MINOR) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
