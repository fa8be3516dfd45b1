/*
 * The Tensor type: wrapping, Tensor() and freeing, tolist / item / repr,
 * attributes, numbers for one-element tensors, the methods (shape views,
 * copies, to(), numpy(), the torch and NumPy habits), the buffer-protocol
 * exporter, the method table and the type object. Indexing lives in index.c,
 * __dlpack__ in dlpack.c, Tensor(data)'s C pass in sequence.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

/* ------------------------------------------------------------------------ */
/* Tensor objects                                                           */
/* ------------------------------------------------------------------------ */

PyObject *tbpy_tensor_wrap(tb_tensor_t *t) {
  TensorObject *o = PyObject_New(TensorObject, &Tensor_Type);
  if (o == NULL) {
    tb_tensor_release(t);
    return NULL;
  }
  o->t = t;
  o->retired = NULL;
  return (PyObject *)o;
}

PyObject *tbpy_tensor_result(tb_status st, tb_tensor_t *const *out) {
  if (st != TB_OK) return tbpy_raise(st);
  return tbpy_tensor_wrap(*out);
}

static void Tensor_dealloc(PyObject *self) {
  tb_tensor_release(TENSOR(self));
  tb_tensor_release(((TensorObject *)self)->retired);
  Py_TYPE(self)->tp_free(self);
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
    if (n > 0 && tbpy_int64s_from_args(args, shape, &nd) < 0) return NULL;
    DLDevice device = {kDLCPU, 0};
    if (device_obj != NULL && device_obj != Py_None &&
        tbpy_device_from_py(device_obj, &device) < 0) {
      return NULL;
    }
    tb_tensor_t *out;
    return tbpy_tensor_result(
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
    PyObject *r = tbpy_seq_to_tensor(data, &f32);
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

/* Address of the element at index (0, ..., 0), or NULL with BufferError
 * when the device's memory cannot be read from the host. */
static char *tensor_host_data(const tb_tensor_t *t, const char *what) {
  DLDevice d = tb_tensor_device(t);
  if (!tbpy_device_is_host(d)) {
    PyObject *name = tbpy_device_str(d);
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

/* ---- tolist / item / repr ---- */

static PyObject *tolist_rec(const tb_tensor_t *t, const char *p, int32_t d, size_t itemsize) {
  if (d == tb_tensor_ndim(t)) return tbpy_scalar_to_py(p, tb_tensor_dtype(t));
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
  return tbpy_scalar_to_py(p, tb_tensor_dtype(t));
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
    PyObject *v = tbpy_scalar_to_py(p, tb_tensor_dtype(t));
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
  PyObject *dtype = tbpy_dtype_str(tb_tensor_dtype(t));
  PyObject *shape = int64_tuple(tb_tensor_shape(t), nd);
  PyObject *device = tbpy_device_str(dev);
  PyObject *body = NULL, *extra = NULL, *r = NULL;
  if (dtype == NULL || shape == NULL || device == NULL) goto done;
  bool readable = tbpy_device_is_host(dev) && tbpy_buffer_format(tb_tensor_dtype(t)) != NULL;
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
    body = PyUnicode_FromString(tbpy_device_is_host(dev) ? "<no Python view of these elements>"
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
  return tbpy_dtype_str(tb_tensor_dtype(TENSOR(self)));
}

static PyObject *Tensor_get_device(PyObject *self, void *closure) {
  (void)closure;
  return tbpy_device_str(tb_tensor_device(TENSOR(self)));
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
  return tbpy_tensor_result(tb_tensor_permute(t, perm, &out), &out);
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
/* Numbers, for one-element tensors                                         */
/* ------------------------------------------------------------------------ */

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

static PyObject *Tensor_reshape(PyObject *self, PyObject *args) {
  int64_t shape[TB_MAX_NDIM];
  int32_t n;
  if (tbpy_int64s_from_args(args, shape, &n) < 0) return NULL;
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_reshape(TENSOR(self), n, shape, &out), &out);
}

static PyObject *Tensor_expand(PyObject *self, PyObject *args) {
  int64_t shape[TB_MAX_NDIM];
  int32_t n;
  if (tbpy_int64s_from_args(args, shape, &n) < 0) return NULL;
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_expand(TENSOR(self), n, shape, &out), &out);
}

static PyObject *Tensor_permute(PyObject *self, PyObject *args) {
  int64_t dims[TB_MAX_NDIM];
  int32_t n;
  if (tbpy_int64s_from_args(args, dims, &n) < 0) return NULL;
  const tb_tensor_t *t = TENSOR(self);
  if (n != tb_tensor_ndim(t)) {
    PyErr_Format(PyExc_ValueError, "permute: %d dimensions given for a %d-d tensor", (int)n,
                 (int)tb_tensor_ndim(t));
    return NULL;
  }
  int32_t perm[TB_MAX_NDIM];
  for (int32_t i = 0; i < n; i++) perm[i] = (int32_t)dims[i];
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_permute(t, perm, &out), &out);
}

static PyObject *Tensor_transpose(PyObject *self, PyObject *args) {
  int d0, d1;
  if (!PyArg_ParseTuple(args, "ii:transpose", &d0, &d1)) return NULL;
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_transpose(TENSOR(self), d0, d1, &out), &out);
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
  if (dim == Py_None) return tbpy_tensor_result(tb_tensor_squeeze_all(TENSOR(self), &out), &out);
  int d;
  if (int_from_py(dim, &d) < 0) return NULL;
  return tbpy_tensor_result(tb_tensor_squeeze(TENSOR(self), d, &out), &out);
}

static PyObject *Tensor_unsqueeze(PyObject *self, PyObject *arg) {
  int d;
  if (int_from_py(arg, &d) < 0) return NULL;
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_unsqueeze(TENSOR(self), d, &out), &out);
}

static PyObject *Tensor_contiguous(PyObject *self, PyObject *unused) {
  (void)unused;
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_contiguous(TENSOR(self), TB_ORDER_C, &out), &out);
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
  return tbpy_tensor_wrap(tb_tensor_retain(TENSOR(self)));
}

