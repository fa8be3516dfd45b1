/*
 * The internal header of tensorbridge._tensorbridge: what the files of
 * python/src/ share (module.c describes the parts). Every .c file includes
 * it first, for PY_SSIZE_T_CLEAN. Nothing declared here leaves the module:
 * it is built with hidden visibility, and only PyInit__tensorbridge is
 * exported.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TBPY_H
#define TBPY_H

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
static inline PyObject *tbpy_type_attr(PyTypeObject *type, PyObject *name) {
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
static inline bool tbpy_version_tag_valid(PyTypeObject *type) { return type->tp_version_tag != 0; }

/* ------------------------------------------------------------------------ */
/* Module globals (module.c, set by PyInit__tensorbridge)                   */
/* ------------------------------------------------------------------------ */

/* Keyword names tbpy_parse_args knows: kw_str[KW_*] is the interned name. */
enum {
  KW_STREAM,
  KW_MAX_VERSION,
  KW_DL_DEVICE,
  KW_COPY,
  KW_DEVICE,
  KW_DTYPE,
  KW_LEGACY_WRITABLE,
  KW_COUNT
};
extern PyObject *kw_str[KW_COUNT];

extern PyObject *s_dlpack;            /* "__dlpack__" */
extern PyObject *s_exchange_capsule;  /* "__dlpack_c_exchange_api__" (1.3, a capsule) */
extern PyObject *s_exchange_int;      /* "__c_dlpack_exchange_api__" (1.2, an int) */
extern PyObject *s_max_version_value; /* (1, 3) */
/* kwnames for obj.__dlpack__(max_version=..[, dl_device=..][, copy=..]) */
extern PyObject *s_kwnames[4];

/* ------------------------------------------------------------------------ */
/* Tensor objects (tensor.c)                                                */
/* ------------------------------------------------------------------------ */

extern PyTypeObject Tensor_Type;

typedef struct {
  PyObject_HEAD
  tb_tensor_t *t;
  /* The tensor t replaced, when share_memory_() moved this object into
   * shared memory: kept until the object goes, because buffers exported
   * before, and C code running with the old t borrowed, may still use it. */
  tb_tensor_t *retired;
} TensorObject;

#define Tensor_Check(op) Py_IS_TYPE((op), &Tensor_Type)
#define TENSOR(op) (((TensorObject *)(op))->t)

/* A Tensor owning t (steals the reference, also on failure). */
PyObject *tbpy_tensor_wrap(tb_tensor_t *t);

/* tbpy_tensor_wrap for a status-returning call: raises on failure. Takes the
 * output's address so that it is read only after the call has written it. */
PyObject *tbpy_tensor_result(tb_status st, tb_tensor_t *const *out);

/* ------------------------------------------------------------------------ */
/* Errors, devices, dtypes, scalars, arguments (convert.c)                  */
/* ------------------------------------------------------------------------ */

/* The name of the exception tbpy_raise raises for st ("ValueError", ...). */
const char *tbpy_exception_name(tb_status st);

/* arg's tensor, or NULL with "fname: expected a tensorbridge.Tensor, got T"
 * (TypeError) when arg is not a Tensor. */
const tb_tensor_t *tbpy_tensor_arg(const char *fname, PyObject *arg);
/* Raises the library's last error with the exception its status maps to. */
PyObject *tbpy_raise(tb_status st);

/* The same in a DLPack or buffer-protocol exchange: BufferError, the
 * standard's exception for data that cannot be exchanged. */
PyObject *tbpy_raise_buffer(tb_status st);

/* Whether the CPU can dereference memory on device d. */
bool tbpy_device_is_host(DLDevice d);

/* Whether a and b are the same device (type and id). */
bool tbpy_device_equal(DLDevice a, DLDevice b);

/* "cpu" for the CPU, "name:id" for other devices. */
PyObject *tbpy_device_str(DLDevice d);

/* Parses "cpu", "cuda", "cuda:1", (device_type, device_id), or any object
 * whose str() is one of those (torch.device). Returns 0 or -1 (ValueError or
 * TypeError set). */
int tbpy_device_from_py(PyObject *obj, DLDevice *out);

/* Hooks the package registers at import (tensorbridge/__init__.py calls
 * _register): the parser of dtype spellings (_dtypes.parse: any spelling ->
 * canonical name), the dtype objects by canonical name (_dtypes._DTYPES),
 * the function behind Tensor.__array__ (_convert._array), and the one
 * from_dlpack asks when a producer refused and its buffer cannot stand in
 * (_convert._refused: a Tensor, or None to let the refusal stand). NULL
 * until then. */
