"""NumPy's own DLPack suite (numpy/_core/tests/test_dlpack.py), adapted so
that tensorbridge is one side of every exchange: NumPy -> tensorbridge and
tensorbridge -> NumPy, with whichever NumPy is installed (2.x exports
versioned capsules, 1.x legacy ones only). NumPy's other door, __array__ /
numpy.asarray, is here too, over every layout and dtype (test_python_api.py
has the argument rules of __array__ and the dtype spellings). Where NumPy
itself cannot do a thing, NumPy is asked first and the test skips with what
NumPy answered."""

import sys

import pytest

np = pytest.importorskip("numpy")

import tensorbridge as tb  # noqa: E402
from frameworks import CapsuleHolder, error_of  # noqa: E402
from dlpack_ctypes import (DLPACK_FLAG_IS_COPIED, DLPACK_FLAG_READ_ONLY,  # noqa: E402
                           Producer, capsule_name, managed_from_capsule)

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]


# ---- what this NumPy can do, asked of NumPy itself ----



NP_VERSION = np.__version__
# A 1.x NumPy raises TypeError on max_version: it makes legacy capsules only.
NP_VERSIONED_ERROR = error_of(lambda: np.arange(1).__dlpack__(max_version=(1, 0)))
NP_VERSIONED = NP_VERSIONED_ERROR is None
NP_BOOL_ERROR = error_of(lambda: np.from_dlpack(np.zeros(2, dtype=bool)))
NP_FROM_DLPACK_COPY_ERROR = error_of(lambda: np.from_dlpack(np.arange(2.0), copy=True))
NP_FROM_DLPACK_DEVICE_ERROR = error_of(lambda: np.from_dlpack(np.arange(2.0), device="cpu"))
NP_ASARRAY_COPY_ERROR = error_of(lambda: np.asarray([1.0], copy=True))


def sample(dtype, n=6):
    return np.arange(n).astype(dtype) if dtype != "bool" else np.arange(n) % 2 == 0


def ptr(a):
    return a.ctypes.data


def first(shape):
    return (0,) * len(shape)


def last(shape):
    return tuple(s - 1 for s in shape)


class LegacyArray(np.ndarray):
    """An ndarray whose __dlpack__ predates DLPack 1.0 (only `stream`), as in
    NumPy's own test: it can only hand out legacy capsules."""

    def __dlpack__(self, stream=None):
        return super().__dlpack__(stream=stream)




class Recorder:
    """Wraps a tensor and records each __dlpack__ call: the keywords the
    consumer passed and what the capsule said when it was handed over."""

    def __init__(self, inner):
        self.inner = inner
        self.seen = []

    def __dlpack__(self, **kwargs):
        cap = self.inner.__dlpack__(**kwargs)
        name = capsule_name(cap)
        m = managed_from_capsule(cap)
        versioned = name == "dltensor_versioned"
        self.seen.append(dict(kwargs=kwargs, name=name,
                              version=(m.version.major, m.version.minor) if versioned else None,
                              flags=m.flags if versioned else None, data=m.dl_tensor.data))
        return cap

    def __dlpack_device__(self):
        return self.inner.__dlpack_device__()


def check_same_view(t, a):
    """A tensor and an array describe the same elements of the same memory."""
    assert t.shape == a.shape and t.ndim == a.ndim
    assert t.dtype == str(a.dtype)
    assert t.itemsize == a.itemsize and t.nbytes == a.nbytes and t.numel() == a.size
    if a.ndim:
        assert len(t) == len(a)
    assert t.tolist() == a.tolist()
    if a.size:
        assert t.data_ptr() == ptr(a)
        for d in range(a.ndim):
            if a.shape[d] > 1:  # any stride is right for an extent of 1
                assert t.strides[d] == a.strides[d] // a.itemsize, (d, t.strides, a.strides)
    assert t.is_contiguous() == a.flags.c_contiguous


