"""PyTorch's DLPack suite (test/test_dlpack.py), the parts that apply to the
CPU, adapted so that tensorbridge is one side of every exchange. Debian's
torch 1.13 speaks legacy capsules only (Tensor.__dlpack__(stream=None)) and
its torch.from_dlpack takes no device= or copy=; newer releases speak
versioned capsules. What torch cannot do is asked of torch itself first, and
the test skips with torch's own answer."""


import pytest

torch = pytest.importorskip("torch")
import torch.utils.dlpack as tud  # noqa: E402

import tensorbridge as tb  # noqa: E402
from frameworks import Spy, error_of  # noqa: E402
from dlpack_ctypes import capsule_name  # noqa: E402

TORCH_VERSION = torch.__version__
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]

TORCH_VERSIONED_ERROR = error_of(lambda: torch.arange(1).__dlpack__(max_version=(1, 0)))
TORCH_VERSIONED = TORCH_VERSIONED_ERROR is None
TORCH_COPY_ERROR = error_of(lambda: torch.from_dlpack(torch.arange(2), copy=True))


class DLPackOnly:
    """Exposes only __dlpack__ and __dlpack_device__ (as PyTorch's
    TensorDLPackWrapper): no buffer protocol, no exchange table, no
    __array__, so DLPack is the only way in."""

    def __init__(self, inner):
        self.inner = inner

    def __dlpack__(self, *args, **kwargs):
        return self.inner.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.inner.__dlpack_device__()


def torch_dtype(name):
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        pytest.skip(f"torch {TORCH_VERSION} has no torch.{name}")
    return dt


def values(name):
    return [True, False, True, True, False, True] if name == "bool" else [0, 1, 2, 3, 4, 5]


def torch_sample(name):
    return torch.tensor(values(name), dtype=torch_dtype(name))


def skip_unless_torch_round_trips(name):
    """Skips when torch cannot move this dtype through DLPack with itself."""
    x = torch_sample(name)
    why = error_of(lambda: tud.from_dlpack(tud.to_dlpack(x)))
    if why:
        pytest.skip(f"torch {TORCH_VERSION} cannot round-trip {name} through DLPack with "
                    f"itself: {why}")
    return x


def item(x, i):
    return x[i].item()


def check_writable_share(src, x, i):
    """Imports src (torch tensor x, or a producer of it) with
    legacy_writable=True: x's own memory, and a write at i lands in x."""
    w = tb.from_dlpack(src, legacy_writable=True)
    assert not w.readonly and w.data_ptr() == x.data_ptr()
    assert item(x, i) != item(x, 1)  # so that the write shows
    w[i] = item(x, 1)
    assert item(x, i) == item(x, 1)


