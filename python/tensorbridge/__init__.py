"""tensorbridge: zero-copy interchange between ndarrays and tensors.

Share memory with any DLPack producer or buffer (``from_dlpack``,
``from_numpy``, ``asarray``), copy with conversion (``tensor``, ``Tensor``),
make views by indexing, and hand tensors to NumPy, PyTorch, JAX or
TensorFlow without copying (``numpy.from_dlpack(t)``, ``torch.from_dlpack(t)``,
``numpy.asarray(t)``, ``tf.convert_to_tensor(t)``).

Dtype arguments take names ("float32"), typestrs ("<f4"), NumPy, torch and
Python types; a Python or NumPy spelling means what it means there (``float``
is float64), a torch spelling what it means in torch (``torch.float`` is
float32). ``Tensor.dtype`` is a :class:`dtype`, a str that compares equal to
every spelling of itself.
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING

from . import _convert, _dtypes, _shared
from . import _tensorbridge as _tb
from ._convert import asarray as asarray, tensor as tensor
from ._dtypes import dtype as dtype
from ._files import load as load, load_safetensors as load_safetensors, save as save
from ._files import save_safetensors as save_safetensors
from ._tensorbridge import Tensor as Tensor, from_dlpack as from_dlpack
from ._tensorbridge import get_num_threads as get_num_threads, is_available as is_available
from ._tensorbridge import set_num_threads as set_num_threads

_tb._register(_dtypes.parse, _dtypes._DTYPES, _convert._array, _convert._refused)
_shared.register()  # tensors in shared memory travel through multiprocessing by handle

# One module attribute per dtype, as torch and NumPy have them: tb.float32, ...
globals().update(_dtypes._DTYPES)
if TYPE_CHECKING:  # the same names, for type checkers (a test keeps the two lists equal)
    bfloat16: dtype
    bool: dtype
    complex128: dtype
    complex64: dtype
    float16: dtype
    float32: dtype
    float4_e2m1fn: dtype
    float64: dtype
    float6_e2m3fn: dtype
    float6_e3m2fn: dtype
    float8_e3m4: dtype
    float8_e4m3: dtype
    float8_e4m3b11fnuz: dtype
    float8_e4m3fn: dtype
    float8_e4m3fnuz: dtype
    float8_e5m2: dtype
    float8_e5m2fnuz: dtype
    float8_e8m0fnu: dtype
    int16: dtype
    int32: dtype
    int64: dtype
    int8: dtype
    uint16: dtype
    uint32: dtype
    uint64: dtype
    uint8: dtype

__version__: str = _tb.library_version
__all__ = ["Tensor", "asarray", "dtype", "from_dlpack", "from_numpy", "tensor", "is_available",
           "set_num_threads", "get_num_threads", "load", "save", "load_safetensors",
           "save_safetensors", "cdef", "cdef_path"]
# The dtypes too, but not "bool": `from tensorbridge import *` must not
# replace the builtin (tb.bool stays).
__all__ += sorted(n for n in _dtypes._DTYPES if n != "bool")


# Types already found to be numpy.ndarray or a subclass of it.
_ndarray_types: set = set()


def from_numpy(a) -> Tensor:
    """A Tensor sharing the memory of a NumPy array (as torch.from_numpy).

    Writes through either side are seen by the other; a read-only array gives a
    read-only tensor. Only NumPy arrays are accepted (TypeError otherwise).
    """
    cls = type(a)
    if cls not in _ndarray_types:
        if not any(c.__name__ == "ndarray" and c.__module__ == "numpy" for c in cls.__mro__):
            raise TypeError(
                f"from_numpy: expected a numpy.ndarray, got {cls.__module__}.{cls.__name__}")
        _ndarray_types.add(cls)  # the MRO scan once per type, not once per call
    if _convert._extension_dtype_name(a) is not None:  # bfloat16, float8 from ml_dtypes
        return _convert.from_extension_ndarray(a)
    # NumPy 1.x exports legacy capsules, which carry no read-only bit: the
    # array's own flag says whether the tensor may write.
    return from_dlpack(a, copy=False, legacy_writable=a.flags.writeable)


def cdef_path() -> str:
    """The path of tensorbridge.cdef in this package: libtensorbridge's C API
    as plain C declarations (no includes, macros or attributes; constants as
    enum values), generated from the C headers by the build.

    For cffi in ABI mode, no compiler needed::

        ffi = cffi.FFI()
        ffi.cdef(tensorbridge.cdef())
        lib = ffi.dlopen("libtensorbridge.so")

    It describes the C library of this package's version (this package links
    the library statically and ships no libtensorbridge.so: load the one of a
    C install or build; a C install has the same file as
    <prefix>/share/tensorbridge/tensorbridge.cdef). FileNotFoundError when
    the package was not built (a source tree on sys.path).
    """
    # Beside this file in an installed package; beside the extension module
    # in an editable install, whose generated files stay in the build folder.
    path = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "tensorbridge.cdef")
    if not _os.path.isfile(path):
        built = _os.path.join(_os.path.dirname(_os.path.abspath(_tb.__file__)),
                              "tensorbridge.cdef")
        path = built if _os.path.isfile(built) else path
    if not _os.path.isfile(path):
        raise FileNotFoundError(2, "tensorbridge.cdef is not in this package: the build "
                                "generates it (pip install ., or meson)", path)
    return path


def cdef() -> str:
    """The text of tensorbridge.cdef (see cdef_path()), for cffi's
    ``ffi.cdef(tensorbridge.cdef())``."""
    with open(cdef_path(), encoding="utf-8") as f:
        return f.read()