# ---- dtypes through both kinds of NumPy producer (NumPy's test_dtype_passthrough) ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["ndarray", "legacy-only"])
def test_numpy_dtypes_through_both_producer_kinds(kind, dtype):
    if dtype == "bool" and NP_BOOL_ERROR:
        pytest.skip(f"NumPy {NP_VERSION} cannot export bool over DLPack: "
                    f"numpy.from_dlpack(a bool array) raises {NP_BOOL_ERROR}")
    a = sample(dtype)
    src = a if kind == "ndarray" else a.view(LegacyArray)
    t = tb.from_dlpack(src)
    assert t.dtype == dtype and t.shape == a.shape
    assert t.data_ptr() == ptr(a) and t.tolist() == a.tolist()
    # A versioned capsule carries the read-only bit; a legacy one cannot, and
    # imports read-only (NumPy's rule for its own legacy imports).
    assert t.readonly == (not (NP_VERSIONED and kind == "ndarray"))
    a[0] = a[1]
    assert t[0].item() == a[1].item()


def test_bool_arrays_share_over_dlpack_or_the_buffer_protocol():
    a = sample("bool")

    class Watch(np.ndarray):
        capsules = []

        def __dlpack__(self, **kwargs):
            cap = super().__dlpack__(**kwargs)
            Watch.capsules.append(capsule_name(cap))
            return cap

    t = tb.from_dlpack(a.view(Watch))
    assert t.dtype == "bool" and t.data_ptr() == ptr(a) and t.tolist() == a.tolist()
    if NP_BOOL_ERROR:
        # NumPy 1.x refuses bool over DLPack; its buffer is shared instead,
        # and a buffer says whether it is writable.
        assert Watch.capsules == [] and not t.readonly
        t[1] = True
        assert bool(a[1]) is True
    else:
        assert Watch.capsules[-1] == ("dltensor_versioned" if NP_VERSIONED else "dltensor")


@pytest.mark.parametrize("source", ["capsule", "legacy-only producer"])
def test_legacy_imports_are_read_only_unless_asked(source):
    a = np.arange(6.0)

    def make():
        return a.__dlpack__() if source == "capsule" else a.view(LegacyArray)

    ro = tb.from_dlpack(make())
    assert ro.readonly and ro.data_ptr() == ptr(a)
    with pytest.raises(ValueError, match="read-only"):
        ro[0] = 1.0
    assert a[0] == 0.0
    a[1] = 10.0
    assert ro[1].item() == 10.0  # still the same memory
    rw = tb.from_dlpack(make(), legacy_writable=True)
    assert not rw.readonly and rw.data_ptr() == ptr(a)
    rw[2] = -1.0
    assert a[2] == -1.0


def test_legacy_writable_never_makes_a_read_only_array_writable():
    a = np.arange(4.0)
    a.flags.writeable = False
    t = tb.from_dlpack(a, legacy_writable=True)
    assert t.readonly and t.data_ptr() == ptr(a)
    if NP_VERSIONED:  # the bare versioned capsule, flag READ_ONLY
        c = tb.from_dlpack(a.__dlpack__(max_version=(1, 0)), legacy_writable=True)
        assert c.readonly and c.data_ptr() == ptr(a)
        w = np.arange(4.0)
        assert not tb.from_dlpack(w.__dlpack__(max_version=(1, 0))).readonly


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_numpy_is_writable_as_torch_from_numpy(dtype):
    a = sample(dtype)
    t = tb.from_numpy(a)
    assert not t.readonly and t.data_ptr() == ptr(a) and t.dtype == dtype
    legacy = tb.from_numpy(a.view(LegacyArray))  # a legacy-only producer, still an ndarray
    assert not legacy.readonly and legacy.data_ptr() == ptr(a)
    t[0] = a[1].item()
    assert a[0] == a[1]
    a.flags.writeable = False
    r = tb.from_numpy(a)
    assert r.readonly and r.data_ptr() == ptr(a)
    with pytest.raises(ValueError, match="read-only"):
        r[0] = a[2].item()


# ---- layouts, both ways (NumPy's test_non_contiguous, test_ndim0, size-1 dims) ----

def _same(fn):
    return (fn, fn)


