"""The seed examples, end to end: each torch idiom next to its tensorbridge
counterpart, with the results compared when PyTorch is installed."""

import pytest

np = pytest.importorskip("numpy")

import tensorbridge as tb

try:
    import torch
except ImportError:
    torch = None


def test_tensor_copies_and_infers_int64():
    data = [1, 2, 3]
    t = tb.tensor(data)
    data[0] = 100
    assert t.dtype == "int64" and t.tolist() == [1, 2, 3]
    a = np.array([1, 2, 3])
    c = tb.tensor(a)
    a[0] = 100
    assert c.tolist() == [1, 2, 3] and c.data_ptr() != a.ctypes.data
    if torch is not None:
        assert str(torch.tensor([1, 2, 3]).dtype) == "torch." + t.dtype


def test_from_numpy_shares_and_sees_the_mutation():
    a = np.array([1, 2, 3, 4, 5])
    t = tb.from_numpy(a)
    a[0] = 100
    assert t.tolist() == [100, 2, 3, 4, 5]
    assert t.data_ptr() == a.ctypes.data
    if torch is not None:
        b = np.array([1, 2, 3, 4, 5])
        x = torch.from_numpy(b)
        b[0] = 100
        assert x.tolist() == t.tolist()


def test_two_d_shapes():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    t = tb.from_numpy(a)
    assert t.shape == (2, 3) and t.ndim == 2 and t.strides == (3, 1)
    assert tb.tensor([[1, 2, 3], [4, 5, 6]]).shape == (2, 3)
    if torch is not None:
        assert tuple(torch.from_numpy(a).shape) == t.shape


def test_Tensor_converts_to_float32():
    a = np.array([[1, 2, 3], [4, 5, 6]])  # int64
    t = tb.Tensor(a)
    assert t.dtype == "float32" and t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    a[0, 0] = 100
    assert t[0, 0].item() == 1.0  # a copy
    if torch is not None:
        x = torch.Tensor(np.array([[1, 2, 3], [4, 5, 6]]))
        assert str(x.dtype) == "torch.float32" and x.tolist() == t.tolist()


@pytest.mark.parametrize("dtype", ["int16", "int32"])
def test_int16_int32_preserved(dtype):
    a = np.array([1, -2, 3], dtype=dtype)
    assert tb.from_numpy(a).dtype == dtype
    assert tb.tensor(a).dtype == dtype
    if torch is not None:
        x = torch.from_numpy(a)
        assert str(x.dtype) == "torch." + dtype
        assert tb.from_dlpack(x).dtype == dtype


def test_tensor_to_numpy_and_back():
    t = tb.tensor([[1.5, 2.5], [3.5, 4.5]], dtype="float64")
    a = t.numpy()
    assert a.dtype == np.float64 and a.ctypes.data == t.data_ptr()
    a[0, 0] = -1.0
    assert t[0, 0].item() == -1.0
    b = np.asarray(t)
    assert b.tolist() == t.tolist()
    again = tb.from_numpy(a)
    assert again.data_ptr() == t.data_ptr()


@pytest.mark.skipif(torch is None, reason="needs PyTorch")
def test_requires_grad_needs_detach_then_numpy():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        x.numpy()  # PyTorch's rule: detach first
    with pytest.raises(RuntimeError):
        tb.from_dlpack(x)  # the same rule holds over DLPack
    a = x.detach().numpy()
    t = tb.from_dlpack(x.detach())
    assert t.tolist() == a.tolist() == [1.0, 2.0, 3.0]
    assert t.data_ptr() == a.ctypes.data == x.data_ptr()
    assert t.detach().numpy().ctypes.data == t.data_ptr()  # the same spelling works here


def test_device_choice_with_cpu_fallback():
    device = "cuda" if tb.is_available("cuda") else "cpu"
    t = tb.tensor([1.0, 2.0, 3.0], device=device)
    assert t.device == device
    u = tb.from_numpy(np.arange(3.0)).to(device)
    assert u.device == device and u.tolist() == [0.0, 1.0, 2.0]
    if torch is not None:
        tdev = "cuda" if torch.cuda.is_available() else "cpu"
        assert torch.tensor([1.0]).to(tdev).device.type == tdev
