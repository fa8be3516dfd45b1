"""The Tensor type on its own: construction, attributes, views, copies, repr."""

import array
import sys

import pytest

import tensorbridge as tb


def arange(n, dtype="float64"):
    return tb.tensor(list(range(n)), dtype=dtype)


# ---- construction: tensor() copies (torch.tensor), Tensor() converts to float32 ----

def test_tensor_from_python_numbers_infers_torch_dtypes():
    assert tb.tensor([1, 2, 3]).dtype == "int64"
    assert tb.tensor([1.0, 2]).dtype == "float32"
    assert tb.tensor([True, False]).dtype == "bool"
    assert tb.tensor([1 + 2j]).dtype == "complex64"
    assert tb.tensor([True, 2]).dtype == "int64"
    assert tb.tensor([]).dtype == "float32" and tb.tensor([]).shape == (0,)
    t = tb.tensor(7)
    assert t.shape == () and t.ndim == 0 and t.item() == 7


def test_tensor_nested_lists_give_2d_shapes_and_values():
    t = tb.tensor([[1, 2, 3], [4, 5, 6]])
    assert t.shape == (2, 3)
    assert t.strides == (3, 1)
    assert t.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_tensor_with_dtype_converts():
    t = tb.tensor([1, 2, 3], dtype="int16")
    assert t.dtype == "int16" and t.tolist() == [1, 2, 3]
    assert tb.tensor([1.5, -2.5], dtype="float64").tolist() == [1.5, -2.5]
    assert tb.tensor([1.0, 2.0], dtype="bfloat16").tolist() == [1.0, 2.0]
    assert tb.tensor([1.0, 2.0], dtype=float).dtype == "float64"
    assert tb.tensor([1, 0], dtype=bool).tolist() == [True, False]


def test_tensor_rejects_ragged_and_non_numeric():
    with pytest.raises(ValueError, match="ragged"):
        tb.tensor([[1, 2], [3]])
    with pytest.raises(TypeError):
        tb.tensor(["a"])
    with pytest.raises(TypeError, match="unknown dtype"):
        tb.tensor([1], dtype="float128")
    with pytest.raises(OverflowError):
        tb.tensor([2 ** 70])


def test_tensor_copies_a_buffer_but_from_dlpack_shares_it():
    buf = array.array("d", [1.0, 2.0, 3.0])
    copied = tb.tensor(buf)
    shared = tb.from_dlpack(buf)
    buf[0] = 100.0
    assert copied.tolist() == [1.0, 2.0, 3.0]
    assert shared.tolist() == [100.0, 2.0, 3.0]
    assert copied.data_ptr() != shared.data_ptr()


def test_Tensor_constructor_mirrors_torch_Tensor():
    t = tb.Tensor([[1, 2], [3, 4]])
    assert t.dtype == "float32" and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    z = tb.Tensor(2, 3)
    assert z.shape == (2, 3) and z.dtype == "float32" and z.tolist() == [[0.0] * 3] * 2
    assert tb.Tensor().shape == (0,)
    with pytest.raises(TypeError):
        tb.Tensor([1], [2])


# ---- attributes ----

def test_attributes():
    t = tb.tensor([[1, 2, 3], [4, 5, 6]], dtype="int32")
    assert t.shape == (2, 3) and t.strides == (3, 1) and t.ndim == 2
    assert t.dtype == "int32" and t.device == "cpu" and t.itemsize == 4 and t.nbytes == 24
    assert t.numel() == 6 and len(t) == 2 and t.is_contiguous() and not t.readonly
    assert t.__dlpack_device__() == (1, 0)
    assert t.requires_grad is False


# ---- indexing makes views ----

def test_int_and_slice_indexing_are_views():
    t = arange(12).reshape(3, 4)
    row = t[1]
    assert row.shape == (4,) and row.tolist() == [4, 5, 6, 7]
    assert t[1, 2].shape == () and t[1, 2].item() == 6
    assert t[-1, -1].item() == 11
    col = t[:, 1]
    assert col.tolist() == [1, 5, 9] and col.strides == (4,)
    row[0] = -1.0  # writes through the view
    assert t[1, 0].item() == -1.0
    assert row.data_ptr() == t.data_ptr() + 4 * 8


def test_slices_with_steps_including_negative():
    t = arange(10)
    assert t[::2].tolist() == [0, 2, 4, 6, 8] and t[::2].strides == (2,)
    assert t[::-1].tolist() == list(range(9, -1, -1)) and t[::-1].strides == (-1,)
    assert t[8:2:-3].tolist() == [8, 5]
    assert t[-3:].tolist() == [7, 8, 9]
    assert t[100:].tolist() == []
    m = arange(12).reshape(3, 4)
    assert m[::-1, ::-2].tolist() == [[11, 9], [7, 5], [3, 1]]
    assert m[::-1, ::-2].strides == (-4, -2)
    with pytest.raises(ValueError):
        t[::0]