LAYOUTS = {
    "c-2d": _same(lambda x: x.reshape(4, 6)),
    "row": _same(lambda x: x.reshape(4, 6)[1]),
    "column": _same(lambda x: x.reshape(4, 6)[:, 2]),
    "transposed": _same(lambda x: x.reshape(4, 6).T),
    "transposed-3d": _same(lambda x: x.reshape(2, 3, 4).T),
    "steps": _same(lambda x: x.reshape(4, 6)[::2, 1::3]),
    "negative": _same(lambda x: x.reshape(4, 6)[::-1, ::-2]),
    "negative-1d": _same(lambda x: x[::-3]),
    "permuted-3d": (lambda x: x.reshape(2, 3, 4).transpose(2, 0, 1),
                    lambda t: t.reshape(2, 3, 4).permute(2, 0, 1)),
    "0-d": _same(lambda x: x.reshape(4, 6)[1, 2, ...]),
    "empty-1d": _same(lambda x: x[:0]),
    "empty-3d": _same(lambda x: x.reshape(2, 4, 3)[:, :0, :]),
    "size1-stride3": _same(lambda x: x[::3][:1]),
    "size1-inner": _same(lambda x: x.reshape(4, 6)[:, 2:3]),
    "new-axis": _same(lambda x: x.reshape(4, 6)[:, None, ::2]),
    "broadcast": (lambda x: np.broadcast_to(x[:6], (4, 6)), lambda t: t[:6].expand(4, 6)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_numpy_layouts_to_tensorbridge(layout):
    a = LAYOUTS[layout][0](np.arange(24, dtype=np.int16))
    t = tb.from_dlpack(a)
    check_same_view(t, a)
    assert t.readonly == ((not a.flags.writeable) if NP_VERSIONED else True)
    f = tb.from_numpy(a)
    check_same_view(f, a)
    assert f.readonly == (not a.flags.writeable)
    if a.size and a.flags.writeable:
        a[first(a.shape)] = 1234
        assert t[first(a.shape)].item() == 1234 and f[first(a.shape)].item() == 1234
        f[last(a.shape)] = -7
        assert a[last(a.shape)] == -7


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tensorbridge_layouts_to_numpy(layout):
    t = LAYOUTS[layout][1](tb.tensor(list(range(24)), dtype="int16"))
    a = None
    if t.readonly and not NP_VERSIONED:
        # NumPy 1.x asks for a legacy capsule, which cannot say read-only.
        with pytest.raises(BufferError, match="read-only"):
            np.from_dlpack(t)
    else:
        a = np.from_dlpack(t)
        check_same_view(t, a)
        # NumPy 2.x follows the flag; 1.x imports every DLPack tensor with
        # elements read-only (an empty one comes out as a fresh array).
        if NP_VERSIONED or t.numel():
            assert a.flags.writeable == (NP_VERSIONED and not t.readonly)
    b = np.asarray(t)  # NumPy's other door
    check_same_view(t, b)
    assert b.flags.writeable == (not t.readonly)
    if t.numel() and not t.readonly:
        t[first(t.shape)] = 1234
        assert b[first(t.shape)] == 1234 and (a is None or a[first(t.shape)] == 1234)
        b[last(t.shape)] = -7
        assert t[last(t.shape)].item() == -7


def _size1_byte_strides():
    # NumPy's test_size1dims_arrays: a stride of 4 bytes for an f8 extent of 1.
    return np.ndarray(dtype="f8", shape=(10, 5, 1), strides=(8, 80, 4),
                      buffer=np.arange(125, dtype=np.float64).view(np.uint8), order="F")


def _zero_stride_writable():
    return np.lib.stride_tricks.as_strided(np.arange(4, dtype=np.int16), shape=(3, 4),
                                           strides=(0, 2))


@pytest.mark.parametrize("make", [_size1_byte_strides, _zero_stride_writable],
                         ids=["size1-byte-strides", "zero-stride-writable"])
def test_numpy_only_layouts_to_tensorbridge(make):
    a = make()
    t = tb.from_dlpack(a)
    check_same_view(t, a)
    f = tb.from_numpy(a)
    check_same_view(f, a)
    assert not f.readonly
    a[0, 1] = 99  # with a zero stride, every row sees it
    assert f[0, 1].item() == 99 and t[0, 1].item() == 99
    assert f.tolist() == a.tolist()


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 8, 16, 31, 32])
def test_higher_dims_both_ways(ndim):
    shape = (1,) * ndim
    a = np.full(shape, 3.5)
    t = tb.from_dlpack(a)
    assert t.shape == shape and t.ndim == ndim and t.item() == 3.5
    assert t.data_ptr() == ptr(a)
    b = np.from_dlpack(tb.tensor(2.5, dtype="float64").reshape(shape))
    assert b.shape == shape and b.item() == 2.5


