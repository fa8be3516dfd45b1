/*
 * Files and processes for Python: tensors in shared memory
 * (Tensor.share_memory_(), is_shared(), and the handle multiprocessing
 * pickles them by: _shm_handle / _shm_attach, used by tensorbridge/_shared.py),
 * and .npy and safetensors files mapped, not read (tensorbridge/_files.py).
 * File system calls run without the GIL.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

#include <unistd.h>

PyObject *tbpy_Tensor_share_memory(PyObject *self, PyObject *unused) {
  (void)unused;
  TensorObject *o = (TensorObject *)self;
  if (tb_tensor_is_shared(o->t)) return Py_NewRef(self);
  tb_tensor_t *shared;
  tb_status st = tb_shm_share(o->t, &shared);
  if (st != TB_OK) return tbpy_raise(st);
  /* At most one retirement: a shared tensor returns above from now on. */
  tb_tensor_release(o->retired);
  o->retired = o->t;
  o->t = shared;
  return Py_NewRef(self);
}

PyObject *tbpy_Tensor_is_shared(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(tb_tensor_is_shared(TENSOR(self)));
}

/* _shm_handle(t) -> (bytes, fd): the handle of a tensor in shared memory;
 * the fd is borrowed (valid while t lives). */
PyObject *tbpy_shm_handle(PyObject *module, PyObject *arg) {
  (void)module;
  const tb_tensor_t *t = tbpy_tensor_arg("_shm_handle", arg);
  if (t == NULL) return NULL;
  unsigned char buf[TB_SHM_HANDLE_MAX];
  size_t len;
  int fd;
  tb_status st = tb_shm_handle_encode(t, buf, sizeof buf, &len, &fd);
  if (st != TB_OK) return tbpy_raise(st);
  return Py_BuildValue("(y#i)", (const char *)buf, (Py_ssize_t)len, fd);
}

/* _shm_attach(bytes, fd) -> Tensor: maps the block (fd is borrowed: the
 * library dups it). */
PyObject *tbpy_shm_attach(PyObject *module, PyObject *args) {
  (void)module;
  Py_buffer handle;
  int fd;
  if (!PyArg_ParseTuple(args, "y*i:_shm_attach", &handle, &fd)) return NULL;
  tb_tensor_t *out;
  tb_status st = tb_shm_attach(handle.buf, (size_t)handle.len, fd, &out);
  PyBuffer_Release(&handle);
  return tbpy_tensor_result(st, &out);
}

/* ---- files: .npy and safetensors ---- */

/* A path argument (str, bytes or os.PathLike) as a bytes object, whose
 * contents are the file system's spelling. */
static PyObject *path_bytes(PyObject *path) {
  PyObject *out = NULL;
  if (!PyUnicode_FSConverter(path, &out)) return NULL;
  return out;
}

/* _npy_load(path, mode) -> Tensor: the file mapped in tb_map_mode `mode`. */
PyObject *tbpy_npy_load(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *path;
  int mode;
  if (!PyArg_ParseTuple(args, "Oi:_npy_load", &path, &mode)) return NULL;
  PyObject *fs = path_bytes(path);
  if (fs == NULL) return NULL;
  tb_tensor_t *out;
  tb_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tb_npy_load(PyBytes_AS_STRING(fs), (tb_map_mode)mode, &out);
  Py_END_ALLOW_THREADS
  Py_DECREF(fs);
  return tbpy_tensor_result(st, &out);
}

/* _npy_save(path, t): t's elements, in C order, as a .npy file. */
PyObject *tbpy_npy_save(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *path, *tensor;
  if (!PyArg_ParseTuple(args, "OO!:_npy_save", &path, &Tensor_Type, &tensor)) return NULL;
  PyObject *fs = path_bytes(path);
  if (fs == NULL) return NULL;
  tb_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tb_npy_save(PyBytes_AS_STRING(fs), TENSOR(tensor));
  Py_END_ALLOW_THREADS
  Py_DECREF(fs);
  if (st != TB_OK) return tbpy_raise(st);
  Py_RETURN_NONE;
}

/* _safetensors_load(path) -> ([(name, Tensor), ...], {key: value}): every
 * entry, in the file's order, each a read-only view of the one mapping. */