/* A C-order copy, writable. */
static PyObject *Tensor_copy(PyObject *self, PyObject *unused) {
  (void)unused;
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_copy(TENSOR(self), NULL, TB_ORDER_C, 0, &out), &out);
}

/* self when device and dtype are self's and no copy is asked, else a
 * C-order copy converted to them: to(), cpu() and astype(). */
static PyObject *tensor_to(PyObject *self, DLDevice device, DLDataType dtype, bool copy) {
  const tb_tensor_t *t = TENSOR(self);
  if (!copy && tbpy_device_equal(device, tb_tensor_device(t)) &&
      tb_dtype_equal(dtype, tb_tensor_dtype(t))) {
    return Py_NewRef(self);
  }
  tb_tensor_t *out;
  return tbpy_tensor_result(tb_tensor_to(t, device, &dtype, TB_ORDER_C, 0, &out), &out);
}

/* to(device=None, dtype=None, *, copy=False): self when nothing changes and
 * no copy was asked, else a converted copy. A lone positional argument that
 * names a dtype is taken as the dtype (t.to("float64")). */
static PyObject *Tensor_to(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
  static const int params[] = {KW_DEVICE, KW_DTYPE, KW_COPY};
  PyObject *a[3];
  if (tbpy_parse_args("to", args, nargs, kwnames, params, 3, 2, 0, a) < 0) return NULL;
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
  if (a[0] != NULL && a[0] != Py_None && tbpy_device_from_py(a[0], &device) < 0) return NULL;
  if (a[1] != NULL && a[1] != Py_None && tbpy_dtype_from_py(a[1], &dtype) < 0) return NULL;
  int copy = a[2] != NULL ? PyObject_IsTrue(a[2]) : 0;
  if (copy < 0) return NULL;
  return tensor_to(self, device, dtype, copy != 0);
}

/* __reduce__(): pickles by value, as (_new, (the C-order bytes, dtype name,
 * shape)); a copy comes back, on the host. multiprocessing's pickler sends
 * tensors in shared memory by handle instead (tensorbridge/_shared.py). */
static PyObject *Tensor_reduce(PyObject *self, PyObject *unused) {
  (void)unused;
  const tb_tensor_t *t = TENSOR(self);
  const char *name = tb_dtype_name(tb_tensor_dtype(t));
  if (name == NULL) {
    PyErr_SetString(PyExc_TypeError, "pickle: this tensor's dtype has no name");
    return NULL;
  }
  tb_tensor_t *host = NULL;
  tb_status st = tbpy_device_is_host(tb_tensor_device(t))
                     ? tb_tensor_contiguous(t, TB_ORDER_C, &host)
                     : tb_tensor_to(t, (DLDevice){kDLCPU, 0}, NULL, TB_ORDER_C, 0, &host);
  if (st != TB_OK) return tbpy_raise(st);
  PyObject *bytes = PyBytes_FromStringAndSize(tb_tensor_data(host),
                                              (Py_ssize_t)tb_tensor_nbytes(host));
  PyObject *shape = int64_tuple(tb_tensor_shape(host), tb_tensor_ndim(host));
  tb_tensor_release(host);
  PyObject *module = PyImport_ImportModule("tensorbridge._tensorbridge");
  PyObject *rebuild = module != NULL ? PyObject_GetAttrString(module, "_new") : NULL;
  Py_XDECREF(module);
  PyObject *out = NULL;
  if (bytes != NULL && shape != NULL && rebuild != NULL) {
    out = Py_BuildValue("(O(OsO))", rebuild, bytes, name, shape);
  }
  Py_XDECREF(bytes);
  Py_XDECREF(shape);
  Py_XDECREF(rebuild);
  return out;
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
  return tensor_to(self, (DLDevice){kDLCPU, 0}, tb_tensor_dtype(TENSOR(self)), false);
}

