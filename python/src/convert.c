/*
 * Conversions between the library's values and Python's: library errors as
 * exceptions, devices, dtypes, single elements (scalars), and the argument
 * parsing the METH_FASTCALL methods and functions share.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

#include <stdio.h>

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
    case TB_ERR_IO: return PyExc_OSError;
    default: return PyExc_ValueError;
  }
}

/* A built-in exception's tp_name is its bare name ("ValueError"), a static
 * string: readable without the GIL. */
const char *tbpy_exception_name(tb_status st) {
  return ((PyTypeObject *)tbpy_exception_for(st))->tp_name;
}

/* The library's messages name C functions and constants; Python users get
 * the names they call and the advice they can follow. */
static const struct {
  const char *c;
  const char *py;
} message_prefixes[] = {
    {"tensor_reshape: ", "reshape: "},     {"tensor_permute: ", "permute: "},
    {"tensor_transpose: ", "transpose: "}, {"tensor_squeeze_all: ", "squeeze: "},
    {"tensor_squeeze: ", "squeeze: "},     {"tensor_unsqueeze: ", "unsqueeze: "},
    {"tensor_expand: ", "expand: "},       {"tensor_view_as: ", "view: "},
    {"tensor_select: ", "index: "},        {"tensor_slice: ", "index: "},
    {"tensor_fill: ", "assignment: "},     {"tensor_copy_into: ", "assignment: "},
    {"tensor_contiguous: ", "contiguous: "}, {"tensor_to: ", "to: "},
    {"tensor_copy: ", "copy: "},           {"tensor_new: ", "tensor: "},
    {"tensor_empty: ", "tensor: "},        {"to_dlpack_versioned: ", "__dlpack__: "},
    {"to_dlpack: ", "__dlpack__: "},
    {"shm_handle_encode: ", "shared memory handle: "}, {"shm_attach: ", "shared memory attach: "},
    {"shm_share: ", "share_memory_: "},
}, message_phrases[] = {
    {"(tb_shm_share gives one that is)", "(share_memory_() moves it there)"},
    {"; pass TB_CAST_DISCARD_IMAG to keep the real part",
     "; take the real part explicitly first (numpy.real, torch.real)"},
    {"export versioned, copy, or pass TB_EXPORT_ALLOW_READONLY_LEGACY",
     "ask with max_version=(1, 0) or later, or export a copy (copy=True)"},
};

static void set_python_error(PyObject *type, const char *message) {
  const char *prefix = "";
  for (size_t i = 0; i < sizeof message_prefixes / sizeof message_prefixes[0]; i++) {
    size_t n = strlen(message_prefixes[i].c);
    if (strncmp(message, message_prefixes[i].c, n) == 0) {
      prefix = message_prefixes[i].py;
      message += n;
      break;
    }
  }
  PyObject *text = PyUnicode_FromFormat("%s%s", prefix, message);
  for (size_t k = 0; text != NULL && k < sizeof message_phrases / sizeof message_phrases[0]; k++) {
    if (strstr(message, message_phrases[k].c) == NULL) continue; /* the common case */
    PyObject *from = PyUnicode_FromString(message_phrases[k].c);
    PyObject *to = PyUnicode_FromString(message_phrases[k].py);
    PyObject *next = from != NULL && to != NULL ? PyUnicode_Replace(text, from, to, -1) : NULL;
    Py_XDECREF(from);
    Py_XDECREF(to);
    Py_SETREF(text, next);
  }
  if (text == NULL) return; /* MemoryError is set */
  /* A system call's failure ends "(errno N)": OSError(N, text) is then the
   * subclass Python users catch (FileNotFoundError, PermissionError, ...). */
  const char *e = type == PyExc_OSError ? strstr(message, "(errno ") : NULL;
  int err = 0;
  if (e != NULL && sscanf(e, "(errno %d)", &err) == 1 && err > 0) {
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iO", err, text);
    Py_DECREF(text);
    if (exc != NULL) {
      PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
      Py_DECREF(exc);
    }
    return;
  }
  PyErr_SetObject(type, text);
  Py_DECREF(text);
}

const tb_tensor_t *tbpy_tensor_arg(const char *fname, PyObject *arg) {
  if (!Tensor_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "%s: expected a tensorbridge.Tensor, got %.200s", fname,
                 Py_TYPE(arg)->tp_name);
    return NULL;
  }
  return TENSOR(arg);
}

