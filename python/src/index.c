/*
 * Indexing and item assignment: t[key] is a view (ints, slices of any step,
 * Ellipsis and None), t[key] = value fills or copies into that view, with
 * the mapping and sequence slots of the Tensor type.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

/* ------------------------------------------------------------------------ */
/* Indexing: ints, slices (any step), Ellipsis and None make views          */
/* ------------------------------------------------------------------------ */

static bool is_int_index(PyObject *item) {
  return !PyBool_Check(item) && PyIndex_Check(item) && !Tensor_Check(item);
}

/* The view that key selects; a new reference. */
static tb_tensor_t *index_view(const tb_tensor_t *t, PyObject *key) {
  /* The items of a tuple key, or the key alone; borrowed from the caller. */
  PyObject *const *items = PyTuple_Check(key) ? PySequence_Fast_ITEMS(key) : &key;
  const Py_ssize_t n = PyTuple_Check(key) ? PyTuple_GET_SIZE(key) : 1;
  int32_t consuming = 0;
  int ellipses = 0;
  for (Py_ssize_t k = 0; k < n; k++) {
    PyObject *item = items[k];
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
      return NULL;
    }
  }
  int32_t nd = tb_tensor_ndim(t);
  if (ellipses > 1) {
    PyErr_SetString(PyExc_IndexError, "an index can only have a single ellipsis ('...')");
    return NULL;
  }
  if (consuming > nd) {
    PyErr_Format(PyExc_IndexError, "too many indices: the tensor has %d dimension%s, %d were indexed",
                 (int)nd, nd == 1 ? "" : "s", (int)consuming);
    return NULL;
  }
  tb_tensor_t *cur = tb_tensor_retain((tb_tensor_t *)(uintptr_t)t);
  int32_t dim = 0; /* the dimension of cur that the next item applies to */
  for (Py_ssize_t k = 0; k < n; k++) {
    PyObject *item = items[k];
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
        return NULL;
      }
      st = tb_tensor_select(cur, dim, (int64_t)i, &next);
    }
    tb_tensor_release(cur);
    if (st != TB_OK) {
      tbpy_raise(st);
      return NULL;
    }
    cur = next;
  }
  return cur;
}

static PyObject *Tensor_subscript(PyObject *self, PyObject *key) {
  tb_tensor_t *v = index_view(TENSOR(self), key);
  return v != NULL ? tbpy_tensor_wrap(v) : NULL;
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
  if (st != TB_OK) return tbpy_raise(st); /* IndexError past the end: iteration stops */
  /* The sequence protocol (iteration, list(t), and the consumers that walk
   * nested sequences, as torch.tensor(t) does) gets a 1-d tensor's elements
   * as Python numbers, as tolist() gives them; t[i] stays a 0-d view. */
  if (tb_tensor_ndim(out) == 0 && tbpy_device_is_host(tb_tensor_device(out)) &&
      tb_tensor_data(out) != NULL) {
    PyObject *v = tbpy_scalar_to_py(tb_tensor_data(out), tb_tensor_dtype(out));
    tb_tensor_release(out);
    return v;
  }
  return tbpy_tensor_wrap(out);
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
  int is_scalar = tbpy_scalar_from_py(value, &v, &vt);
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

PyMappingMethods Tensor_as_mapping = {
    .mp_length = Tensor_length,
    .mp_subscript = Tensor_subscript,
    .mp_ass_subscript = Tensor_ass_subscript,
};

PySequenceMethods Tensor_as_sequence = {
    .sq_length = Tensor_length,
    .sq_item = Tensor_sq_item,
};