def test_ellipsis_and_none():
    t = arange(24).reshape(2, 3, 4)
    assert t[..., 1].shape == (2, 3)
    assert t[..., 1].tolist() == [[1, 5, 9], [13, 17, 21]]
    assert t[0, ...].shape == (3, 4)
    assert t[None].shape == (1, 2, 3, 4)
    assert t[:, None, :, None].shape == (2, 1, 3, 1, 4)
    assert t[..., None].shape == (2, 3, 4, 1)
    assert t[...].data_ptr() == t.data_ptr()
    with pytest.raises(IndexError, match="single ellipsis"):
        t[..., ...]


def test_bad_indices_raise_index_errors():
    t = arange(6).reshape(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        t[2]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0]
    with pytest.raises(IndexError):
        t["a"]
    with pytest.raises(IndexError):
        t[[0, 1]]
    with pytest.raises(TypeError):
        len(tb.tensor(1.0))


def test_iteration_and_views_keep_memory_alive():
    t = arange(6).reshape(2, 3)
    rows = list(t)
    assert [r.tolist() for r in rows] == [[0, 1, 2], [3, 4, 5]]
    v = t[1, ::-1]
    del t, rows
    assert v.tolist() == [5, 4, 3]


def test_T_transpose_permute_reshape_squeeze():
    t = arange(6).reshape(2, 3)
    assert t.T.shape == (3, 2) and t.T.strides == (1, 3) and not t.T.is_contiguous()
    assert t.transpose(0, 1).tolist() == [[0, 3], [1, 4], [2, 5]]
    assert t.permute(1, 0).strides == (1, 3)
    assert t.reshape(3, 2).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert t.reshape((6,)).shape == (6,)
    with pytest.raises(ValueError):
        t.T.reshape(6)  # needs a copy
    assert t.T.contiguous().reshape(6).tolist() == [0, 3, 1, 4, 2, 5]
    assert t.unsqueeze(0).shape == (1, 2, 3)
    assert t.unsqueeze(0).squeeze().shape == (2, 3)
    e = tb.tensor([1, 2, 3]).expand(2, 3)
    assert e.strides == (0, 1) and e.readonly and e.tolist() == [[1, 2, 3], [1, 2, 3]]


# ---- copies and conversion ----

def test_copy_is_independent_and_writable():
    t = arange(4)
    c = t.copy()
    c[0] = 9.0
    assert t[0].item() == 0.0 and c[0].item() == 9.0
    assert t[::-1].copy().strides == (1,)
    assert t.clone().tolist() == t.tolist()


def test_to_device_and_dtype():
    t = tb.tensor([1.5, 2.5, -3.5], dtype="float64")
    assert t.to("cpu") is t
    assert t.to((1, 0)) is t
    assert t.to("cpu", copy=True) is not t
    i = t.to(dtype="int32")
    assert i.dtype == "int32" and i.tolist() == [1, 2, -3]
    assert t.to("float16").dtype == "float16"
    with pytest.raises(ValueError, match="maia"):
        t.to("maia")  # a device type without a backend here
    with pytest.raises(ValueError, match="unknown device"):
        t.to("tpu")


def test_device_choice_with_cpu_fallback():
    assert tb.is_available("cpu")
    device = "cuda" if tb.is_available("cuda") else "cpu"
    t = tb.tensor([1.0, 2.0], device=device)
    assert t.device == device


# ---- setitem ----

def test_setitem_scalars_and_broadcast():
    t = tb.tensor([[0, 0, 0], [0, 0, 0]], dtype="int32")
    t[0] = 5
    t[1, ::2] = tb.tensor([7, 8])
    t[:, 1] = 2.9  # float -> int truncates toward zero
    assert t.tolist() == [[5, 2, 5], [7, 2, 8]]
    t[...] = tb.tensor([1, 2, 3])  # broadcast over rows
    assert t.tolist() == [[1, 2, 3], [1, 2, 3]]
    with pytest.raises(TypeError):
        t[0] = 1 + 2j  # complex -> real is refused


def test_setitem_readonly_raises():
    ro = tb.from_dlpack(bytes(8))
    assert ro.readonly
    with pytest.raises(ValueError, match="read-only"):
        ro[0] = 1


# ---- scalars and repr ----

def test_item_and_number_protocol():
    assert float(tb.tensor(2.5)) == 2.5
    assert int(tb.tensor([7])) == 7
    assert bool(tb.tensor([True])) is True
    assert [10, 20, 30][tb.tensor(1)] == 20
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tb.tensor([1, 2]))
    with pytest.raises(ValueError):
        tb.tensor([1, 2]).item()