def test_dlpack_device_of_imports_exports_and_views():
    a = np.arange(5)
    t = tb.from_dlpack(a)
    assert t.__dlpack_device__() == (1, 0) == a.__dlpack_device__()
    assert t[::2].__dlpack_device__() == (1, 0) and t.device == "cpu"
    w = tb.from_numpy(a)  # writable on every NumPy, so that 1.x may take it back
    assert np.from_dlpack(w[::2]).__dlpack_device__() == (1, 0)


# ---- copy= and device= (NumPy's test_copy, test_device) ----

@pytest.mark.parametrize("copy", [None, False, True])
def test_copy_numpy_to_tensorbridge(copy):
    a = np.arange(5.0)
    t = tb.from_dlpack(a, copy=copy)
    shares = copy is not True
    assert (t.data_ptr() == ptr(a)) == shares and t.tolist() == a.tolist()
    a[0] = 42.0
    assert (t[0].item() == 42.0) == shares
    if copy:
        assert not t.readonly  # a private copy
        t[1] = -1.0
        assert a[1] == 1.0


@pytest.mark.parametrize("copy", [None, False, True])
def test_copy_tensorbridge_to_numpy(copy):
    if NP_FROM_DLPACK_COPY_ERROR:
        pytest.skip(f"numpy.from_dlpack of NumPy {NP_VERSION} takes no copy= "
                    f"({NP_FROM_DLPACK_COPY_ERROR})")
    t = tb.tensor([0.0, 1.0, 2.0, 3.0], dtype="float64")
    a = np.from_dlpack(t, copy=copy)
    shares = copy is not True
    assert (ptr(a) == t.data_ptr()) == shares and a.tolist() == t.tolist()
    t[0] = 42.0
    assert (a[0] == 42.0) == shares
    assert a.flags.writeable


def test_device_arguments_both_ways():
    a = np.arange(5.0)
    assert tb.from_dlpack(a, device="cpu").data_ptr() == ptr(a)
    assert tb.from_dlpack(a, device=None).data_ptr() == ptr(a)
    with pytest.raises(ValueError):
        tb.from_dlpack(a, device="gpu")  # as numpy.from_dlpack(x, device="gpu")
    t = tb.tensor([1.0, 2.0], dtype="float64")
    cap = t.__dlpack__(dl_device=(1, 0))
    assert tb.from_dlpack(cap).data_ptr() == t.data_ptr()
    if not tb.is_available("rocm"):
        with pytest.raises(BufferError):
            t.__dlpack__(dl_device=(10, 0))  # NumPy's test asks ROCm (10) of a CPU array
    if NP_FROM_DLPACK_DEVICE_ERROR:
        pytest.skip(f"numpy.from_dlpack of NumPy {NP_VERSION} takes no device= "
                    f"({NP_FROM_DLPACK_DEVICE_ERROR})")
    rec = Recorder(t)
    b = np.from_dlpack(rec, device="cpu")
    assert ptr(b) == t.data_ptr() and b.tolist() == [1.0, 2.0]
    assert rec.seen[-1]["kwargs"].get("dl_device") in (None, (1, 0))


# ---- the version NumPy asks for and what it gets ----

@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "read-only"])
@pytest.mark.parametrize("copy", [None, False, True])
def test_numpy_consumer_negotiation(copy, readonly):
    if not NP_VERSIONED:
        pytest.skip(f"NumPy {NP_VERSION} has no versioned capsules "
                    f"(ndarray.__dlpack__(max_version=(1, 0)) raises {NP_VERSIONED_ERROR})")
    if readonly:
        src = np.arange(3.0)
        src.flags.writeable = False
        t = tb.from_numpy(src)
    else:
        t = tb.tensor([0.0, 1.0, 2.0], dtype="float64")
    assert t.readonly == readonly
    rec = Recorder(t)
    a = np.from_dlpack(rec, **({} if copy is None else {"copy": copy}))
    assert len(rec.seen) == 1
    seen = rec.seen[0]
    asked = seen["kwargs"]["max_version"]
    assert asked[0] == 1 and seen["name"] == "dltensor_versioned"
    assert seen["version"] == (1, min(asked[1], 3))
    assert bool(seen["flags"] & DLPACK_FLAG_IS_COPIED) == (copy is True)
    assert bool(seen["flags"] & DLPACK_FLAG_READ_ONLY) == (readonly and copy is not True)
    assert (seen["data"] == t.data_ptr()) == (copy is not True)
    assert a.flags.writeable == (not readonly or copy is True)
    assert a.tolist() == t.tolist()


