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
 * Where each part lives, in python/src/:
 *   tbpy.h      the internal header: the Tensor object, the interned
 *               strings, interpreter compatibility, and what one file calls
 *               in another (all hidden: only PyInit__tensorbridge is
 *               exported);
 *   module.c    this file: the module functions (_new, _from_sequence,
 *               is_available, _dtype_name, set/get_num_threads; from_dlpack
 *               is in dlpack.c), the interned strings, PyInit__tensorbridge;
 *   convert.c   library errors as exceptions, devices, dtypes, scalars, and
 *               the argument parsing shared by the FASTCALL entry points;
 *   tensor.c    the Tensor type: Tensor(), tolist / item / repr, attributes,
 *               numbers, methods, the buffer-protocol exporter, the type;
 *   index.c     indexing (views) and item assignment;
 *   dlpack.c    DLPack export and import (from_dlpack), the deleters that
 *               take the GIL, and the C exchange table this module publishes;
 *   sequence.c  tensor(nested sequences) in one C pass;
 *   io.c        files and processes: .npy and safetensors files, shared
 *               memory (share_memory_, is_shared, the handle
 *               multiprocessing pickles).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

/* ------------------------------------------------------------------------ */
/* Module globals (declared in tbpy.h)                                      */
/* ------------------------------------------------------------------------ */

static const char *const kw_text[KW_COUNT] = {"stream", "max_version", "dl_device", "copy",
                                               "device", "dtype",       "legacy_writable"};
PyObject *kw_str[KW_COUNT];

PyObject *s_dlpack;
PyObject *s_exchange_capsule;
PyObject *s_exchange_int;
PyObject *s_max_version_value;
PyObject *s_kwnames[4];

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
  if (tbpy_dtype_from_py(src_dtype_obj, &src_dtype) < 0) return NULL;
  if (dtype_obj != Py_None && tbpy_dtype_from_py(dtype_obj, &dtype) < 0) return NULL;
  int64_t shape[TB_MAX_NDIM];
  int32_t nd;
  PyObject *shape_args = PyTuple_Pack(1, shape_obj);
  if (shape_args == NULL) return NULL;
  int rc = tbpy_int64s_from_args(shape_args, shape, &nd);
  Py_DECREF(shape_args);
  if (rc < 0) return NULL;
  Py_buffer view;
  if (PyObject_GetBuffer(buffer, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
  /* The bytes the shape needs, counted in bits so that packed (sub-byte)
   * dtypes count too, and overflow-checked: pickled data reaches here. */
  int64_t bits = (int64_t)src_dtype.bits * (int64_t)src_dtype.lanes;
  bool overflow = false;
  for (int32_t d = 0; d < nd; d++) {
    overflow |= __builtin_mul_overflow(bits, shape[d] < 0 ? 0 : shape[d], &bits);
  }
  const int64_t need = bits / 8 + (bits % 8 != 0);
  if (overflow || need > (int64_t)view.len) {
    PyBuffer_Release(&view);
    PyErr_Format(PyExc_ValueError, "_new: the buffer has %zd bytes, fewer than the shape needs",
                 view.len);
    return NULL;
  }
  tb_tensor_t *out;
  tb_status st = tb_tensor_new(view.buf, src_dtype, nd, shape, NULL,
                               dtype_obj != Py_None ? &dtype : NULL, TB_ORDER_C, 0, &out);
  PyBuffer_Release(&view);
  return tbpy_tensor_result(st, &out);
}

/* _from_sequence(obj, dtype=None): tensor(obj, dtype) for Python numbers and
 * nested lists and tuples of them, or NotImplemented where _convert.py's
 * Python code is to do it (see tbpy_seq_to_tensor). */
static PyObject *tbpy_from_sequence(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (nargs < 1 || nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "_from_sequence(obj, dtype=None)");
    return NULL;
  }
  DLDataType dtype;
  const bool have_dtype = nargs == 2 && args[1] != Py_None;
  if (have_dtype && tbpy_dtype_from_py(args[1], &dtype) < 0) return NULL;
  return tbpy_seq_to_tensor(args[0], have_dtype ? &dtype : NULL);
}

/* is_available(device): whether that device is present (a backend in this
 * build, and the device id among those its driver found). */
static PyObject *tbpy_is_available(PyObject *module, PyObject *arg) {
  (void)module;
  DLDevice device;
  if (tbpy_device_from_py(arg, &device) < 0) return NULL;
  return PyBool_FromLong(device.device_id >= 0 &&
                         device.device_id < tb_device_count((int32_t)device.device_type));
}

/* _dtype_name(obj): the canonical name of anything dtype= accepts. */
static PyObject *tbpy_dtype_name(PyObject *module, PyObject *arg) {
  (void)module;
  DLDataType dt;
  if (tbpy_dtype_from_py(arg, &dt) < 0) return NULL;
  return tbpy_dtype_str(dt);
}

/* _register(parse, dtype_objects, array, refused): the package's hooks
 * (tbpy.h). */
static PyObject *tbpy_register(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *parse, *objects, *array, *refused;
  if (!PyArg_ParseTuple(args, "OO!OO:_register", &parse, &PyDict_Type, &objects, &array,
                        &refused)) {
    return NULL;
  }
  if (!PyCallable_Check(parse) || !PyCallable_Check(array) || !PyCallable_Check(refused)) {
    PyErr_SetString(PyExc_TypeError, "_register: parse, array and refused must be callables");
    return NULL;
  }
  Py_XSETREF(tbpy_dtype_parse, Py_NewRef(parse));
  Py_XSETREF(tbpy_dtype_objects, Py_NewRef(objects));
  Py_XSETREF(tbpy_array_hook, Py_NewRef(array));
  Py_XSETREF(tbpy_refused_hook, Py_NewRef(refused));
  Py_RETURN_NONE;
}

