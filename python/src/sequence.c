/*
 * tensor(nested sequences) in one C pass: the shape, the kinds of the leaves
 * and the packed elements of nested lists and tuples of Python numbers, or
 * NotImplemented where _convert.py's Python code is to decide.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tbpy.h"

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

PyObject *tbpy_seq_to_tensor(PyObject *obj, const DLDataType *dtype) {
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
  if (tb_dtype_equal(target, packed)) return tbpy_tensor_wrap(data);
  tb_tensor_t *out;
  st = tb_tensor_copy(data, &target, TB_ORDER_C, 0, &out);
  tb_tensor_release(data);
  return tbpy_tensor_result(st, &out);
}