# ---- capsules are consumed once ----

@pytest.mark.parametrize("versioned", [False, True], ids=["legacy", "versioned"])
def test_numpy_capsule_is_consumed_once_by_tensorbridge(versioned):
    if versioned and not NP_VERSIONED:
        pytest.skip(f"NumPy {NP_VERSION} has no versioned capsules ({NP_VERSIONED_ERROR})")
    a = np.arange(4.0)
    cap = a.__dlpack__(max_version=(1, 0)) if versioned else a.__dlpack__()
    t = tb.from_dlpack(cap)
    assert capsule_name(cap) == ("used_dltensor_versioned" if versioned else "used_dltensor")
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)
    assert t.data_ptr() == ptr(a) and t.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("versioned", [False, True], ids=["legacy", "versioned"])
def test_tensorbridge_capsule_is_consumed_once_by_numpy(versioned):
    t = tb.tensor([1.0, 2.0], dtype="float64")
    cap = t.__dlpack__(max_version=(1, 0)) if versioned else t.__dlpack__()
    if versioned and not NP_VERSIONED:
        why = error_of(lambda: np.from_dlpack(CapsuleHolder(cap)))
        assert why is not None and capsule_name(cap) == "dltensor_versioned"
        pytest.skip(f"NumPy {NP_VERSION} cannot consume a versioned capsule ({why})")
    a = np.from_dlpack(CapsuleHolder(cap))
    assert capsule_name(cap) == ("used_dltensor_versioned" if versioned else "used_dltensor")
    with pytest.raises((ValueError, BufferError, RuntimeError, TypeError)):
        np.from_dlpack(CapsuleHolder(cap))  # NumPy refuses it too
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)
    assert ptr(a) == t.data_ptr() and a.tolist() == [1.0, 2.0]


# ---- lifetime (NumPy's refcount tests) ----

LIFETIME_SOURCES = {
    "ndarray": lambda a: a,
    "legacy-only": lambda a: a.view(LegacyArray),
    "versioned-capsule": lambda a: a.__dlpack__(max_version=(1, 0)),
    "legacy-capsule": lambda a: a.__dlpack__(),
    "memoryview": lambda a: memoryview(a),
}


@pytest.mark.parametrize("source", LIFETIME_SOURCES)
def test_numpy_source_deleted_first(source, collect):
    if source == "versioned-capsule" and not NP_VERSIONED:
        pytest.skip(f"NumPy {NP_VERSION} has no versioned capsules ({NP_VERSIONED_ERROR})")
    a = np.arange(1000.0) * 3
    expect = a.tolist()
    obj = LIFETIME_SOURCES[source](a)
    t = tb.from_dlpack(obj)
    del a, obj
    collect()
    churn = [np.full(1000, -1.0) for _ in range(50)]  # reuse freed memory, if any
    assert t.tolist() == expect and t[::7].tolist() == expect[::7]
    del churn


@pytest.mark.parametrize("door", ["from_dlpack", "asarray"])
def test_tensorbridge_source_deleted_first(door, collect):
    t = tb.tensor([float(i) for i in range(1000)], dtype="float64")
    v = t[::-3]
    expect = v.tolist()
    a = np.from_dlpack(v) if door == "from_dlpack" else np.asarray(v)
    del t, v
    collect()
    churn = [tb.tensor([-1.0] * 1000, dtype="float64") for _ in range(20)]
    assert a.tolist() == expect
    del churn


@pytest.mark.parametrize("kind", ["ndarray", "legacy-only"])
def test_tensorbridge_releases_the_numpy_array(kind, collect):
    a = np.arange(5.0)
    src = a if kind == "ndarray" else a.view(LegacyArray)
    before = sys.getrefcount(src)
    t = tb.from_dlpack(src)
    assert sys.getrefcount(src) > before  # the import holds the producer
    del t
    collect()
    assert sys.getrefcount(src) == before