# ---- dtypes, capsules (test_dlpack_capsule_conversion, test_dlpack_shared_storage) ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_capsule_to_tensorbridge(dtype):
    x = skip_unless_torch_round_trips(dtype)
    cap = tud.to_dlpack(x)
    t = tb.from_dlpack(cap)
    assert capsule_name(cap) == "used_dltensor"
    assert t.dtype == dtype and t.shape == (6,) and t.strides == (1,)
    assert t.data_ptr() == x.data_ptr() and t.tolist() == x.tolist()
    assert t.readonly  # a legacy capsule cannot say whether the memory may be written
    with pytest.raises(ValueError, match="read-only"):
        t[0] = item(x, 1)
    x[0] = x[1]
    assert item(t, 0) == item(x, 1)
    check_writable_share(tud.to_dlpack(x), x, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_capsule_to_torch(dtype):
    skip_unless_torch_round_trips(dtype)
    t = tb.tensor(values(dtype), dtype=dtype)
    cap = t.__dlpack__()
    x = tud.from_dlpack(cap)
    assert capsule_name(cap) == "used_dltensor"
    assert x.dtype == torch_dtype(dtype) and tuple(x.shape) == (6,)
    assert x.data_ptr() == t.data_ptr() and x.tolist() == t.tolist()
    t[0] = item(t, 1)
    assert item(x, 0) == item(t, 1)
    x[2] = x[1]
    assert item(t, 2) == item(t, 1)


# ---- dtypes, the protocol (test_dlpack_protocol_conversion, test_from_dlpack_dtype) ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_protocol_to_tensorbridge(dtype):
    x = skip_unless_torch_round_trips(dtype)
    spy = Spy(DLPackOnly(x))
    t = tb.from_dlpack(spy)
    assert spy.calls[0].get("max_version") == (1, 3)
    assert spy.capsules[-1] == ("dltensor_versioned" if TORCH_VERSIONED else "dltensor")
    assert t.dtype == dtype and t.data_ptr() == x.data_ptr() and t.tolist() == x.tolist()
    if not TORCH_VERSIONED:
        assert t.readonly
    check_writable_share(DLPackOnly(x), x, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_protocol_to_torch(dtype):
    skip_unless_torch_round_trips(dtype)
    t = tb.tensor(values(dtype), dtype=dtype)
    for src in (t, DLPackOnly(t)):
        x = torch.from_dlpack(src)
        assert x.dtype == torch_dtype(dtype)
        assert x.data_ptr() == t.data_ptr() and x.tolist() == t.tolist()
    t[0] = item(t, 1)
    assert item(x, 0) == item(t, 1)
    x[4] = x[1]
    assert item(t, 4) == item(t, 1)


# ---- layouts (test_from_dlpack_noncontinguous, test_dlpack_normalize_strides) ----

LAYOUTS = {
    "row": lambda v: v.reshape(4, 6)[0],
    "column": lambda v: v.reshape(4, 6)[:, 0],
    "row-slice": lambda v: v.reshape(4, 6)[1, :],
    "transposed": lambda v: v.reshape(4, 6).transpose(0, 1),
    "steps": lambda v: v.reshape(4, 6)[::2, 1::3],
    "permuted-3d": lambda v: v.reshape(2, 3, 4).permute(2, 0, 1),
    "0-d": lambda v: v.reshape(4, 6)[1, 2],
    "empty-1d": lambda v: v[:0],
    "empty-3d": lambda v: v.reshape(2, 4, 3)[:, :0, :],
    "size1-stride3": lambda v: v[::3][:1],
    "unsqueezed": lambda v: v.reshape(4, 6).unsqueeze(1),
    "expanded": lambda v: v[:6].expand(4, 6),
}


def check_same_view(t, x):
    assert t.shape == tuple(x.shape) and t.ndim == x.dim() and t.numel() == x.numel()
    assert t.tolist() == x.tolist() and t.is_contiguous() == x.is_contiguous()
    if x.numel():
        assert t.data_ptr() == x.data_ptr()
        for d in range(x.dim()):
            if x.shape[d] > 1:
                assert t.strides[d] == x.stride(d), (d, t.strides, x.stride())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_torch_layouts_to_tensorbridge(layout):
    x = LAYOUTS[layout](torch.arange(24, dtype=torch.int16))
    t = tb.from_dlpack(x)
    check_same_view(t, x)
    if not TORCH_VERSIONED:
        assert t.readonly
    w = tb.from_dlpack(x, legacy_writable=True)
    check_same_view(w, x)
    if x.numel():
        idx = (0,) * x.dim()
        w[idx] = 1234
        assert x[idx].item() == 1234 and t[idx].item() == 1234


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tensorbridge_layouts_to_torch(layout):
    t = LAYOUTS[layout](tb.tensor(list(range(24)), dtype="int16"))
    if t.readonly and not TORCH_VERSIONED:
        with pytest.raises(BufferError, match="read-only"):
            torch.from_dlpack(t)  # a legacy capsule cannot say read-only
        return
    x = torch.from_dlpack(t)
    check_same_view(t, x)
    if t.numel():
        idx = (0,) * t.ndim
        t[idx] = 1234
        assert x[idx].item() == 1234


def test_negative_strides_are_beyond_torch():
    why = error_of(lambda: torch.arange(3)[::-1])
    if why:
        # And torch 1.13 aborts the process on a DLPack tensor with a negative
        # stride, so none is sent.
        pytest.skip(f"torch has no negative strides: torch.arange(3)[::-1] raises {why}")
    x = torch.arange(6)[::-2]
    t = tb.from_dlpack(x)
    assert t.strides == (-2,) and t.tolist() == x.tolist()


# ---- torch's refusals propagate (requires_grad, conj, non-strided, quantized) ----

REFUSED = {
    "requires_grad": lambda: torch.zeros(10, requires_grad=True),
    "conj": lambda: torch.conj(torch.tensor([-1 + 1j, -2 + 2j, 3 - 3j])),
    "sparse": lambda: torch.sparse_coo_tensor([[0]], [1.0], size=(1,)),
    "quantized": lambda: torch.quantize_per_tensor(torch.randn(()), 0.1, 10, torch.qint8),
}


@pytest.mark.parametrize("case", REFUSED)
def test_torch_refusals_propagate(case):
    x = REFUSED[case]()
    with pytest.raises(Exception) as own:
        x.__dlpack__()
    with pytest.raises(type(own.value)) as ours:
        tb.from_dlpack(x)
    assert str(own.value) in str(ours.value)


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_a_dtype_tensorbridge_lacks_is_refused_and_the_capsule_left_to_torch():
    why = error_of(lambda: tud.from_dlpack(tud.to_dlpack(torch.zeros(2, dtype=torch.complex32))))
    if why:
        pytest.skip(f"torch {TORCH_VERSION} cannot move complex32 through DLPack: {why}")
    x = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex32)
    cap = tud.to_dlpack(x)
    with pytest.raises(BufferError, match="dtype"):
        tb.from_dlpack(cap)
    assert capsule_name(cap) == "dltensor"  # not consumed: torch may still take it
    y = tud.from_dlpack(cap)
    assert y.data_ptr() == x.data_ptr()
    with pytest.raises(BufferError, match="dtype"):
        tb.from_dlpack(x)


def test_invalid_stream_type_is_a_type_error():
    with pytest.raises(TypeError):
        torch.zeros(5).__dlpack__(stream=object())  # torch's own rule
    with pytest.raises(TypeError):
        tb.tensor([1.0, 2.0]).__dlpack__(stream=object())


def test_unsupported_dl_device_is_a_buffer_error():
    hexagon = 16  # kDLHexagon, as in torch's test_unsupported_device_error
    t = tb.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(BufferError, match="hexagon|16"):
        t.__dlpack__(max_version=(1, 0), dl_device=(hexagon, 0))


# ---- creation through DLPack (test_automatically_select_in_creation) ----

def test_tensorbridge_tensor_selects_dlpack_for_a_wrapped_torch_tensor():
    x = torch.rand(10)
    t = tb.tensor(DLPackOnly(x))
    assert t.dtype == "float32" and t.tolist() == x.tolist()
    assert t.data_ptr() != x.data_ptr() and not t.readonly  # tensor() copies
    x[0] = 5.0
    assert t[0].item() != 5.0


def test_torch_tensor_selects_dlpack_for_a_wrapped_tensorbridge_tensor():
    why = error_of(lambda: torch.tensor(DLPackOnly(torch.rand(3))))
    if why:
        pytest.skip(f"torch {TORCH_VERSION}'s torch.tensor() does not read DLPack producers, "
                    f"not even its own tensors wrapped: {why}")
    t = tb.tensor([1.0, 2.0, 3.0])
    x = torch.tensor(DLPackOnly(t))
    assert x.dtype == torch.float32 and x.tolist() == [1.0, 2.0, 3.0]
    assert x.data_ptr() != t.data_ptr()


# ---- versions (test_max_version) ----

MAX_VERSIONS = [None, (0, 8), (1, 0), (2, 0)]


@pytest.mark.parametrize("max_version", MAX_VERSIONS, ids=str)
def test_tensorbridge_max_version_to_torch(max_version):
    kwargs = {} if max_version is None else {"max_version": max_version}
    versioned = max_version is not None and max_version[0] >= 1
    t = tb.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    cap = t.__dlpack__(**kwargs)
    assert capsule_name(cap) == ("dltensor_versioned" if versioned else "dltensor")
    assert f'capsule object "{capsule_name(cap)}" at' in str(cap)
    if versioned and not TORCH_VERSIONED:
        assert tb.from_dlpack(cap).data_ptr() == t.data_ptr()  # still good for a consumer
        pytest.skip(f"torch {TORCH_VERSION} has no versioned capsules "
                    f"(Tensor.__dlpack__(max_version=(1, 0)) raises {TORCH_VERSIONED_ERROR})")
    x = torch.from_dlpack(cap)
    assert x.tolist() == t.tolist() and x.data_ptr() == t.data_ptr()


@pytest.mark.parametrize("max_version", MAX_VERSIONS, ids=str)
def test_torch_max_version_to_tensorbridge(max_version):
    if max_version is not None and not TORCH_VERSIONED:
        pytest.skip(f"torch {TORCH_VERSION}'s Tensor.__dlpack__ takes no max_version "
                    f"({TORCH_VERSIONED_ERROR})")
    kwargs = {} if max_version is None else {"max_version": max_version}
    versioned = max_version is not None and max_version[0] >= 1
    x = torch.arange(5, dtype=torch.float32)
    cap = x.__dlpack__(**kwargs)
    assert capsule_name(cap) == ("dltensor_versioned" if versioned else "dltensor")
    t = tb.from_dlpack(cap)
    assert t.tolist() == x.tolist() and t.data_ptr() == x.data_ptr()
    assert t.readonly == (not versioned)


# ---- copy and device (_test_from_dlpack, test_dlpack_copy_fallback) ----

@pytest.mark.parametrize("device", [None, "cpu"])
@pytest.mark.parametrize("copy", [None, False, True])
def test_torch_to_tensorbridge_copy_and_device(copy, device):
    x = torch.arange(5, dtype=torch.float32)
    t = tb.from_dlpack(x, device=device, copy=copy)
    assert t.device == "cpu" and t.tolist() == x.tolist()
    shares = copy is not True
    assert (t.data_ptr() == x.data_ptr()) == shares
    if copy:  # works although torch's __dlpack__ may take no copy=
        assert not t.readonly
        t[0] = 999.0
        assert x[0].item() == 0.0
    else:
        x[1] = 7.0
        assert t[1].item() == 7.0


def test_tensorbridge_to_torch_copy_and_device():
    if TORCH_COPY_ERROR:
        pytest.skip(f"torch {TORCH_VERSION}'s torch.from_dlpack takes no copy= or device= "
                    f"({TORCH_COPY_ERROR})")
    for device in (None, "cpu"):
        for copy in (None, False, True):
            t = tb.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
            x = torch.from_dlpack(t, device=device, copy=copy)
            assert x.device == torch.device("cpu") and x.tolist() == t.tolist()
            assert (x.data_ptr() == t.data_ptr()) == (copy is not True), (device, copy)


# ---- three frameworks on one buffer (test_numpy_dlpack_protocol_conversion) ----

@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "float16",
                                   "float32", "float64", "complex64", "complex128"])
