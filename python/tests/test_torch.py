"""PyTorch <-> tensorbridge, both directions (Debian's PyTorch 1.13 speaks
legacy capsules only; newer releases versioned ones)."""

import pytest

torch = pytest.importorskip("torch")

import tensorbridge as tb
from frameworks import Spy

TORCH2 = int(torch.__version__.split(".")[0]) >= 2
DTYPES = ["int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16", "float32",
          "float64", "complex64", "complex128"]


def values(dtype, n=6):
    return torch.arange(n).to(getattr(torch, dtype))


def as_list(x):
    return x.tolist()


# ---- PyTorch -> tensorbridge ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_to_tensorbridge_every_dtype_zero_copy(dtype):
    x = values(dtype)
    # torch 1.13 makes legacy capsules: legacy_writable=True shares them writable.
    t = tb.from_dlpack(x, legacy_writable=not TORCH2)
    assert t.dtype == dtype and t.shape == tuple(x.shape)
    assert t.data_ptr() == x.data_ptr()
    assert t.tolist() == as_list(x)
    x[0] = 5
    assert t[0].item() == 5
    t[1] = 7
    assert x[1].item() == 7


def test_torch_bool():
    x = torch.tensor([True, False, True])
    if TORCH2:
        assert tb.from_dlpack(x).tolist() == [True, False, True]
    else:
        with pytest.raises(RuntimeError, match="Bool"):
            tb.from_dlpack(x)  # PyTorch 1.13 cannot export bool over DLPack
        with pytest.raises(RuntimeError):
            torch.from_dlpack(tb.tensor([True]))


def test_torch_producer_capsule_kind():
    spy = Spy(torch.arange(3.0))
    tb.from_dlpack(spy)
    assert spy.calls[0].get("max_version") == (1, 3)
    if not TORCH2:
        assert spy.capsules == ["dltensor"] and spy.calls[-1] == {}


@pytest.mark.parametrize("layout", ["0-d", "size-0", "steps", "transposed", "3-d"])
def test_torch_to_tensorbridge_layouts(layout):
    base = torch.arange(24.0).reshape(4, 6)
    x = {"0-d": torch.tensor(2.5), "size-0": torch.zeros(0, 3), "steps": base[::2, 1::3],
         "transposed": base.T, "3-d": torch.arange(24).reshape(2, 3, 4).permute(2, 0, 1)}[layout]
    t = tb.from_dlpack(x)
    assert t.shape == tuple(x.shape) and t.tolist() == x.tolist()
    if x.numel():
        assert t.data_ptr() == x.data_ptr() and t.strides == tuple(x.stride())


def test_torch_requires_grad_needs_detach():
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        tb.from_dlpack(x)  # PyTorch's own rule
    t = tb.from_dlpack(x.detach())
    assert t.data_ptr() == x.data_ptr() and t.tolist() == [1.0, 1.0, 1.0]


def test_torch_memory_outlives_the_tensor():
    x = torch.arange(4.0)
    t = tb.from_dlpack(x)
    del x
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]


# ---- tensorbridge -> PyTorch ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_to_torch_every_dtype_zero_copy(dtype):
    t = tb.tensor([0, 1, 2, 3, 4, 5], dtype=dtype)
    x = torch.from_dlpack(t)
    assert x.dtype == getattr(torch, dtype) and x.data_ptr() == t.data_ptr()
    assert x.tolist() == t.tolist()
    x[0] = 9
    assert t[0].item() == 9
    t[1] = 8
    assert x[1].item() == 8


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_unsigned_wider_than_8_bits(dtype):
    t = tb.tensor([1, 2], dtype=dtype)
    if not TORCH2:
        with pytest.raises(RuntimeError, match="Unsupported"):
            torch.from_dlpack(t)  # PyTorch 1.13 has only uint8


def test_torch_consumer_capsule_kind():
    spy = Spy(tb.tensor([1.0, 2.0]))
    torch.from_dlpack(spy)
    if not TORCH2:
        assert spy.calls == [{}] and spy.capsules == ["dltensor"]


@pytest.mark.parametrize("layout", ["0-d", "size-0", "steps", "transposed", "3-d"])
def test_tensorbridge_to_torch_layouts(layout):
    base = tb.tensor([[float(i * 4 + j) for j in range(4)] for i in range(3)])
    t = {"0-d": base[1, 2], "size-0": base[:0], "steps": base[::2, 1::2], "transposed": base.T,
         "3-d": tb.tensor(list(range(24))).reshape(2, 3, 4).permute(2, 0, 1)}[layout]
    x = torch.from_dlpack(t)
    assert tuple(x.shape) == t.shape and x.tolist() == t.tolist()
    if t.numel():
        assert x.data_ptr() == t.data_ptr()


def test_negative_strides_to_torch_go_through_a_copy():
    # PyTorch 1.13 aborts the whole process on a DLPack tensor with a negative
    # stride (a C++ exception escapes at::fromDLPack), so a reversed view is
    # made contiguous first; that is the caller's choice, not done silently.
    t = tb.tensor([1.0, 2.0, 3.0])[::-1]
    x = torch.from_dlpack(t.contiguous())
    assert x.tolist() == [3.0, 2.0, 1.0]


def test_read_only_tensor_is_refused_by_legacy_export():
    ro = tb.from_dlpack(b"\x01\x02")
    if not TORCH2:
        with pytest.raises(BufferError, match="read-only"):
            torch.from_dlpack(ro)
    x = torch.from_dlpack(ro.copy())
    assert x.tolist() == [1, 2]


def test_round_trip_torch_tensorbridge_numpy():
    np = pytest.importorskip("numpy")
    x = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    t = tb.from_dlpack(x, legacy_writable=True)
    a = np.asarray(t)
    assert a.dtype == np.int32 and a.ctypes.data == x.data_ptr()
    a[1, 2] = -1
    assert x[1, 2].item() == -1
    back = torch.from_dlpack(tb.from_numpy(a))
    assert back.data_ptr() == x.data_ptr()


def test_torch_legacy_capsules_import_read_only_unless_vouched_for():
    """torch 1.13 speaks legacy capsules only, which carry no read-only bit: the
    default import is read-only (NumPy's rule), legacy_writable=True shares
    the tensor writable. torch 2.x's versioned capsules say it themselves."""
    x = torch.arange(4, dtype=torch.float32)
    t = tb.from_dlpack(x)
    assert t.data_ptr() == x.data_ptr()
    if TORCH2:
        assert not t.readonly
        return
    assert t.readonly
    with pytest.raises(ValueError, match="read-only"):
        t[0] = 1.0
    w = tb.from_dlpack(x, legacy_writable=True)
    assert not w.readonly and w.data_ptr() == x.data_ptr()
    w[0] = 5.0
    assert x[0].item() == 5.0
    # torch.utils.dlpack.to_dlpack's bare capsule follows the same rule.
    cap = torch.utils.dlpack.to_dlpack(x)
    c = tb.from_dlpack(cap)
    assert c.readonly and c.data_ptr() == x.data_ptr() and c.tolist() == [5.0, 1.0, 2.0, 3.0]
    # A copy is the caller's own, and writable.
    k = tb.from_dlpack(x, copy=True)
    assert not k.readonly and k.data_ptr() != x.data_ptr()