@pytest.mark.parametrize("max_version", [(0, 0), None, (1, 0), (100, 3)])
def test_tensorbridge_capsule_leaks_no_reference(max_version):
    t = tb.tensor([1.0, 2.0])
    before = sys.getrefcount(t)
    cap = t.__dlpack__(max_version=max_version)
    versioned = max_version is not None and max_version[0] >= 1
    assert capsule_name(cap) == ("dltensor_versioned" if versioned else "dltensor")
    del cap
    assert sys.getrefcount(t) == before


def test_numpy_consumer_releases_tensorbridge_memory(collect):
    buf = bytearray(16)
    t = tb.from_dlpack(buf)
    a = np.from_dlpack(t)
    del t
    collect()
    with pytest.raises(BufferError):
        buf.append(0)  # NumPy's array still holds the export
    if a.flags.writeable:
        a[0] = 7
        assert buf[0] == 7
    del a
    collect()
    buf.append(0)  # released once NumPy let go


@pytest.mark.parametrize("max_version", [None, (1, 0)])
def test_unconsumed_capsule_dies_cleanly_while_an_exception_propagates(max_version, monkeypatch,
                                                                       collect):
    # NumPy's test_dlpack_destructor_exception, with a tensorbridge capsule.
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    buf = bytearray(8)

    def fail():
        cap = tb.from_dlpack(buf).__dlpack__(max_version=max_version)  # noqa: F841
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as info:
        fail()
    del info
    collect()
    assert unraisable == []
    buf.append(0)  # the destructor released the buffer


# ---- NumPy's refusals reach the caller (test_invalid_dtype, byte swapping, strides) ----

_FIELDS = np.dtype([("int", np.int32), ("char", np.int8)])
REFUSED = {
    "field-stride": lambda: np.zeros(5, dtype=_FIELDS)["int"],
    "byteswapped": lambda: np.arange(5, dtype=np.dtype("=i8").newbyteorder()),
    "datetime64": lambda: np.array(["2021-05-27"], dtype="datetime64[D]"),
    "timedelta64": lambda: np.array([1], dtype="timedelta64[s]"),
    "object": lambda: np.array([1, None], dtype=object),
    "bytes": lambda: np.array([b"ab"], dtype="S2"),
    "unicode": lambda: np.array(["ab"]),
    "structured": lambda: np.zeros(3, dtype=_FIELDS),
    "longdouble": lambda: np.zeros(2, dtype=np.longdouble),
}


@pytest.mark.parametrize("case", REFUSED)
def test_numpy_refusals_propagate(case):
    a = REFUSED[case]()
    if case == "longdouble" and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("longdouble is float64 on this machine: NumPy exports it")
    with pytest.raises(BufferError) as own:
        a.__dlpack__()
    with pytest.raises(BufferError) as ours:
        tb.from_dlpack(a)
    chain = [ours.value, ours.value.__cause__, ours.value.__context__]
    assert any(e is not None and str(own.value) in str(e) for e in chain), (
        f"NumPy said {own.value!r}; tensorbridge raised {ours.value!r}")


# ---- __array__ and numpy.asarray ----

@pytest.mark.parametrize("dtype", DTYPES)
def test___array___shares_memory(dtype):
    t = tb.tensor([0, 1, 2, 3, 4, 5], dtype=dtype)
    a = t.__array__()
    assert type(a) is np.ndarray and a.dtype == np.dtype(dtype)
    assert ptr(a) == t.data_ptr() and a.tolist() == t.tolist() and a.flags.writeable
    a[0] = a[1]
    assert t[0].item() == t[1].item()


def test_numpy_asarray_and_array_of_a_tensor():
    t = tb.tensor([1.0, 2.0, 3.0])
    assert ptr(np.asarray(t)) == t.data_ptr()
    assert ptr(np.array(t)) != t.data_ptr()  # numpy.array copies by default
    d = np.asarray(t, dtype=np.float64)
    assert d.dtype == np.float64 and d.tolist() == [1.0, 2.0, 3.0]
    if NP_ASARRAY_COPY_ERROR:  # NumPy 1.x: copy=False means "only if needed"
        assert ptr(np.array(t, copy=False)) == t.data_ptr()
        return
    assert ptr(np.asarray(t, copy=False)) == t.data_ptr()
    assert ptr(np.asarray(t, copy=True)) != t.data_ptr()
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.float64, copy=False)