def test_torch_tensorbridge_numpy_share_one_buffer(dtype):
    np = pytest.importorskip("numpy")
    x = torch_sample(dtype)
    t = tb.from_dlpack(x, legacy_writable=True)
    a = np.from_dlpack(t)
    assert a.dtype == np.dtype(dtype) and a.ctypes.data == x.data_ptr()
    n = x.numpy()  # torch's own door to NumPy
    f = tb.from_numpy(n)
    y = torch.from_dlpack(f)
    assert f.data_ptr() == y.data_ptr() == x.data_ptr()
    x[0] = 5
    assert a[0] == 5 and f[0].item() == 5 and y[0].item() == 5
    f[1] = 6
    assert x[1].item() == 6 and a[1] == 6


# ---- lifetime and single consumption ----

@pytest.mark.parametrize("path", ["capsule", "protocol"])
def test_torch_source_deleted_first(path, collect):
    x = torch.arange(1000, dtype=torch.float64) * 3
    expect = x.tolist()
    src = tud.to_dlpack(x) if path == "capsule" else DLPackOnly(x)
    t = tb.from_dlpack(src)
    del x, src
    collect()
    churn = [torch.full((1000,), -1.0, dtype=torch.float64) for _ in range(50)]
    assert t.tolist() == expect and t[::9].tolist() == expect[::9]
    del churn