extern PyObject *tbpy_dtype_parse;
extern PyObject *tbpy_dtype_objects;
extern PyObject *tbpy_array_hook;
extern PyObject *tbpy_refused_hook;
/* Parses a dtype: a canonical name ("float32") here, every other spelling
 * through tbpy_dtype_parse. Returns 0 or -1 (TypeError set). */
int tbpy_dtype_from_py(PyObject *obj, DLDataType *out);

/* The dtype object of the dtype (a str subclass; a plain str before the
 * package registered its objects), or dtype(code=.., bits=.., lanes=..) for
 * one without a name. */
PyObject *tbpy_dtype_str(DLDataType dt);

/* The struct-module format of a dtype, or NULL when it has none. */
const char *tbpy_buffer_format(DLDataType dt);

/* The dtype of a buffer-protocol format ("<f", "q", "Zd", "?"), sized by
 * itemsize. Returns false for formats DLPack cannot describe. */
bool tbpy_dtype_from_format(const char *fmt, Py_ssize_t itemsize, DLDataType *out);

/* One element as a Python object. */
PyObject *tbpy_scalar_to_py(const char *p, DLDataType dt);

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

int tbpy_scalar_from_py(PyObject *v, scalar_value *out, DLDataType *dt);

/*
 * Argument parsing for METH_FASTCALL | METH_KEYWORDS.
 * params[i] is a KW_* id, or -1 for a positional-only parameter. The first
 * npos parameters may be given by position; the rest only by keyword. out[i]
 * receives a borrowed reference or stays NULL when not given.
 */
int tbpy_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, const int *params, Py_ssize_t nparams, Py_ssize_t npos,
                    Py_ssize_t nrequired, PyObject **out);

/* copy=None/True/False as a tb_copy_mode. */
int tbpy_copy_mode_from_py(PyObject *obj, tb_copy_mode *out);

/* Integers from *args or from one sequence argument: t.reshape(2, 3) or
 * t.reshape((2, 3)). */
int tbpy_int64s_from_args(PyObject *args, int64_t *out, int32_t *n);

/* ------------------------------------------------------------------------ */
/* Indexing (index.c): the Tensor type's mapping and sequence slots         */
/* ------------------------------------------------------------------------ */

extern PyMappingMethods Tensor_as_mapping;
extern PySequenceMethods Tensor_as_sequence;

/* ------------------------------------------------------------------------ */
/* DLPack (dlpack.c)                                                        */
/* ------------------------------------------------------------------------ */

/* Shared memory (io.c): Tensor.share_memory_() and is_shared(), and the
 * module functions _shm_handle(t) -> (bytes, fd) and _shm_attach(bytes, fd). */
PyObject *tbpy_Tensor_share_memory(PyObject *self, PyObject *unused);
PyObject *tbpy_Tensor_is_shared(PyObject *self, PyObject *unused);
PyObject *tbpy_shm_handle(PyObject *module, PyObject *arg);
PyObject *tbpy_shm_attach(PyObject *module, PyObject *args);
/* Files (io.c): _npy_load(path, mode), _npy_save(path, t),
 * _safetensors_load(path), _safetensors_save(path, names, tensors, keys,
 * values). */
PyObject *tbpy_npy_load(PyObject *module, PyObject *args);
PyObject *tbpy_npy_save(PyObject *module, PyObject *args);
PyObject *tbpy_safetensors_load(PyObject *module, PyObject *arg);
PyObject *tbpy_safetensors_save(PyObject *module, PyObject *args);

/* _exchange_calls(): {table function name: calls so far}. */
PyObject *tbpy_exchange_calls(PyObject *module, PyObject *unused);
/* __dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None) */
PyObject *tbpy_Tensor_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames);

/* __dlpack_device__(): (device_type, device_id) as DLPack numbers them. */
PyObject *tbpy_Tensor_dlpack_device(PyObject *self, PyObject *unused);

/* from_dlpack(x, /, *, device=None, copy=None) */
PyObject *tbpy_from_dlpack(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames);

/* A new capsule ("dlpack_exchange_api") of the exchange table this module
 * publishes, for the Tensor type's __dlpack_c_exchange_api__. */
PyObject *tbpy_exchange_capsule(void);

/* ------------------------------------------------------------------------ */
/* tensor(nested sequences) (sequence.c)                                    */
/* ------------------------------------------------------------------------ */

/* A tensor of obj's numbers (dtype NULL: the kind's default), NotImplemented
 * for the Python code to handle, or NULL with an exception. */
PyObject *tbpy_seq_to_tensor(PyObject *obj, const DLDataType *dtype);

#endif /* TBPY_H */