def test___array___of_a_read_only_tensor_is_read_only():
    t = tb.from_dlpack(bytes(range(8)))
    assert t.readonly
    a = t.__array__()
    assert not a.flags.writeable and ptr(a) == t.data_ptr()
    assert not np.asarray(t).flags.writeable
    c = t.__array__(copy=True)
    assert c.flags.writeable and c.tolist() == list(range(8))


# dtypes NumPy has only through ml_dtypes: (name, DLPack code, bit patterns, values)
EXTENSION = {
    "bfloat16": (4, 16, [0x3F80, 0x4000, 0xBF00], [1.0, 2.0, -0.5]),
    "float8_e4m3fn": (10, 8, [0x38, 0x40, 0xB0], [1.0, 2.0, -0.5]),
    "float8_e5m2": (12, 8, [0x3C, 0x40, 0xB8], [1.0, 2.0, -0.5]),
}


def _extension_tensor(name):
    import ctypes
    code, bits, patterns, _ = EXTENSION[name]
    ctype = ctypes.c_uint16 if bits == 16 else ctypes.c_uint8
    t = tb.from_dlpack(Producer(patterns, ctype=ctype, code=code, bits=bits)).copy()
    assert t.dtype == name
    return t


@pytest.mark.parametrize("name", EXTENSION)
def test_numpy_view_of_dtypes_numpy_lacks(name):
    t = _extension_tensor(name)
    try:
        import ml_dtypes
    except ImportError:
        with pytest.raises(TypeError, match=name):
            np.asarray(t)
        return
    _, bits, patterns, floats = EXTENSION[name]
    a = np.asarray(t)
    assert a.dtype == np.dtype(getattr(ml_dtypes, name)) and a.dtype != np.dtype(object)
    assert ptr(a) == t.data_ptr() and a.shape == (3,)
    assert a.view(np.uint16 if bits == 16 else np.uint8).tolist() == patterns
    assert a.astype(np.float32).tolist() == floats
    a[0] = a[1]
    assert np.asarray(t).astype(np.float32).tolist()[0] == floats[1]
    v = np.asarray(t[::2])
    assert ptr(v) == t.data_ptr() and v.strides == (2 * t.itemsize,)
    assert t.astype(getattr(ml_dtypes, name)).dtype == name  # ml_dtypes' types as dtype arguments


@pytest.mark.parametrize("name", EXTENSION)
def test_an_ml_dtypes_array_comes_back_to_tensorbridge(name):
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="NumPy has no such dtype without "
                                    "ml_dtypes")
    t = _extension_tensor(name)
    a = np.asarray(t)
    assert a.dtype == np.dtype(getattr(ml_dtypes, name))
    for back in (tb.from_numpy(a), tb.from_dlpack(a), tb.asarray(a)):
        assert back.dtype == name and back.data_ptr() == ptr(a) and back.shape == (3,)
        assert not back.readonly


@pytest.mark.parametrize("name", EXTENSION)
def test_from_dlpack_copy_true_of_an_ml_dtypes_array_copies(name):
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="NumPy has no such dtype without "
                                    "ml_dtypes")
    a = np.asarray(_extension_tensor(name))
    shared = tb.from_dlpack(a)
    copied = tb.from_dlpack(a, copy=True)
    assert shared.data_ptr() == ptr(a)
    assert copied.data_ptr() != ptr(a) and copied.dtype == name
    assert copied.view(f"uint{8 * a.dtype.itemsize}").tolist() == \
        a.view(f"u{a.dtype.itemsize}").tolist()


def test_bfloat16_over_dlpack_to_numpy():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="NumPy has no bfloat16 dtype without "
                                    "ml_dtypes")
    why = error_of(lambda: np.from_dlpack(np.zeros(2, dtype=ml_dtypes.bfloat16)))
    if why:
        pytest.skip(f"NumPy {NP_VERSION} cannot move bfloat16 over DLPack even from itself: {why}")
    t = tb.tensor([1.0, -2.0], dtype="bfloat16")
    a = np.from_dlpack(t)
    assert a.dtype == np.dtype(ml_dtypes.bfloat16) and ptr(a) == t.data_ptr()
    assert a.astype(np.float32).tolist() == [1.0, -2.0]