@pytest.mark.parametrize("path", ["capsule", "protocol"])
def test_tensorbridge_source_deleted_first(path, collect):
    t = tb.tensor([float(i) for i in range(1000)], dtype="float64")
    v = t[::2]
    expect = v.tolist()
    x = tud.from_dlpack(v.__dlpack__()) if path == "capsule" else torch.from_dlpack(v)
    del t, v
    collect()
    churn = [tb.tensor([-1.0] * 1000, dtype="float64") for _ in range(20)]
    assert x.tolist() == expect
    del churn


def test_torch_releases_tensorbridge_memory(collect):
    buf = bytearray(16)
    t = tb.from_dlpack(buf)
    x = torch.from_dlpack(t)
    del t
    collect()
    with pytest.raises(BufferError):
        buf.append(0)  # torch's tensor still holds the export
    x[0] = 9
    assert buf[0] == 9
    del x
    collect()
    buf.append(0)


def test_torch_capsule_is_consumed_once():
    x = torch.arange(3.0)
    cap = tud.to_dlpack(x)
    t = tb.from_dlpack(cap)
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)
    with pytest.raises(RuntimeError):
        tud.from_dlpack(cap)  # torch refuses a consumed capsule too
    assert t.tolist() == [0.0, 1.0, 2.0] and t.data_ptr() == x.data_ptr()