PyObject *tbpy_raise(tb_status st) {
  set_python_error(tbpy_exception_for(st), tb_last_error());
  return NULL;
}

PyObject *tbpy_raise_buffer(tb_status st) {
  set_python_error(st == TB_ERR_NOMEM ? PyExc_MemoryError : PyExc_BufferError, tb_last_error());
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

bool tbpy_device_is_host(DLDevice d) {
  for (size_t i = 0; i < TBPY_DEVICE_COUNT; i++) {
    if (tbpy_devices[i].type == (int32_t)d.device_type) return tbpy_devices[i].host;
  }
  return false;
}

bool tbpy_device_equal(DLDevice a, DLDevice b) {
  return a.device_type == b.device_type && a.device_id == b.device_id;
}

PyObject *tbpy_device_str(DLDevice d) {
  const char *name = device_type_name((int32_t)d.device_type);
  if (name == NULL) return PyUnicode_FromFormat("device%d:%d", (int)d.device_type, (int)d.device_id);
  if (d.device_type == kDLCPU && d.device_id == 0) return PyUnicode_FromString(name);
  return PyUnicode_FromFormat("%s:%d", name, (int)d.device_id);
}

int tbpy_device_from_py(PyObject *obj, DLDevice *out) {
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

PyObject *tbpy_dtype_parse;
PyObject *tbpy_dtype_objects;
PyObject *tbpy_array_hook;
PyObject *tbpy_refused_hook;

/* Whether s is a canonical name: the fast path, no Python call. */
static bool dtype_canonical(const char *s, DLDataType *out) {
  DLDataType dt;
  if (tb_dtype_from_name(s, &dt) != TB_OK) return false;
  const char *name = tb_dtype_name(dt);
  if (name == NULL || strcmp(name, s) != 0) return false; /* an alias: C's meaning */
  *out = dt;
  return true;
}

int tbpy_dtype_from_py(PyObject *obj, DLDataType *out) {
  if (PyUnicode_Check(obj)) {
    const char *s = PyUnicode_AsUTF8(obj);
    if (s == NULL) return -1;
    if (dtype_canonical(s, out)) return 0;
  }
  if (tbpy_dtype_parse == NULL) {
    PyErr_Format(PyExc_TypeError, "dtype: %R is not a canonical dtype name", obj);
    return -1;
  }
  PyObject *name = PyObject_CallOneArg(tbpy_dtype_parse, obj);
  if (name == NULL) return -1;
  const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
  bool ok = s != NULL && dtype_canonical(s, out);
  if (!ok && !PyErr_Occurred()) {
    PyErr_Format(PyExc_SystemError, "dtype: the parser answered %R for %R", name, obj);
  }
  Py_DECREF(name);
  return ok ? 0 : -1;
}

PyObject *tbpy_dtype_str(DLDataType dt) {
  const char *name = tb_dtype_name(dt);
  if (name == NULL) {
    return PyUnicode_FromFormat("dtype(code=%d, bits=%d, lanes=%d)", (int)dt.code, (int)dt.bits,
                                (int)dt.lanes);
  }
  if (tbpy_dtype_objects != NULL) {
    PyObject *obj = PyDict_GetItemString(tbpy_dtype_objects, name); /* borrowed */
    if (obj != NULL) return Py_NewRef(obj);
  }
  return PyUnicode_FromString(name);
}

const char *tbpy_buffer_format(DLDataType dt) {
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

bool tbpy_dtype_from_format(const char *fmt, Py_ssize_t itemsize, DLDataType *out) {
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
  if (tb_dtype_itemsize(dt) != (size_t)itemsize || tbpy_buffer_format(dt) == NULL) return false;
  *out = dt;
  return true;
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                  */
/* ------------------------------------------------------------------------ */

PyObject *tbpy_scalar_to_py(const char *p, DLDataType dt) {
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
  PyObject *name = tbpy_dtype_str(dt);
  if (name != NULL) {
    PyErr_Format(PyExc_TypeError, "%U elements have no Python number type", name);
    Py_DECREF(name);
  }
  return NULL;
}

int tbpy_scalar_from_py(PyObject *v, scalar_value *out, DLDataType *dt) {
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

/* ------------------------------------------------------------------------ */
/* Argument parsing                                                         */
/* ------------------------------------------------------------------------ */

int tbpy_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
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

int tbpy_copy_mode_from_py(PyObject *obj, tb_copy_mode *out) {
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

int tbpy_int64s_from_args(PyObject *args, int64_t *out, int32_t *n) {
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
