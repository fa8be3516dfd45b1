"""tensorbridge: zero-copy interchange between ndarrays and tensors.

Share memory with any DLPack producer or buffer (``from_dlpack``,
``from_numpy``), copy with conversion (``tensor``, ``Tensor``), make views by
indexing, and hand tensors to NumPy, PyTorch or JAX without copying
(``numpy.from_dlpack(t)``, ``torch.from_dlpack(t)``, ``numpy.asarray(t)``).
"""

from __future__ import annotations

from . import _tensorbridge as _tb
from ._convert import tensor

Tensor = _tb.Tensor
from_dlpack = _tb.from_dlpack
is_available = _tb.is_available
set_num_threads = _tb.set_num_threads
get_num_threads = _tb.get_num_threads

__version__ = _tb.library_version
__all__ = ["Tensor", "from_dlpack", "from_numpy", "tensor", "is_available", "set_num_threads",
           "get_num_threads"]


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
    return from_dlpack(a, copy=False)