def test_tensorbridge_capsule_is_consumed_once_by_torch():
    t = tb.tensor([1.0, 2.0])
    cap = t.__dlpack__()
    x = tud.from_dlpack(cap)
    assert capsule_name(cap) == "used_dltensor"
    with pytest.raises(RuntimeError):
        tud.from_dlpack(cap)
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)
    assert x.tolist() == [1.0, 2.0] and x.data_ptr() == t.data_ptr()


# ---- tensorbridge's views against torch's, on the same memory ----

VIEW_OPS = {
    "T": lambda v: v.T,
    "transpose": lambda v: v.transpose(0, 1),
    "permute": lambda v: v.permute(1, 0),
    "reshape": lambda v: v.reshape(3, 8),
    "reshape-tuple": lambda v: v.reshape((2, 2, 6)),
    "squeeze": lambda v: v.unsqueeze(0).squeeze(),
    "squeeze-dim": lambda v: v.unsqueeze(1).squeeze(1),
    "unsqueeze-last": lambda v: v.unsqueeze(-1),
    "expand": lambda v: v[:1].expand(3, 6),
    "index": lambda v: v[1],
    "negative-index": lambda v: v[-1, -2],
    "steps": lambda v: v[::2, 1::2],
    "ellipsis-none": lambda v: v[..., None],
    "contiguous": lambda v: v.T.contiguous(),
}


@pytest.mark.parametrize("op", VIEW_OPS)
def test_views_match_torch(op):
    x = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    t = tb.from_dlpack(x)
    xv, tv = VIEW_OPS[op](x), VIEW_OPS[op](t)
    assert tv.shape == tuple(xv.shape) and tv.size() == tuple(xv.size())
    assert tv.dim() == xv.dim() and tv.ndim == xv.ndim and tv.numel() == xv.numel()
    assert tv.element_size() == xv.element_size() and tv.itemsize == xv.element_size()
    for d in range(xv.dim()):
        assert tv.size(d) == xv.size(d)
        if xv.shape[d] > 1:
            assert tv.stride(d) == xv.stride(d), (d, tv.stride(), xv.stride())
    if xv.dim():
        assert len(tv) == len(xv)
    assert tv.is_contiguous() == xv.is_contiguous()
    assert tv.tolist() == xv.tolist()
    if op == "contiguous":
        assert tv.data_ptr() != t.data_ptr() and xv.data_ptr() != x.data_ptr()
    else:
        assert tv.data_ptr() - t.data_ptr() == xv.data_ptr() - x.data_ptr()


TORCH_SPELLINGS = [
    ("float", "float32"), ("float32", "float32"), ("double", "float64"), ("half", "float16"),
    ("bfloat16", "bfloat16"), ("int", "int32"), ("long", "int64"), ("short", "int16"),
    ("int8", "int8"), ("uint8", "uint8"), ("bool", "bool"), ("cfloat", "complex64"),
    ("complex128", "complex128"),
]


@pytest.mark.parametrize("attr, name", TORCH_SPELLINGS, ids=[f"torch.{a}" for a, _ in TORCH_SPELLINGS])
def test_torch_dtypes_as_dtype_arguments(attr, name):
    spelling = getattr(torch, attr)
    t = tb.tensor([1, 0], dtype=spelling)
    assert t.dtype == name
    i = tb.tensor([1, 0])
    assert i.astype(spelling).dtype == name and i.to(dtype=spelling).dtype == name
    assert i.to(None, spelling).tolist() == t.tolist()
    if error_of(lambda: tud.from_dlpack(tud.to_dlpack(torch.zeros(1, dtype=spelling)))) is None:
        assert torch.from_dlpack(t).dtype == spelling  # torch agrees on the element type