/* _dtype_names(): every canonical dtype name the library knows, asked of
 * the library (each (code, bits) pair it names), so the list never drifts. */
static PyObject *tbpy_dtype_names(PyObject *module, PyObject *unused) {
  (void)module;
  (void)unused;
  PyObject *out = PyList_New(0);
  if (out == NULL) return NULL;
  for (unsigned code = 0; code < 64; code++) {
    for (unsigned bits = 1; bits <= 255; bits++) {
      const char *name = tb_dtype_name(tb_dtype((uint8_t)code, (uint8_t)bits));
      if (name == NULL) continue;
      PyObject *s = PyUnicode_FromString(name);
      if (s == NULL || PyList_Append(out, s) < 0) {
        Py_XDECREF(s);
        Py_DECREF(out);
        return NULL;
      }
      Py_DECREF(s);
    }
  }
  return out;
}

/* _dtype_itemsize(dtype): bytes per element, 0 for packed dtypes. */
static PyObject *tbpy_dtype_itemsize(PyObject *module, PyObject *arg) {
  (void)module;
  DLDataType dt;
  if (tbpy_dtype_from_py(arg, &dt) < 0) return NULL;
  return PyLong_FromSize_t(tb_dtype_itemsize(dt));
}

/* _has_buffer_format(t): whether the buffer protocol can describe t's dtype. */
static PyObject *tbpy_has_buffer_format(PyObject *module, PyObject *arg) {
  (void)module;
  const tb_tensor_t *t = tbpy_tensor_arg("_has_buffer_format", arg);
  if (t == NULL) return NULL;
  return PyBool_FromLong(tbpy_buffer_format(tb_tensor_dtype(t)) != NULL);
}

/* _is_host(t): whether the CPU can read t's memory. */
static PyObject *tbpy_is_host(PyObject *module, PyObject *arg) {
  (void)module;
  const tb_tensor_t *t = tbpy_tensor_arg("_is_host", arg);
  if (t == NULL) return NULL;
  return PyBool_FromLong(tbpy_device_is_host(tb_tensor_device(t)));
}

/* _device_differs(t, device): whether device names another device than t's. */
static PyObject *tbpy_device_differs(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *tensor, *device_obj;
  if (!PyArg_ParseTuple(args, "OO:_device_differs", &tensor, &device_obj)) return NULL;
  const tb_tensor_t *t = tbpy_tensor_arg("_device_differs", tensor);
  DLDevice device;
  if (t == NULL || tbpy_device_from_py(device_obj, &device) < 0) return NULL;
  return PyBool_FromLong(!tbpy_device_equal(device, tb_tensor_device(t)));
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
     "from_dlpack(x, /, *, device=None, copy=None, legacy_writable=False)\n--\n\n"
     "A Tensor sharing the memory of any DLPack producer (or a copy when device or\n"
     "copy=True asks for one). Tries the producer's C exchange API, then\n"
     "x.__dlpack__(max_version=(1, 3)), then x.__dlpack__() (legacy), then the\n"
     "buffer protocol. A bare DLPack capsule is accepted too (from\n"
     "torch.utils.dlpack.to_dlpack or tf.experimental.dlpack.to_dlpack).\n\n"
     "A legacy capsule cannot say whether its memory may be written (JAX's and\n"
     "TensorFlow's may not), so what it shares is read-only, as in NumPy;\n"
     "legacy_writable=True shares it writable (torch 1.13 tensors, for one)."},
    {"is_available", tbpy_is_available, METH_O,
     "is_available(device)\n--\n\nWhether tensors can be made on the device in this build."},
    {"_new", tbpy_new, METH_VARARGS, NULL},
    {"_from_sequence", (PyCFunction)(void (*)(void))tbpy_from_sequence, METH_FASTCALL, NULL},
    {"_dtype_name", tbpy_dtype_name, METH_O, NULL},
    {"_dtype_names", tbpy_dtype_names, METH_NOARGS, NULL},
    {"_dtype_itemsize", tbpy_dtype_itemsize, METH_O, NULL},
    {"_register", tbpy_register, METH_VARARGS, NULL},
    {"_has_buffer_format", tbpy_has_buffer_format, METH_O, NULL},
    {"_is_host", tbpy_is_host, METH_O, NULL},
    {"_device_differs", tbpy_device_differs, METH_VARARGS, NULL},
    {"_shm_handle", tbpy_shm_handle, METH_O, NULL},
    {"_shm_attach", tbpy_shm_attach, METH_VARARGS, NULL},
    {"_npy_load", tbpy_npy_load, METH_VARARGS, NULL},
    {"_npy_save", tbpy_npy_save, METH_VARARGS, NULL},
    {"_safetensors_load", tbpy_safetensors_load, METH_O, NULL},
    {"_safetensors_save", tbpy_safetensors_save, METH_VARARGS, NULL},
    {"_exchange_calls", tbpy_exchange_calls, METH_NOARGS,
     "_exchange_calls()\n--\n\n"
     "How many times each function of this module's DLPack C exchange table has\n"
     "been called, by name (a testing aid: it shows which path a consumer took)."},
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
  PyObject *table = tbpy_exchange_capsule();
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
