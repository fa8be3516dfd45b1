"""Constructors and conversions written in Python: tensor(obj) (as
torch.tensor), asarray(obj) (as the array API defines it), and the NumPy
arrays Tensor.__array__ hands out."""

from __future__ import annotations

import array
import numbers

from . import _dtypes
from . import _tensorbridge as _tb

Tensor = _tb.Tensor
from_dlpack = _tb.from_dlpack

# The dtype Python numbers get, as torch gives them.
_DEFAULT = {"bool": "bool", "int": "int64", "float": "float32", "complex": "complex64"}
# How the elements travel to the C side: (array typecode, dtype of the packed data).
_PACK = {"bool": ("B", "bool"), "int": ("q", "int64"), "float": ("d", "float64"),
         "complex": ("d", "complex128")}
_RANK = {"bool": 0, "int": 1, "float": 2, "complex": 3}
# Types that are never DLPack producers or buffers: tensor() goes straight to
# the sequence path for them.
_PLAIN = frozenset({list, tuple, float, int, bool, complex})


# The Python reference for _tb._from_sequence, which does the same in one C
# pass and leaves to this code what it does not reproduce exactly (ragged
# input, str and bytes, Tensors inside, list or tuple subclasses, too many
# levels, sequences changed while read), for which it returns NotImplemented.

# NumPy's dtype kinds (scalars and 0-d arrays carry a dtype).
_DTYPE_KIND = {"b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex"}


def _kind(x) -> str:
    """The kind of a Python (or NumPy) scalar: bool, int, float or complex.

    In order: bool; a NumPy scalar or 0-d array by its dtype's kind; the
    numbers ABCs (Integral, Real, Complex: NumPy registers its scalar types,
    fractions.Fraction is Real); then the conversion methods (__index__ on
    something that is not a sequence, __float__, __complex__).
    """
    if isinstance(x, bool):
        return "bool"
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if isinstance(kind, str) and kind in _DTYPE_KIND:
        return _DTYPE_KIND[kind]
    if isinstance(x, numbers.Integral) or (hasattr(x, "__index__") and not hasattr(x, "__len__")):
        return "int"
    if isinstance(x, numbers.Real):
        return "float"
    if isinstance(x, numbers.Complex):
        return "complex"
    if hasattr(x, "__float__"):
        return "float"
    if hasattr(x, "__complex__"):
        return "complex"
    raise TypeError(f"tensor(): cannot convert {type(x).__name__} to a number")


def _flatten(obj):
    """(shape, flat list of leaves) of nested sequences; ragged input is an error."""
    if isinstance(obj, (str, bytes)):
        raise TypeError(f"tensor(): {type(obj).__name__} is not numeric data")
    if isinstance(obj, Tensor):
        return tuple(obj.shape), [obj.tolist()] if obj.ndim == 0 else _flatten(obj.tolist())[1]
    if not isinstance(obj, (list, tuple)):
        return (), [obj]
    if len(obj) == 0:
        return (0,), []
    parts = [_flatten(x) for x in obj]
    inner = parts[0][0]
    for i, (shape, _) in enumerate(parts):
        if shape != inner:
            raise ValueError(f"tensor(): ragged nested sequence: element {i} has shape {shape}, "
                             f"element 0 has shape {inner}")
    return (len(obj),) + inner, [leaf for _, leaves in parts for leaf in leaves]


def _from_sequence(obj, dtype):
    out = _tb._from_sequence(obj, dtype)
    return out if out is not NotImplemented else _from_sequence_py(obj, dtype)


def _from_sequence_py(obj, dtype):
    shape, leaves = _flatten(obj)
    kinds = {_kind(x) for x in leaves}
    kind = max(kinds, key=_RANK.__getitem__) if kinds else "float"
    typecode, packed = _PACK[kind]
    if kind == "complex":
        values = [part for x in leaves for part in (complex(x).real, complex(x).imag)]
    elif kind == "bool":
        values = [1 if x else 0 for x in leaves]
    elif kind == "int":
        values = [int(x) for x in leaves]
    else:
        values = [float(x) for x in leaves]
    try:
        data = array.array(typecode, values)
    except OverflowError as e:
        raise OverflowError(f"tensor(): an integer does not fit in int64 ({e})") from None
    return _tb._new(data, packed, shape, dtype if dtype is not None else _DEFAULT[kind])


def _is_producer(obj) -> bool:
    if hasattr(type(obj), "__dlpack__"):
        return True
    try:
        memoryview(obj).release()
        return True
    except TypeError:
        return False


def tensor(obj, dtype=None, device=None) -> Tensor:
    """A new tensor holding a copy of obj's data (as torch.tensor).

    obj is a Tensor, any DLPack producer or buffer (NumPy, PyTorch, JAX, ...), a
    Python number or nested sequences of numbers. Python ints give int64, floats
    float32, complex numbers complex64, bools bool; arrays keep their dtype
    unless dtype says otherwise. The result never shares memory with obj.
    """
    dt = _tb._dtype_name(dtype) if dtype is not None else None
    if type(obj) not in _PLAIN and (isinstance(obj, Tensor) or _is_producer(obj)):
        src = obj if isinstance(obj, Tensor) else from_dlpack(obj)
        return src.to(device, dt, copy=True)
    out = _from_sequence(obj, dt)
    if device is not None:
        out = out.to(device)
    return out


