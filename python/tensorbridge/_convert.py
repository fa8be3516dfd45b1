"""Copying constructors: tensor(obj) (as torch.tensor) and Tensor(data)."""

from __future__ import annotations

import array
import numbers

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