PyObject *tbpy_safetensors_load(PyObject *module, PyObject *arg) {
  (void)module;
  PyObject *fs = path_bytes(arg);
  if (fs == NULL) return NULL;
  tb_safetensors *f;
  tb_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tb_safetensors_open(PyBytes_AS_STRING(fs), &f);
  Py_END_ALLOW_THREADS
  Py_DECREF(fs);
  if (st != TB_OK) return tbpy_raise(st);
  PyObject *entries = PyList_New(0), *meta = PyDict_New(), *out = NULL;
  if (entries == NULL || meta == NULL) goto done;
  for (int64_t i = 0; i < tb_safetensors_count(f); i++) {
    tb_tensor_t *t;
    st = tb_safetensors_get_index(f, i, &t);
    if (st != TB_OK) {
      tbpy_raise(st);
      goto done;
    }
    PyObject *item = Py_BuildValue("(sN)", tb_safetensors_name(f, i), tbpy_tensor_wrap(t));
    if (item == NULL || PyList_Append(entries, item) < 0) {
      Py_XDECREF(item);
      goto done;
    }
    Py_DECREF(item);
  }
  for (int64_t i = 0; i < tb_safetensors_metadata_count(f); i++) {
    PyObject *v = PyUnicode_FromString(tb_safetensors_metadata_value(f, i));
    int rc = v != NULL ? PyDict_SetItemString(meta, tb_safetensors_metadata_key(f, i), v) : -1;
    Py_XDECREF(v);
    if (rc < 0) goto done;
  }
  out = PyTuple_Pack(2, entries, meta);
done:
  Py_XDECREF(entries);
  Py_XDECREF(meta);
  tb_safetensors_close(f); /* the tensors keep the mapping */
  return out;
}

/* A str as UTF-8 for C, refusing an embedded U+0000 (C would cut it there);
 * NULL with an exception otherwise. */
static const char *c_string(PyObject *s, const char *what) {
  Py_ssize_t n;
  const char *text = PyUnicode_AsUTF8AndSize(s, &n);
  if (text != NULL && strlen(text) != (size_t)n) {
    PyErr_Format(PyExc_ValueError, "save_safetensors: %s holds U+0000: %R", what, s);
    return NULL;
  }
  return text;
}

/* _safetensors_save(path, names, tensors, meta_keys, meta_values): lists of
 * str and Tensor, of equal lengths. The lists are the caller's own (built
 * in _files.py, where no other code holds them while the GIL is released). */
PyObject *tbpy_safetensors_save(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *path, *names, *tensors, *keys, *values;
  if (!PyArg_ParseTuple(args, "OO!O!O!O!:_safetensors_save", &path, &PyList_Type, &names,
                        &PyList_Type, &tensors, &PyList_Type, &keys, &PyList_Type, &values)) {
    return NULL;
  }
  Py_ssize_t n = PyList_GET_SIZE(names), m = PyList_GET_SIZE(keys);
  if (PyList_GET_SIZE(tensors) != n || PyList_GET_SIZE(values) != m) {
    PyErr_SetString(PyExc_ValueError, "_safetensors_save: list lengths differ");
    return NULL;
  }
  PyObject *fs = path_bytes(path);
  if (fs == NULL) return NULL;
  /* The strings stay owned by the lists, which this call holds throughout. */
  const char **strings = PyMem_Calloc((size_t)(n + 2 * m) + 1, sizeof *strings);
  const tb_tensor_t **ctensors = PyMem_Calloc((size_t)n + 1, sizeof *ctensors);
  if (strings == NULL || ctensors == NULL) {
    PyMem_Free(strings);
    PyMem_Free(ctensors);
    Py_DECREF(fs);
    return PyErr_NoMemory();
  }
  const char **cnames = strings, **ckeys = strings + n, **cvalues = strings + n + m;
  PyObject *result = NULL;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *t = PyList_GET_ITEM(tensors, i);
    if (!Tensor_Check(t)) {
      PyErr_Format(PyExc_TypeError, "_safetensors_save: tensors[%zd] is not a Tensor", i);
      goto done;
    }
    ctensors[i] = TENSOR(t);
    if ((cnames[i] = c_string(PyList_GET_ITEM(names, i), "a name")) == NULL) goto done;
  }
  for (Py_ssize_t i = 0; i < m; i++) {
    if ((ckeys[i] = c_string(PyList_GET_ITEM(keys, i), "a metadata key")) == NULL) goto done;
    if ((cvalues[i] = c_string(PyList_GET_ITEM(values, i), "a metadata value")) == NULL) {
      goto done;
    }
  }
  tb_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tb_safetensors_save(PyBytes_AS_STRING(fs), (int64_t)n, cnames, ctensors, (int64_t)m, ckeys,
                           cvalues);
  Py_END_ALLOW_THREADS
  if (st != TB_OK) {
    tbpy_raise(st);
    goto done;
  }
  result = Py_NewRef(Py_None);
done:
  PyMem_Free(strings);
  PyMem_Free(ctensors);
  Py_DECREF(fs);
  return result;
}
