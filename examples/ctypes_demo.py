#!/usr/bin/env python3
"""libtensorbridge from Python's ctypes alone: no extension module, no NumPy.

Wraps a ctypes buffer with tb_from_array (sharing it), makes a reversed view,
exports the view over DLPack, reads the DLTensor through a ctypes structure,
imports it back and releases everything, counting deleter calls.

    python3 examples/ctypes_demo.py [path/to/libtensorbridge.so]

Without an argument the library is looked up in $TENSORBRIDGE_LIB, then in the
usual build folders (build/, build-python/lib/), then by ctypes.util.
"""

import ctypes
import ctypes.util
import os
import pathlib
import sys

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
TB_OK = 0
KDL_CPU, KDL_FLOAT = 1, 2


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]

# void (*tb_deleter_fn)(void *data, void *ctx)
TB_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


def find_library(argv):
    candidates = argv[1:2] + [os.environ.get("TENSORBRIDGE_LIB", "")]
    root = pathlib.Path(__file__).resolve().parent.parent
    for folder in ("build/src", "build-python/lib/src"):
        candidates += sorted(str(p) for p in (root / folder).glob("libtensorbridge.so*"))
    candidates.append(ctypes.util.find_library("tensorbridge") or "")
    for path in candidates:
        if path and os.path.exists(path):
            return path
    sys.exit("ctypes_demo: libtensorbridge.so not found; build it (meson setup build && "
             "ninja -C build) or pass its path")


def bind(lib):
    """Declares the prototypes this demo uses (tensors travel as void *)."""
    T, P = ctypes.c_void_p, ctypes.POINTER
    sigs = {
        "tb_version": (ctypes.c_char_p, []),
        "tb_last_error": (ctypes.c_char_p, []),
        "tb_dtype_from_name": (ctypes.c_int, [ctypes.c_char_p, P(DLDataType)]),
        "tb_from_array": (ctypes.c_int, [T, ctypes.c_uint64, DLDataType, ctypes.c_int32,
                                         P(ctypes.c_int64), P(ctypes.c_int64), DLDevice,
                                         ctypes.c_uint32, TB_DELETER, T, P(T)]),
        "tb_tensor_slice": (ctypes.c_int, [T, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64,
                                           ctypes.c_int64, P(T)]),
        "tb_tensor_data": (T, [T]),
        "tb_tensor_release": (None, [T]),
        "tb_to_dlpack_versioned": (ctypes.c_int, [T, T, P(P(DLManagedTensorVersioned))]),
        "tb_from_dlpack_versioned": (ctypes.c_int, [P(DLManagedTensorVersioned), T, P(T)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def check(lib, status, what):
    if status != TB_OK:
        raise RuntimeError(f"{what} failed ({status}): {lib.tb_last_error().decode()}")


def main(argv):
    path = find_library(argv)
    lib = bind(ctypes.CDLL(path))
    print(f"libtensorbridge {lib.tb_version().decode()} from {path}")

    # 1. Share a ctypes buffer (3 x 4 float64) with the library.
    data = (ctypes.c_double * 12)(*range(12))
    shape = (ctypes.c_int64 * 2)(3, 4)
    deleted = []
    on_delete = TB_DELETER(lambda ptr, ctx: deleted.append(ptr))  # kept alive below
    f64 = DLDataType()
    check(lib, lib.tb_dtype_from_name(b"float64", ctypes.byref(f64)), "tb_dtype_from_name")
    t = ctypes.c_void_p()
    check(lib, lib.tb_from_array(ctypes.addressof(data), 0, f64, 2, shape, None,
                                 DLDevice(KDL_CPU, 0), 0, on_delete, None, ctypes.byref(t)),
          "tb_from_array")
    print(f"shared:   tb_tensor_data == buffer: {lib.tb_tensor_data(t) == ctypes.addressof(data)}")

    # 2. A view: every row, columns reversed (x[:, ::-1]).
    view = ctypes.c_void_p()
    check(lib, lib.tb_tensor_slice(t, 1, INT64_MAX, INT64_MIN, -1, ctypes.byref(view)),
          "tb_tensor_slice")

    # 3. Export the view over DLPack and read the DLTensor with ctypes.
    managed = ctypes.POINTER(DLManagedTensorVersioned)()
    check(lib, lib.tb_to_dlpack_versioned(view, None, ctypes.byref(managed)),
          "tb_to_dlpack_versioned")
    m = managed.contents
    dl = m.dl_tensor
    first = (dl.data - ctypes.addressof(data)) // 8
    print(f"exported: DLPack {m.version.major}.{m.version.minor}, flags {m.flags}, "
          f"ndim {dl.ndim}, dtype ({dl.dtype.code}, {dl.dtype.bits}, {dl.dtype.lanes}), "
          f"device ({dl.device.device_type}, {dl.device.device_id})")
    print(f"          shape {[dl.shape[i] for i in range(dl.ndim)]}, "
          f"strides {[dl.strides[i] for i in range(dl.ndim)]} (elements), "
          f"data = buffer + {first} elements, byte_offset {dl.byte_offset}")
    row0 = [data[first + j * dl.strides[1]] for j in range(dl.shape[1])]
    print(f"          row 0 read through the DLTensor: {row0}")

    # 4. Import it back (the library takes ownership of `managed`).
    back = ctypes.c_void_p()
    check(lib, lib.tb_from_dlpack_versioned(managed, None, ctypes.byref(back)),
          "tb_from_dlpack_versioned")
    data[3] = 100.0  # a write to the buffer is seen through every handle
    seen = ctypes.cast(lib.tb_tensor_data(back), ctypes.POINTER(ctypes.c_double))[0]
    print(f"imported: back[0, 0] after buffer[3] = 100: {seen}")

    # 5. Release everything: the buffer's deleter runs once, at the last release.
    lib.tb_tensor_release(t)
    lib.tb_tensor_release(view)
    print(f"released t and view: deleter calls = {len(deleted)}")
    lib.tb_tensor_release(back)
    print(f"released back:       deleter calls = {len(deleted)}")
    return 0 if len(deleted) == 1 and seen == 100.0 and row0 == [3.0, 2.0, 1.0, 0.0] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
