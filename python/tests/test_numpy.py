"""NumPy <-> tensorbridge, both directions, with whichever NumPy is installed:
NumPy 2.x speaks versioned capsules, NumPy 1.x (Debian's 1.24) legacy ones."""

import pytest

np = pytest.importorskip("numpy")

import tensorbridge as tb
from frameworks import Spy

NP2 = int(np.__version__.split(".")[0]) >= 2
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]


def values(dtype, n=6):
    return np.arange(n).astype(dtype) if dtype != "bool" else np.arange(n) % 2 == 0


# ---- NumPy -> tensorbridge ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_to_tensorbridge_every_dtype_zero_copy(dtype):
    a = values(dtype)
    # NumPy 1.x exports legacy capsules, read-only unless the caller vouches:
    # legacy_writable is the opt-in (NumPy 2's versioned capsules say it).
    t = tb.from_dlpack(a, legacy_writable=True)
    assert t.dtype == dtype and t.shape == a.shape
    assert t.data_ptr() == a.ctypes.data
    assert t.tolist() == a.tolist()
    a[0] = a[1]  # a write on NumPy's side ...
    assert t[0].item() == a[1].item()  # ... is seen through the tensor
    t[2] = a[3].item()  # and the other way round
    assert a[2] == a[3]


def test_numpy_producer_capsule_kind():
    spy = Spy(np.arange(3.0))
    tb.from_dlpack(spy)
    assert spy.calls[0].get("max_version") == (1, 3)
    if NP2:
        assert spy.capsules == ["dltensor_versioned"]
    else:  # NumPy 1.x: TypeError on max_version, then the legacy call
        assert spy.capsules == ["dltensor"] and spy.calls[-1] == {}


