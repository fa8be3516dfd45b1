"""Tensors in files, mapped rather than read: .npy (load/save) and
safetensors (load_safetensors/save_safetensors)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import _tensorbridge as _tb
from ._convert import asarray

# numpy.load's mmap_mode, as tb_map_mode.
_MODES = {"r": 0, "c": 1, "r+": 2}


def load(path: str | os.PathLike, mmap_mode: str | None = "r") -> _tb.Tensor:
    """A tensor over a .npy file (format 1.0, 2.0 or 3.0), mapped, not read.

    mmap_mode is numpy.load's: "r" (the default) shares the page cache
    read-only, and the tensor is read-only; "c" is copy-on-write (writes stay
    in this process); "r+" writes through to the file. None reads the file
    into fresh memory (a copy, as numpy.load without mmap_mode). Opening costs
    the same whatever the file's size. fortran_order files give F-ordered
    tensors. The file is unmapped when the last tensor or view over it goes.
    Errors: OSError (the file cannot be opened or mapped), ValueError (a
    malformed file), TypeError (a dtype tensorbridge cannot hold).
    """
    if mmap_mode is None:
        return _tb._npy_load(path, 0).copy()
    mode = _MODES.get(mmap_mode) if isinstance(mmap_mode, str) else None
    if mode is None:
        raise ValueError(f"load: mmap_mode must be 'r', 'c', 'r+' or None, not {mmap_mode!r}")
    return _tb._npy_load(path, mode)


def save(path: str | os.PathLike, tensor) -> None:
    """Writes tensor (anything asarray takes) as a .npy file NumPy reads.

    Any layout: the elements are written in C order, a strided tensor through
    a bounded buffer rather than a whole contiguous copy. numpy.save's
    habit of adding ".npy" to the name is not followed: path is the file.
    """
    _tb._npy_save(path, asarray(tensor))


class SafetensorsDict(dict):
    """What load_safetensors returns: name -> read-only Tensor, in the file's
    order, with the file's "__metadata__" as .metadata (a dict of str)."""

    metadata: dict

    def __init__(self, items, metadata):
        super().__init__(items)
        self.metadata = metadata


def load_safetensors(path: str | os.PathLike) -> SafetensorsDict:
    """Every tensor of a safetensors file, each a read-only view of one
    mapping of the file (no data is read or copied; opening costs the same
    whatever the file's size). The mapping lives while any of them does.
    Errors: OSError (the file cannot be opened or mapped), ValueError (a
    malformed header: its message says what is wrong), TypeError (an
    unknown dtype)."""
    entries, metadata = _tb._safetensors_load(path)
    return SafetensorsDict(entries, metadata)


def save_safetensors(path: str | os.PathLike, tensors: Mapping, metadata: Mapping | None = None
                     ) -> None:
    """Writes tensors (name -> anything asarray takes) as a safetensors file
    that the safetensors package reads back equal, with metadata (str -> str)
    as its "__metadata__". The file appears whole or not at all (written
    under a temporary name, then renamed)."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_safetensors: tensors must be a mapping of name -> tensor, not "
                        f"{type(tensors).__name__}")
    names, values = [], []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_safetensors: a tensor's name must be a str, not {name!r}")
        names.append(name)
        values.append(asarray(value))
    keys, texts = [], []
    for key, text in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise TypeError(f"save_safetensors: metadata must map str to str, not {key!r}: "
                            f"{text!r}")
        keys.append(key)
        texts.append(text)
    _tb._safetensors_save(path, names, values, keys, texts)
