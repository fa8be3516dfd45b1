"""The DLPack C exchange API against another implementation: apache-tvm-ffi.

Both directions, each proven to have gone through the exchange table rather
than a capsule:
- tensorbridge -> tvm-ffi: tvm_ffi.from_dlpack(t) and tvm-ffi function calls
  take a tensorbridge.Tensor through tensorbridge's table (its calls are
  counted by _tensorbridge._exchange_calls());
- tvm-ffi -> tensorbridge: tensorbridge.from_dlpack consumes a
  tvm_ffi.core.DLTensorTestWrapper through tvm-ffi's table; the wrapper's
  __dlpack__ is made to fail, so a capsule fallback could not succeed;
- round trip: a tvm-ffi function returning its argument hands back a
  tensorbridge.Tensor, made by tensorbridge's managed_tensor_to_py_object.
"""

import weakref

import pytest

np = pytest.importorskip("numpy")
tvm_ffi = pytest.importorskip("tvm_ffi")
from tvm_ffi import testing as tvm_testing  # noqa: E402

import tensorbridge as tb  # noqa: E402
from tensorbridge import _tensorbridge as _tb  # noqa: E402

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]


def calls():
    return dict(_tb._exchange_calls())


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def values(dtype, shape=(2, 3)):
    n = 1
    for s in shape:
        n *= s
    return tb.tensor(list(range(n)), dtype="int64").astype(dtype).reshape(*shape)


class NoCapsule(tvm_ffi.core.DLTensorTestWrapper):
    """A tvm-ffi producer whose capsule path fails: only its exchange table works."""

    def __dlpack__(self, *args, **kwargs):
        raise AssertionError("the capsule path was taken")


def test_exchange_capsule_is_published_on_the_type():
    cap = tb.Tensor.__dlpack_c_exchange_api__
    assert type(cap).__name__ == "PyCapsule"
    assert "dlpack_exchange_api" in repr(cap)


# ---- tensorbridge -> tvm-ffi ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_tvm_from_dlpack_takes_the_exchange_table(dtype):
    t = values(dtype)
    before = calls()
    x = tvm_ffi.from_dlpack(t)
    assert delta(before, calls()) == {"managed_tensor_from_py_object_no_sync": 1}
    assert type(x) is tvm_ffi.core.Tensor
    assert tuple(x.shape) == t.shape and x.data_ptr() == t.data_ptr()
    if dtype.startswith("complex"):
        # tvm-ffi has no dtype object for complex numbers (asked of it with
        # NumPy's own array); its tensor still holds our memory.
        with pytest.raises(ValueError, match="type_code=5"):
            str(tvm_ffi.from_dlpack(np.zeros(2, dtype=dtype)).dtype)
    else:
        assert str(x.dtype) == dtype
    # tvm-ffi hands its tensors on through DLPack: to NumPy, so a write through
    # tensorbridge is seen on the other side (NumPy has no bfloat16).
    if dtype != "bfloat16":
        a = np.from_dlpack(x)
        assert a.ctypes.data == t.data_ptr()
        t[1, 1] = 1
        assert a[1, 1] == 1


@pytest.mark.parametrize("layout", ["transposed", "stepped", "offset"])
def test_tvm_from_dlpack_strided_layouts(layout):
    base = values("float32", (4, 6))
    t = {"transposed": base.T, "stepped": base[:, ::2], "offset": base[1:, 2:]}[layout]
    x = tvm_ffi.from_dlpack(t)
    assert tuple(x.shape) == t.shape and tuple(x.strides) == t.strides
    assert x.data_ptr() == t.data_ptr()
    assert np.from_dlpack(x).tolist() == t.tolist()


def test_tvm_holds_the_memory_after_tensorbridge_lets_go(collect):
    t = values("int64", (3, 3))
    x = tvm_ffi.from_dlpack(t)
    del t
    collect()
    assert np.from_dlpack(x).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    # Over a bytearray, the buffer export shows who holds it: tvm-ffi's tensor
    # until it goes, then nobody.
    buf = bytearray(16)
    t = tb.from_dlpack(buf)
    x = tvm_ffi.from_dlpack(t)
    del t
    collect()
    with pytest.raises(BufferError):
        buf.append(0)
    del x
    collect()
    buf.append(0)


def test_tvm_function_call_round_trips_a_tensorbridge_tensor():
    t = values("float64")
    before = calls()
    out = tvm_testing.echo(t)
    d = delta(before, calls())
    # In through managed_tensor_from_py_object, back out through
    # managed_tensor_to_py_object: the result is a tensorbridge.Tensor.
    assert d == {"managed_tensor_from_py_object_no_sync": 1,
                 "managed_tensor_to_py_object_no_sync": 1}
    assert type(out) is tb.Tensor
    assert out.data_ptr() == t.data_ptr() and out.shape == t.shape and out.dtype == "float64"
    out[0, 0] = 9.0
    assert t[0, 0].item() == 9.0


def test_read_only_tensor_goes_through_the_table():
    # The table marks it READ_ONLY (test_dlpack.py checks the flag itself);
    # tvm-ffi keeps no read-only state of its own to check here.
    ro = tb.from_dlpack(memoryview(bytes(8)))
    assert ro.readonly
    before = calls()
    x = tvm_ffi.from_dlpack(ro)
    assert delta(before, calls()) == {"managed_tensor_from_py_object_no_sync": 1}
    assert x.data_ptr() == ro.data_ptr()


# ---- tvm-ffi -> tensorbridge ----

@pytest.mark.parametrize("dtype", [d for d in DTYPES if d not in ("bfloat16",)])
def test_tensorbridge_consumes_tvm_through_its_table(dtype):
    a = np.arange(6).astype(dtype).reshape(2, 3)
    x = tvm_ffi.from_dlpack(a)
    t = tb.from_dlpack(NoCapsule(x))
    assert t.dtype == dtype and t.shape == (2, 3)
    assert t.data_ptr() == a.ctypes.data == x.data_ptr()
    assert t.tolist() == a.tolist()
    # tvm-ffi exports versioned tensors without READ_ONLY: writes are shared.
    assert not t.readonly
    t[0, 1] = 1
    assert a[0, 1] == 1


def test_tensorbridge_consumes_tvm_bfloat16_through_its_table():
    src = values("bfloat16")
    x = tvm_ffi.from_dlpack(src)
    t = tb.from_dlpack(NoCapsule(x))
    assert t.dtype == "bfloat16" and t.data_ptr() == src.data_ptr()
    assert t.tolist() == src.tolist()
    src[0, 1] = 5
    assert t[0, 1].item() == 5


def test_tvm_wrapper_without_table_falls_back_to_the_capsule():
    a = np.arange(4.0)
    x = tvm_ffi.from_dlpack(a)
    # tvm_ffi.core.Tensor speaks __dlpack__; tensorbridge takes its capsule.
    t = tb.from_dlpack(x)
    assert t.data_ptr() == a.ctypes.data and t.tolist() == [0.0, 1.0, 2.0, 3.0]
    a[0] = 9.0
    assert t[0].item() == 9.0


def test_tensorbridge_keeps_tvm_memory_alive(collect):
    a = np.arange(5, dtype=np.int32)
    alive = weakref.ref(a)
    t = tb.from_dlpack(NoCapsule(tvm_ffi.from_dlpack(a)))
    del a
    collect()
    assert alive() is not None and t.tolist() == [0, 1, 2, 3, 4]
    del t  # the last holder: tvm-ffi's deleter lets NumPy's array go
    collect()
    assert alive() is None