@pytest.mark.parametrize("layout", ["0-d", "size-0", "steps", "transposed", "negative", "3-d"])
def test_numpy_to_tensorbridge_layouts(layout):
    base = np.arange(24.0).reshape(4, 6)
    a = {
        "0-d": np.array(3.5),
        "size-0": np.zeros((0, 3)),
        "steps": base[::2, 1::3],
        "transposed": base.T,
        "negative": base[::-1, ::-2],
        "3-d": np.arange(24).reshape(2, 3, 4)[:, ::-1],
    }[layout]
    t = tb.from_dlpack(a)
    assert t.shape == a.shape
    assert t.strides == tuple(s // a.itemsize for s in a.strides) or a.size == 0
    assert t.tolist() == a.tolist()
    if a.size:
        assert t.data_ptr() == a.ctypes.data


def test_numpy_read_only_array_comes_out_read_only():
    a = np.arange(4.0)
    a.flags.writeable = False
    t = tb.from_dlpack(a)
    assert t.readonly and t.data_ptr() == a.ctypes.data
    with pytest.raises(ValueError, match="read-only"):
        t[0] = 1.0
    assert memoryview(t).readonly
    assert tb.from_numpy(a).readonly
    v = t[::-1]
    assert v.readonly  # views inherit it


def test_numpy_copy_and_device_requests():
    a = np.arange(4.0)
    c = tb.from_dlpack(a, copy=True)
    assert c.data_ptr() != a.ctypes.data and c.tolist() == a.tolist()
    s = tb.from_dlpack(a, device="cpu", copy=False)
    assert s.data_ptr() == a.ctypes.data
    # NumPy's own __dlpack__ refuses the device; NumPy 2.2 and older raise
    # ValueError there, later releases the standard's BufferError.
    with pytest.raises((BufferError, ValueError), match="device"):
        tb.from_dlpack(a, device="cuda", copy=False)


def test_from_numpy_shares_and_rejects_non_arrays():
    a = np.array([1, 2, 3])
    t = tb.from_numpy(a)
    a[0] = 100
    assert t.tolist() == [100, 2, 3] and t.dtype == "int64"
    with pytest.raises(TypeError, match="numpy.ndarray"):
        tb.from_numpy([1, 2, 3])


def test_numpy_memory_outlives_the_array():
    a = np.arange(5.0)
    t = tb.from_dlpack(a)
    del a
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


# ---- tensorbridge -> NumPy ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_to_numpy_every_dtype_zero_copy(dtype):
    t = tb.from_dlpack(values(dtype)).copy()  # memory tensorbridge owns
    if dtype == "bool" and not NP2:
        with pytest.raises((RuntimeError, BufferError, TypeError)):
            np.from_dlpack(t)  # NumPy 1.24 predates DLPack's bool code
        return
    a = np.from_dlpack(t)
    assert str(a.dtype) == dtype and a.ctypes.data == t.data_ptr()
    assert a.tolist() == t.tolist()
    t[0] = t[1].item()
    assert a[0] == a[1]
    if NP2:
        assert a.flags.writeable
        a[2] = a[3]
        assert t[2].item() == t[3].item()
    else:
        assert not a.flags.writeable  # NumPy 1.x imports DLPack read-only


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_to_numpy_through_the_buffer_protocol(dtype):
    t = tb.from_dlpack(values(dtype)).copy()
    a = np.asarray(t)
    b = t.numpy()
    assert str(a.dtype) == dtype and a.ctypes.data == t.data_ptr() == b.ctypes.data
    a[0] = a[1]
    assert t[0].item() == t[1].item()


def test_numpy_consumer_capsule_kind():
    spy = Spy(tb.tensor([1.0, 2.0]))
    np.from_dlpack(spy)
    if NP2:
        assert spy.capsules == ["dltensor_versioned"]
        assert spy.calls[0]["max_version"][0] >= 1
    else:
        assert spy.capsules == ["dltensor"]


@pytest.mark.parametrize("layout", ["0-d", "size-0", "steps", "transposed", "negative"])
def test_tensorbridge_to_numpy_layouts(layout):
    base = tb.tensor([[float(i * 4 + j) for j in range(4)] for i in range(3)], dtype="float64")
    t = {"0-d": base[1, 2], "size-0": base[:0], "steps": base[::2, 1::2],
         "transposed": base.T, "negative": base[::-1, ::-3]}[layout]
    a = np.from_dlpack(t)
    assert a.shape == t.shape and a.tolist() == t.tolist()
    if t.numel():
        assert a.ctypes.data == t.data_ptr()
        assert tuple(s // 8 for s in a.strides) == t.strides
    b = np.asarray(t)
    assert b.tolist() == t.tolist()


def test_read_only_tensor_to_numpy():
    ro = np.arange(3.0)
    ro.flags.writeable = False
    t = tb.from_dlpack(ro)
    if NP2:
        a = np.from_dlpack(t)  # versioned: the READ_ONLY flag travels
        assert not a.flags.writeable and a.ctypes.data == ro.ctypes.data
    else:
        with pytest.raises(BufferError, match="read-only"):
            np.from_dlpack(t)  # legacy capsules cannot say read-only: refused
    a = np.asarray(t)
    assert not a.flags.writeable


def test_bfloat16_has_no_numpy_dtype():
    t = tb.tensor([1.0], dtype="bfloat16")
    with pytest.raises((RuntimeError, BufferError, TypeError)):
        np.from_dlpack(t)
    with pytest.raises(BufferError, match="bfloat16"):
        t.numpy()


def test_tensor_copies_numpy_with_conversion():
    a = np.array([[1, 2], [3, 4]], dtype=np.int16)
    t = tb.tensor(a)
    a[0, 0] = 99
    assert t.dtype == "int16" and t.tolist() == [[1, 2], [3, 4]]
    assert tb.tensor(a, dtype="float64").dtype == "float64"
    f = tb.Tensor(np.array([1, 2], dtype=np.int64))
    assert f.dtype == "float32" and f.tolist() == [1.0, 2.0]
