"""Dtypes as Python users spell them, and the dtype objects tensors carry.

Every dtype argument of the package goes through parse(): the C side answers
canonical names itself and calls parse() for every other spelling.

The rule for the words that mean different things to different users: a
Python or NumPy spelling means what it means in Python and NumPy (the type
``float``, the string ``"float"``, ``"f8"`` and ``np.float64`` are all float64;
``int`` and ``"int"`` are int64; ``complex`` is complex128), and a torch
spelling means what it means in torch (``torch.float`` and ``"torch.float"``
are float32, ``torch.int`` is int32). Element types of tensors built from
Python numbers are another matter (``tensor([1.0])`` is float32, as in torch).
"""

from __future__ import annotations

import re
import sys

from . import _tensorbridge as _tb

_NAMES = frozenset(_tb._dtype_names())

# Python's types.
_PY_TYPES = {bool: "bool", int: "int64", float: "float64", complex: "complex128"}
# Words as NumPy (and C, for the unambiguous ones) use them.
_NUMPY_WORDS = {
    "float": "float64", "int": "int64", "complex": "complex128", "double": "float64",
    "single": "float32", "half": "float16", "long": "int64", "longlong": "int64",
    "short": "int16", "byte": "int8", "ubyte": "uint8", "ushort": "uint16", "uint": "uint64",
    "uintc": "uint32", "intc": "int32", "ulonglong": "uint64", "bool_": "bool",
    "float_": "float64", "int_": "int64", "intp": "int64", "uintp": "uint64",
    "csingle": "complex64", "cdouble": "complex128", "complex_": "complex128",
}
# torch's words (after "torch.").
_TORCH_WORDS = {
    "float": "float32", "double": "float64", "half": "float16", "int": "int32", "long": "int64",
    "short": "int16", "cfloat": "complex64", "cdouble": "complex128",
}
# NumPy's one-letter type codes (struct module letters where they agree).
_CODES = {
    "?": "bool", "b": "int8", "B": "uint8", "h": "int16", "H": "uint16", "i": "int32",
    "I": "uint32", "l": "int64", "L": "uint64", "q": "int64", "Q": "uint64", "e": "float16",
    "f": "float32", "d": "float64", "F": "complex64", "D": "complex128",
}
# Kind letter of a typestr ("<f4") and its names by byte count.
_KINDS = {"b": "bool", "i": "int", "u": "uint", "f": "float", "c": "complex"}
_TYPESTR = re.compile(r"^([<>=|!]?)([?a-zA-Z])(\d*)$")
_LITTLE = sys.byteorder == "little"


def _from_typestr(s: str) -> str | None:
    """The name a NumPy typestr or type code stands for, or None when s is not one."""
    m = _TYPESTR.match(s)
    if m is None:
        return None
    order, letter, size = m.groups()
    name: str | None
    if size:
        kind = _KINDS.get(letter)
        if kind == "bool":
            name = "bool" if size == "1" else None
        else:
            name = f"{kind}{int(size) * 8}" if kind is not None else None
    else:
        name = _CODES.get(letter)
    if name is None or name not in _NAMES:
        return None
    if order in (">", "!") if _LITTLE else order == "<":
        if name not in ("bool", "int8", "uint8"):
            raise TypeError(f"dtype {s!r}: byte order {'big' if _LITTLE else 'little'}-endian "
                            f"is not this machine's; convert the data first (NumPy: "
                            f"a.astype(a.dtype.newbyteorder('=')))")
    return name


def _from_text(s: str, torch_words: bool = False) -> str | None:
    if s in _NAMES:
        return s
    for prefix in ("torch.", "numpy.", "np.", "jax.numpy.", "jnp.", "tensorbridge.", "tb."):
        if s.startswith(prefix):
            rest = s[len(prefix):]
            if prefix == "torch." and rest in _TORCH_WORDS:
                return _TORCH_WORDS[rest]
            return _from_text(rest)
    if torch_words and s in _TORCH_WORDS:
        return _TORCH_WORDS[s]
    if s in _NUMPY_WORDS:
        return _NUMPY_WORDS[s]
    return _from_typestr(s)


def parse(obj) -> str:
    """The canonical name ("float32", ...) of any dtype spelling; TypeError otherwise."""
    if isinstance(obj, str):
        name = _from_text(obj)
    elif isinstance(obj, type):
        # Python's types, then NumPy's scalar types and ml_dtypes' (np.float32,
        # ml_dtypes.bfloat16) by their names.
        name = _PY_TYPES.get(obj) or _from_text(obj.__name__)
    elif type(obj).__module__.startswith("torch"):
        name = _from_text(str(obj), torch_words=True)  # str(torch.float) is "torch.float32"
    else:
        # numpy.dtype (whose .str carries the byte order), tf.DType and the
        # like (a .name), anything else by its str().
        text = getattr(obj, "str", None)
        name = _from_typestr(text) if isinstance(text, str) else None
        text = getattr(obj, "name", None)
        if name is None and isinstance(text, str):
            name = _from_text(text)
        if name is None:
            name = _from_text(str(obj))
    if name is None:
        raise TypeError(f"unknown dtype {obj!r}: give a name such as 'float32', a typestr such "
                        f"as '<f4', or a NumPy, torch or Python type")
    return name


class dtype(str):
    """A tensor's element type: its canonical name ("float32", "bfloat16", ...).

    A str, so it prints, hashes and compares as its name; it also compares
    equal to every other spelling of the same dtype: numpy.float32,
    numpy.dtype("float32"), "f4", torch.float32, Python's float for float64.
    As with numpy.dtype, only the canonical name shares its hash: as dict keys
    and in sets, use the dtype itself or its name, not the other spellings.
    """

    __slots__ = ()

    def __new__(cls, spelling):
        return _DTYPES[parse(spelling)]

    def __eq__(self, other):
        if isinstance(other, str) and str.__eq__(self, other):
            return True
        try:
            return str.__eq__(self, parse(other))
        except TypeError:
            return NotImplemented if not isinstance(other, str) else False

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = str.__hash__

    def __repr__(self):
        return f"tensorbridge.{str(self)}"

    @property
    def name(self) -> str:
        """The canonical name, as a plain str."""
        return str(self)

    @property
    def itemsize(self) -> int:
        """Bytes per element (0 for packed sub-byte dtypes)."""
        return _tb._dtype_itemsize(str(self))


_DTYPES = {name: str.__new__(dtype, name) for name in _NAMES}