def test_repr_shows_values_dtype_and_flags():
    assert repr(tb.tensor([1, 2, 3])) == "tensor([1, 2, 3], dtype=int64)"
    assert repr(tb.tensor([[1.5, 2.0], [3.0, 4.0]])) == (
        "tensor([[1.5, 2.0],\n        [3.0, 4.0]], dtype=float32)")
    assert repr(tb.tensor(True)) == "tensor(True, dtype=bool)"
    assert "readonly=True" in repr(tb.from_dlpack(b"abcd"))
    assert repr(tb.Tensor(0, 3)) == "tensor([], shape=(0, 3), dtype=float32)"
    big = repr(arange(5000))
    assert "..." in big and big.count(",") < 20
    assert repr(tb.tensor([1.0], dtype="bfloat16")) == "tensor([1.0], dtype=bfloat16)"


# ---- the buffer protocol, exporting ----

def test_memoryview_of_tensors():
    t = tb.tensor([[1, 2, 3], [4, 5, 6]], dtype="int16")
    m = memoryview(t)
    assert m.format == "h" and m.shape == (2, 3) and m.strides == (6, 2) and not m.readonly
    assert m.tolist() == [[1, 2, 3], [4, 5, 6]]
    m[0, 0] = 42
    assert t[0, 0].item() == 42
    r = memoryview(t[:, ::-1])
    assert r.strides == (6, -2) and r.tolist() == [[3, 2, 42], [6, 5, 4]]
    m.release()
    r.release()


def test_memoryview_read_only_and_formats():
    ro = tb.from_dlpack(bytes([1, 2, 3]))
    m = memoryview(ro)
    assert m.readonly and m.tolist() == [1, 2, 3]
    with pytest.raises(TypeError):
        m[0] = 5
    expect = {"bool": "?", "int8": "b", "uint8": "B", "int32": "i", "uint64": "Q",
              "float16": "e", "float32": "f", "float64": "d", "complex64": "Zf",
              "complex128": "Zd"}
    for name, fmt in expect.items():
        assert memoryview(tb.tensor([1], dtype=name)).format == fmt
    with pytest.raises(BufferError, match="bfloat16"):
        memoryview(tb.tensor([1.0], dtype="bfloat16"))


def test_buffer_of_non_contiguous_tensors_carries_strides():
    t = arange(6).reshape(2, 3).T
    m = memoryview(t)
    assert not m.c_contiguous and m.strides == (8, 24)
    assert bytes(t) == bytes(t.contiguous())  # bytes() walks the strides
    m.release()


@pytest.mark.skipif(sys.getrefcount is None, reason="CPython only")
def test_buffer_import_keeps_exporter_locked_until_release():
    buf = bytearray(8)
    t = tb.from_dlpack(buf)
    with pytest.raises(BufferError):
        buf.append(0)  # exported: cannot resize while shared
    del t
    buf.append(0)


def test_num_threads_knob():
    import tensorbridge as tb
    tb.set_num_threads(3)
    assert tb.get_num_threads() == 3
    tb.set_num_threads(1)
    big = tb.tensor([[float(i + 8 * j) for i in range(1024)] for j in range(1024)])
    one = big.T.contiguous().tolist()
    tb.set_num_threads(2)
    assert big.T.contiguous().tolist() == one
    for bad in (-1, 257):
        with pytest.raises(ValueError, match="set_num_threads: n = "):
            tb.set_num_threads(bad)
    with pytest.raises(TypeError):
        tb.set_num_threads("2")
    tb.set_num_threads(0)
    assert tb.get_num_threads() >= 1


def test_torch_and_numpy_habits():
    t = tb.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.size() == (2, 3) and t.size(0) == 2 and t.size(-1) == 3
    assert t.stride() == (3, 1) and t.stride(1) == 1 and t.T.stride() == (1, 3)
    assert t.dim() == 2 and t.element_size() == 4 and len(t) == 2
    assert t.itemsize == 4 and t.nbytes == 24
    for bad in (2, -3):
        with pytest.raises(IndexError, match="out of range for a 2-dimensional tensor"):
            t.size(bad)
    with pytest.raises(TypeError):
        t.size(0, 1)
    assert t.cpu() is t
    d = t.astype("float64")
    assert d.dtype == "float64" and d.tolist() == t.tolist() and d.data_ptr() != t.data_ptr()
    same = t.astype("float32")  # copy=True by default: a new tensor
    assert same is not t and same.data_ptr() != t.data_ptr()
    assert t.astype("float32", copy=False) is t
    assert t.astype("int32", copy=False).dtype == "int32"
    assert tb.tensor(5).size() == () and tb.tensor(5).dim() == 0
