"""The C ABI through ctypes alone: the shared library, no extension module."""

import ctypes
import os
import pathlib
import subprocess
import sys

import pytest

from dlpack_ctypes import DLDataType, DLDevice, DLManagedTensorVersioned

ROOT = pathlib.Path(__file__).resolve().parents[2]
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
TB_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)



@pytest.fixture(scope="module")
def lib(library_path):
    lib = ctypes.CDLL(library_path)
    T, P = ctypes.c_void_p, ctypes.POINTER
    sigs = {
        "tb_version": (ctypes.c_char_p, []),
        "tb_last_error": (ctypes.c_char_p, []),
        "tb_status_name": (ctypes.c_char_p, [ctypes.c_int]),
        "tb_dtype_from_name": (ctypes.c_int, [ctypes.c_char_p, P(DLDataType)]),
        "tb_from_array": (ctypes.c_int, [T, ctypes.c_uint64, DLDataType, ctypes.c_int32,
                                         P(ctypes.c_int64), P(ctypes.c_int64), DLDevice,
                                         ctypes.c_uint32, TB_DELETER, T, P(T)]),
        "tb_tensor_slice": (ctypes.c_int, [T, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64,
                                           ctypes.c_int64, P(T)]),
        "tb_tensor_transpose": (ctypes.c_int, [T, ctypes.c_int32, ctypes.c_int32, P(T)]),
        "tb_tensor_ndim": (ctypes.c_int32, [T]),
        "tb_tensor_shape": (P(ctypes.c_int64), [T]),
        "tb_tensor_strides": (P(ctypes.c_int64), [T]),
        "tb_tensor_dtype_p": (None, [T, P(DLDataType)]),
        "tb_tensor_device_p": (None, [T, P(DLDevice)]),
        "tb_tensor_data": (T, [T]),
        "tb_tensor_is_readonly": (ctypes.c_bool, [T]),
        "tb_tensor_release": (None, [T]),
        "tb_to_dlpack_versioned": (ctypes.c_int, [T, T, P(P(DLManagedTensorVersioned))]),
        "tb_from_dlpack_versioned": (ctypes.c_int, [P(DLManagedTensorVersioned), T, P(T)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def ok(lib, status):
    assert status == 0, lib.tb_last_error().decode()


def test_share_view_export_import_release(lib):
    data = (ctypes.c_float * 6)(0, 1, 2, 3, 4, 5)
    shape = (ctypes.c_int64 * 2)(2, 3)
    calls = []
    deleter = TB_DELETER(lambda ptr, ctx: calls.append((ptr, ctx)))
    f32 = DLDataType()
    ok(lib, lib.tb_dtype_from_name(b"float32", ctypes.byref(f32)))
    assert (f32.code, f32.bits, f32.lanes) == (2, 32, 1)

    t = ctypes.c_void_p()
    ok(lib, lib.tb_from_array(ctypes.addressof(data), 0, f32, 2, shape, None, DLDevice(1, 0), 0,
                              deleter, 1234, ctypes.byref(t)))
    assert lib.tb_tensor_data(t) == ctypes.addressof(data)

    # A view: the transpose of rows reversed (x[::-1].T).
    rev, view = ctypes.c_void_p(), ctypes.c_void_p()
    ok(lib, lib.tb_tensor_slice(t, 0, INT64_MAX, INT64_MIN, -1, ctypes.byref(rev)))
    ok(lib, lib.tb_tensor_transpose(rev, 0, 1, ctypes.byref(view)))
    lib.tb_tensor_release(rev)
    assert [lib.tb_tensor_shape(view)[i] for i in range(2)] == [3, 2]
    assert [lib.tb_tensor_strides(view)[i] for i in range(2)] == [1, -3]
    dt, dev = DLDataType(), DLDevice()
    lib.tb_tensor_dtype_p(view, ctypes.byref(dt))
    lib.tb_tensor_device_p(view, ctypes.byref(dev))
    assert (dt.code, dt.bits, dev.device_type, dev.device_id) == (2, 32, 1, 0)

    # Export, and read every DLTensor field through ctypes.
    managed = ctypes.POINTER(DLManagedTensorVersioned)()
    ok(lib, lib.tb_to_dlpack_versioned(view, None, ctypes.byref(managed)))
    m = managed.contents
    assert (m.version.major, m.version.minor) == (1, 3) and m.flags == 0
    dl = m.dl_tensor
    assert dl.data == ctypes.addressof(data) + 3 * 4  # element (1, 0) of the buffer
    assert dl.byte_offset == 0 and dl.ndim == 2
    assert (dl.device.device_type, dl.device.device_id) == (1, 0)
    assert (dl.dtype.code, dl.dtype.bits, dl.dtype.lanes) == (2, 32, 1)
    assert [dl.shape[i] for i in range(2)] == [3, 2]
    assert [dl.strides[i] for i in range(2)] == [1, -3]
    elems = ctypes.cast(dl.data, ctypes.POINTER(ctypes.c_float))
    assert [[elems[i * dl.strides[0] + j * dl.strides[1]] for j in range(2)]
            for i in range(3)] == [[3, 0], [4, 1], [5, 2]]

    # Import back: the library now owns `managed`.
    back = ctypes.c_void_p()
    ok(lib, lib.tb_from_dlpack_versioned(managed, None, ctypes.byref(back)))
    assert lib.tb_tensor_data(back) == dl.data
    data[3] = 42.0
    assert ctypes.cast(lib.tb_tensor_data(back), ctypes.POINTER(ctypes.c_float))[0] == 42.0

    lib.tb_tensor_release(t)
    lib.tb_tensor_release(view)
    assert calls == []  # `back` still holds the memory
    lib.tb_tensor_release(back)
    assert calls == [(ctypes.addressof(data), 1234)]  # once, with the caller's data and ctx


def test_errors_are_values_with_messages(lib):
    t = ctypes.c_void_p()
    f64 = DLDataType(2, 64, 1)
    bad_shape = (ctypes.c_int64 * 1)(-4)
    status = lib.tb_from_array(None, 0, f64, 1, bad_shape, None, DLDevice(1, 0), 0,
                               TB_DELETER(), None, ctypes.byref(t))
    assert status != 0 and lib.tb_status_name(status).startswith(b"TB_ERR_")
    assert b"-4" in lib.tb_last_error()
    assert t.value is None  # outputs are written only on success


def test_read_only_flag_travels(lib):
    data = (ctypes.c_int8 * 3)(1, 2, 3)
    shape = (ctypes.c_int64 * 1)(3)
    t = ctypes.c_void_p()
    ok(lib, lib.tb_from_array(ctypes.addressof(data), 0, DLDataType(0, 8, 1), 1, shape, None,
                              DLDevice(1, 0), 1, TB_DELETER(), None, ctypes.byref(t)))
    managed = ctypes.POINTER(DLManagedTensorVersioned)()
    ok(lib, lib.tb_to_dlpack_versioned(t, None, ctypes.byref(managed)))
    assert managed.contents.flags & 1
    back = ctypes.c_void_p()
    ok(lib, lib.tb_from_dlpack_versioned(managed, None, ctypes.byref(back)))
    assert lib.tb_tensor_is_readonly(back)
    lib.tb_tensor_release(back)
    lib.tb_tensor_release(t)


def test_ctypes_demo_runs(lib, library_path):
    env = dict(os.environ, TENSORBRIDGE_LIB=library_path)
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "ctypes_demo.py")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "released back:       deleter calls = 1" in r.stdout