/* view(dtype): the same bytes as another dtype of the same element size. */
static PyObject *Tensor_view(PyObject *self, PyObject *arg) {
  DLDataType dt;
  if (tbpy_dtype_from_py(arg, &dt) < 0) return NULL;
  tb_tensor_t *out;
  tb_status st = tb_tensor_view_as(TENSOR(self), dt, &out);
  return tbpy_tensor_result(st, &out);
}

/* __array__(dtype=None, copy=None): NumPy's protocol, answered in Python
 * (tensorbridge._convert._array) where NumPy and ml_dtypes are at hand. */
static PyObject *Tensor_array(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char kw_dtype[] = "dtype", kw_copy[] = "copy";
  static char *kwlist[] = {kw_dtype, kw_copy, NULL};
  PyObject *dtype = Py_None, *copy = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:__array__", kwlist, &dtype, &copy)) {
    return NULL;
  }
  if (tbpy_array_hook == NULL) {
    PyErr_SetString(PyExc_TypeError, "__array__: import tensorbridge first");
    return NULL;
  }
  return PyObject_CallFunctionObjArgs(tbpy_array_hook, self, dtype, copy, NULL);
}

/* astype(dtype, copy=True): NumPy's; self only when copy is false and the
 * dtype is already this one. */
static PyObject *Tensor_astype(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char kw_dtype[] = "dtype", kw_copy[] = "copy";
  static char *kwlist[] = {kw_dtype, kw_copy, NULL};
  PyObject *dtype;
  int copy = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|p:astype", kwlist, &dtype, &copy)) return NULL;
  const tb_tensor_t *t = TENSOR(self);
  DLDataType dt = tb_tensor_dtype(t);
  if (dtype != Py_None && tbpy_dtype_from_py(dtype, &dt) < 0) return NULL;
  return tensor_to(self, tb_tensor_device(t), dt, copy != 0);
}

/* ------------------------------------------------------------------------ */
/* Buffer protocol export                                                   */
/* ------------------------------------------------------------------------ */

static int Tensor_getbuffer(PyObject *self, Py_buffer *view, int flags) {
  const tb_tensor_t *t = TENSOR(self);
  DLDataType dt = tb_tensor_dtype(t);
  const char *fmt = tbpy_buffer_format(dt);
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
  view->len = (Py_ssize_t)tb_tensor_nbytes(t);
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
/* The type                                                                 */
/* ------------------------------------------------------------------------ */

static PyMethodDef Tensor_methods[] = {
    {"__dlpack__", (PyCFunction)(void (*)(void))tbpy_Tensor_dlpack, METH_FASTCALL | METH_KEYWORDS,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\n"
     "Exports the tensor as a DLPack capsule: versioned ('dltensor_versioned') when\n"
     "max_version >= (1, 0), else legacy ('dltensor')."},
    {"__dlpack_device__", tbpy_Tensor_dlpack_device, METH_NOARGS,
     "__dlpack_device__()\n--\n\n(device_type, device_id) as DLPack numbers them."},
    {"size", (PyCFunction)(void (*)(void))Tensor_size, METH_FASTCALL,
     "size(dim=None)\n--\n\nThe shape as a tuple, or its extent along dim (as torch)."},
    {"stride", (PyCFunction)(void (*)(void))Tensor_stride, METH_FASTCALL,
     "stride(dim=None)\n--\n\nThe strides in elements, or the one of dim (as torch)."},
    {"dim", Tensor_dim, METH_NOARGS, "dim()\n--\n\nThe number of dimensions (ndim)."},
    {"element_size", Tensor_element_size, METH_NOARGS,
     "element_size()\n--\n\nBytes per element (itemsize)."},
    {"view", Tensor_view, METH_O,
     "view(dtype)\n--\n\nThe same memory read as another dtype of the same element size\n"
     "(as torch's view(dtype) and NumPy's view(dtype)); shape and strides are kept."},
    {"__array__", (PyCFunction)(void (*)(void))Tensor_array, METH_VARARGS | METH_KEYWORDS,
     "__array__(dtype=None, copy=None)\n--\n\n"
     "A NumPy array over this tensor's memory (NumPy 2's protocol): shared when no\n"
     "conversion is needed; copy=True always copies; copy=False raises ValueError\n"
     "when a copy would be needed. bfloat16 and float8 come out as ml_dtypes arrays."},
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
    {"share_memory_", tbpy_Tensor_share_memory, METH_NOARGS,
     "share_memory_()\n--\n\n"
     "Moves this tensor into shared memory (as torch's share_memory_): a copy in C\n"
     "order, unless it is there already; returns self. multiprocessing then sends it\n"
     "to other processes by handle (the same memory), not by value. Views made\n"
     "before keep the old memory."},
    {"is_shared", tbpy_Tensor_is_shared, METH_NOARGS,
     "is_shared()\n--\n\nWhether the tensor's memory is shared memory other processes can map."},
    {"__reduce__", Tensor_reduce, METH_NOARGS,
     "__reduce__()\n--\n\nPickles by value (a host copy of the elements in C order)."},
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

PyTypeObject Tensor_Type = {
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