def asarray(obj, dtype=None, device=None, copy=None) -> Tensor:
    """obj as a Tensor, as the array API's asarray: shared when it can be.

    obj is a Tensor, a DLPack producer or capsule, a buffer, a Python number or
    nested sequences. copy=None shares obj's memory when no conversion is
    needed and copies otherwise; copy=True always copies; copy=False never
    copies and raises ValueError when a copy would be needed (a dtype or
    device change, Python data). Memory shared with a legacy DLPack producer
    is read-only (see from_dlpack).
    """
    if copy not in (None, True, False):
        raise ValueError(f"asarray: copy must be True, False or None, not {copy!r}")
    dt = _tb._dtype_name(dtype) if dtype is not None else None
    if isinstance(obj, Tensor):
        src = obj
    elif _extension_dtype_name(obj) is not None:
        src = from_extension_ndarray(obj)
    elif type(obj) not in _PLAIN and (_is_capsule(obj) or _is_producer(obj)):
        src = from_dlpack(obj, copy=False if copy is False else None)
    else:
        if copy is False:
            raise ValueError(f"asarray: copy=False, but {type(obj).__name__} data must be copied "
                             "into a new tensor")
        return tensor(obj, dt, device)
    changes = []
    if dt is not None and dt != src.dtype:
        changes.append(f"dtype {src.dtype} -> {dt}")
    if device is not None and _tb._device_differs(src, device):
        changes.append(f"device {src.device} -> {device}")
    if copy is False and changes:
        raise ValueError(f"asarray: copy=False, but {' and '.join(changes)} needs a copy")
    if copy or changes:
        return src.to(device, dt, copy=True)
    return src


def _extension_dtype_name(obj):
    """The dtype name of a NumPy array of an ml_dtypes dtype (bfloat16, float8,
    ...), which NumPy can export neither over DLPack nor as a buffer; else None."""
    dt = getattr(obj, "dtype", None)
    # ml_dtypes registers its dtypes with NumPy as user dtypes (num >= 256).
    if not isinstance(getattr(dt, "num", None), int) or dt.num < 256:
        return None
    name = getattr(dt, "name", None)
    if name not in _dtypes._DTYPES or not hasattr(obj, "view") or not hasattr(obj, "flags"):
        return None
    return name


def from_extension_ndarray(a):
    """A Tensor sharing an ml_dtypes NumPy array: its bytes as unsigned integers
    of the same size, viewed as the dtype (what NumPy itself cannot export)."""
    name = _extension_dtype_name(a)
    raw = a.view(f"u{a.dtype.itemsize}")
    return from_dlpack(raw, copy=False, legacy_writable=a.flags.writeable).view(name)


def _refused(obj, device=None, copy=None):
    """from_dlpack's last resort after a producer refused: an ml_dtypes array
    shared through from_extension_ndarray (then copied or moved as device and
    copy ask), else None (the refusal stands)."""
    if _extension_dtype_name(obj) is None:
        return None
    t = from_extension_ndarray(obj)
    moves = device is not None and _tb._device_differs(t, device)
    if copy is False and moves:
        raise BufferError(f"from_dlpack: the array is on {t.device}; another device needs a "
                          "copy, and copy=False")
    return t.to(device, copy=True) if copy or moves else t


def _is_capsule(obj) -> bool:
    return type(obj).__name__ == "PyCapsule"


# ---- Tensor.__array__ ----

# NumPy dtypes for the dtypes NumPy lacks, from ml_dtypes, looked up once.
_ml_dtypes = None


def _numpy_extension_dtype(name):
    global _ml_dtypes
    if _ml_dtypes is None:
        try:
            import ml_dtypes
        except ImportError:
            _ml_dtypes = False
        else:
            _ml_dtypes = ml_dtypes
    return getattr(_ml_dtypes, name, None) if _ml_dtypes else None


_UINT_OF_SIZE = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}


def _shared_ndarray(t, np):
    """A NumPy array over t's memory (a host tensor), read-only when t is."""
    if _tb._has_buffer_format(t):
        return np.asarray(memoryview(t))
    name = str(t.dtype)
    if t.itemsize == 0:
        raise TypeError(f"__array__: {name} is packed (several elements per byte), and NumPy "
                        f"has no packed arrays: unpack it first")
    ext = _numpy_extension_dtype(name)
    if ext is None:
        hint = ("install ml_dtypes (pip install ml_dtypes) for NumPy's " + name + " dtype, or "
                if _ml_dtypes is False else "")
        raise TypeError(f"__array__: NumPy has no {name} dtype: {hint}convert first, e.g. "
                        f"t.astype('float32')")
    raw = t.view(_UINT_OF_SIZE[t.itemsize])
    return np.asarray(memoryview(raw)).view(ext)


def _array(t, dtype=None, copy=None):
    """Tensor.__array__(dtype=None, copy=None), with NumPy 2's meaning of copy."""
    import numpy as np
    if copy not in (None, True, False):
        raise ValueError(f"__array__: copy must be True, False or None, not {copy!r}")
    if not _tb._is_host(t):
        raise TypeError(f"__array__: the tensor is on {t.device}, and NumPy arrays live in host "
                        "memory: copy it with t.cpu() first")
    a = _shared_ndarray(t, np)
    if dtype is not None and np.dtype(dtype) != a.dtype:
        if copy is False:
            raise ValueError(f"__array__: copy=False, but {t.dtype} -> {np.dtype(dtype)} needs a "
                             "copy")
        return a.astype(dtype)
    return a.copy() if copy else a
