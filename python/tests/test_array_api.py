"""The array API standard's rules for from_dlpack, __dlpack__,
__dlpack_device__ and asarray (the 2023.12 and later texts, and the checks
of data-apis/array-api-tests), applied to tensorbridge. The producers are
tensorbridge's own tensors, Python buffers and the hand-made DLPack
producers of dlpack_ctypes, so that no framework is needed; NumPy is used
where it is installed, for the producer side of asarray."""

import array
import ctypes
import enum

import pytest

import tensorbridge as tb
from dlpack_ctypes import (CPU, CUDA_HOST, DLPACK_FLAG_IS_COPIED, DLPACK_FLAG_READ_ONLY,
                           LegacyOnlyProducer, Producer, capsule_name, managed_from_capsule)


def address_of(buf):
    """The address of a writable buffer's first byte."""
    if isinstance(buf, array.array):
        return buf.buffer_info()[0]
    c = (ctypes.c_char * len(buf)).from_buffer(buf)
    try:
        return ctypes.addressof(c)
    finally:
        del c


def sample():
    return tb.tensor([0.0, 1.0, 2.0, 3.0], dtype="float64")


# ---- from_dlpack: copy= over every kind of input ----

class Source:
    """One input of from_dlpack, how to write to it, and where its memory is."""

    def __init__(self, kind):
        self.kind = kind
        if kind in ("tensor", "versioned capsule", "legacy capsule"):
            self.base = sample()
            self.address = self.base.data_ptr()
            self.obj = {"tensor": self.base,
                        "versioned capsule": self.base.__dlpack__(max_version=(1, 3)),
                        "legacy capsule": self.base.__dlpack__()}[kind]
        elif kind in ("versioned producer", "legacy-only producer"):
            cls = Producer if kind == "versioned producer" else LegacyOnlyProducer
            self.base = self.obj = cls([0.0, 1.0, 2.0, 3.0])
            self.address = self.base.address
        else:  # a buffer
            self.base = self.obj = array.array("d", [0.0, 1.0, 2.0, 3.0])
            self.address = address_of(self.base)

    def write(self, i, v):
        if isinstance(self.base, tb.Tensor):
            self.base[i] = v
        elif isinstance(self.base, Producer):
            self.base.buffer[i] = v
        else:
            self.base[i] = v

    @property
    def legacy(self):
        return self.kind in ("legacy capsule", "legacy-only producer")


SOURCES = ["tensor", "versioned capsule", "legacy capsule", "versioned producer",
           "legacy-only producer", "buffer"]


@pytest.mark.parametrize("copy", [None, False, True])
@pytest.mark.parametrize("kind", SOURCES)
def test_from_dlpack_copy_semantics(kind, copy, collect):
    src = Source(kind)
    t = tb.from_dlpack(src.obj, copy=copy)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0] and t.dtype == "float64" and t.device == "cpu"
    shares = copy is not True  # None: share when possible (always here); False: never copy
    assert (t.data_ptr() == src.address) == shares
    src.write(0, 42.0)
    assert (t[0].item() == 42.0) == shares
    if copy:
        assert not t.readonly  # a copy is the consumer's own
        t[1] = -1.0
        assert t[1].item() == -1.0
        if isinstance(src.base, Producer):
            collect()
            assert src.base.deleted == 1  # released right after the copy
    else:
        # A legacy capsule has no read-only bit: it imports read-only.
        assert t.readonly == src.legacy


# ---- from_dlpack: read-only rules ----

def _ro_bytes():
    return tb.from_dlpack(b"\x01\x02\x03\x04")


READ_ONLY_CASES = {
    "versioned writable": (lambda: Producer([1.0, 2.0]), {}, False),
    "versioned READ_ONLY": (lambda: Producer([1.0, 2.0], flags=DLPACK_FLAG_READ_ONLY), {}, True),
    "versioned READ_ONLY, legacy_writable": (
        lambda: Producer([1.0, 2.0], flags=DLPACK_FLAG_READ_ONLY), {"legacy_writable": True}, True),
    "legacy producer": (lambda: LegacyOnlyProducer([1.0, 2.0]), {}, True),
    "legacy producer, legacy_writable": (
        lambda: LegacyOnlyProducer([1.0, 2.0]), {"legacy_writable": True}, False),
    "legacy capsule": (lambda: sample().__dlpack__(), {}, True),
    "legacy capsule, legacy_writable": (lambda: sample().__dlpack__(),
                                        {"legacy_writable": True}, False),
    "versioned capsule": (lambda: sample().__dlpack__(max_version=(1, 0)), {}, False),
    "bytes": (lambda: b"\x00" * 16, {}, True),
    "bytearray": (lambda: bytearray(16), {}, False),
    "read-only memoryview": (lambda: memoryview(bytearray(16)).toreadonly(), {}, True),
    "read-only tensor": (_ro_bytes, {}, True),
    "read-only tensor, legacy_writable": (_ro_bytes, {"legacy_writable": True}, True),
}


@pytest.mark.parametrize("case", READ_ONLY_CASES)
def test_from_dlpack_read_only_rules(case):
    make, kwargs, readonly = READ_ONLY_CASES[case]
    obj = make()
    t = tb.from_dlpack(obj, **kwargs)
    assert t.readonly == readonly
    if readonly:
        with pytest.raises(ValueError, match="read-only"):
            t[0] = 1
        assert memoryview(t).readonly
    else:
        t[0] = 7
        assert t[0].item() == 7
        if isinstance(obj, Producer):
            assert obj.buffer[0] == 7.0  # the write reached the producer's memory


def test_a_legacy_import_made_writable_writes_through():
    p = LegacyOnlyProducer([1.0, 2.0, 3.0])
    t = tb.from_dlpack(p, legacy_writable=True)
    assert t.data_ptr() == p.address and not t.readonly
    t[2] = -3.0
    assert p.buffer[2] == -3.0
    ro = tb.from_dlpack(p)
    assert ro.readonly and ro.data_ptr() == p.address and ro[2].item() == -3.0


# ---- from_dlpack: the consumer's side of version negotiation ----

class KwargsProducer(Producer):
    """A 2023.12 producer that knows max_version but not dl_device/copy."""

    def __dlpack__(self, *, stream=None, max_version=None):
        self.calls.append(dict(stream=stream, max_version=max_version))
        self.versioned = max_version is not None and max_version[0] >= 1
        self.name = "dltensor_versioned" if self.versioned else "dltensor"
        return self.capsule()


def test_producer_without_dl_device_and_copy_keywords():
    p = KwargsProducer([1.0, 2.0, 3.0])
    t = tb.from_dlpack(p)
    assert t.data_ptr() == p.address and not t.readonly
    assert p.calls[-1]["max_version"][0] == 1
    s = tb.from_dlpack(p, device="cpu")  # dl_device= is refused: asked again without it
    assert s.data_ptr() == p.address and s.tolist() == [1.0, 2.0, 3.0]
    c = tb.from_dlpack(p, copy=True)  # copy= is refused: the consumer copies itself
    assert c.data_ptr() != p.address and c.tolist() == [1.0, 2.0, 3.0] and not c.readonly


class Raising:
    """A producer whose __dlpack__ raises exc (counting the calls)."""

    def __init__(self, exc, legacy_exc=None):
        self.exc, self.legacy_exc, self.calls = exc, legacy_exc, []

    def __dlpack__(self, **kwargs):
        self.calls.append(kwargs)
        if "max_version" not in kwargs and self.legacy_exc is not None:
            raise self.legacy_exc
        raise self.exc

    def __dlpack_device__(self):
        return (CPU, 0)


@pytest.mark.parametrize("exc", [BufferError("no export for you"), RuntimeError("device lost"),
                                 ValueError("bad producer state"), MemoryError("out of memory"),
                                 KeyError("odd")], ids=lambda e: type(e).__name__)
def test_the_producers_exception_propagates_unchanged(exc):
    p = Raising(exc)
    with pytest.raises(type(exc)) as info:
        tb.from_dlpack(p)
    assert info.value is exc  # the same object, not a translation
    assert len(p.calls) == 1  # only a TypeError means "try the legacy call"


def test_type_error_means_retry_without_max_version_then_propagates():
    second = TypeError("legacy call failed too")
    p = Raising(TypeError("unexpected keyword argument 'max_version'"), legacy_exc=second)
    with pytest.raises(TypeError) as info:
        tb.from_dlpack(p)
    assert info.value is second
    assert len(p.calls) == 2 and "max_version" in p.calls[0] and "max_version" not in p.calls[1]


def test_copy_false_when_a_copy_is_needed_is_a_buffer_error():
    maia = 17  # a device without a backend here: reaching it needs a copy nobody can make
    p = Producer([1.0, 2.0], device=(maia, 0))
    with pytest.raises(BufferError):
        tb.from_dlpack(p, device="cpu", copy=False)


def test_device_none_keeps_the_producers_device():
    t = tb.from_dlpack(Producer([1.0, 2.0], device=(CUDA_HOST, 0)))
    dev_type, dev_id = t.__dlpack_device__()
    assert (int(dev_type), dev_id) == (CUDA_HOST, 0)
    c = tb.from_dlpack(sample())
    assert tuple(int(v) for v in c.__dlpack_device__()) == (CPU, 0) and c.device == "cpu"


# ---- __dlpack__ and __dlpack_device__ ----

class DeviceType(enum.IntEnum):
    CPU = 1


def test_dl_device_may_be_an_enum_as___dlpack_device___returns():
    t = sample()
    cap = t.__dlpack__(dl_device=(DeviceType.CPU, 0), copy=False, max_version=(1, 0))
    m = managed_from_capsule(cap)
    assert m.dl_tensor.data == t.data_ptr() and not m.flags & DLPACK_FLAG_IS_COPIED
    assert capsule_name(cap) == "dltensor_versioned"


def test___dlpack_device___of_views_and_copies():
    t = sample().reshape(2, 2)
    for v in (t, t.T, t[1], t[::-1, 1], t.copy(), t[0, 0]):
        dev_type, dev_id = v.__dlpack_device__()
        assert int(dev_type) == CPU and dev_id == 0


@pytest.mark.parametrize("max_version, name, version", [
    (None, "dltensor", None), ((0, 9), "dltensor", None), ((1, 0), "dltensor_versioned", (1, 0)),
    ((1, 1), "dltensor_versioned", (1, 1)), ((1, 2), "dltensor_versioned", (1, 2)),
    ((1, 7), "dltensor_versioned", (1, 3))], ids=str)
def test___dlpack___answers_no_newer_than_asked(max_version, name, version):
    t = sample()
    cap = t.__dlpack__(max_version=max_version)
    assert capsule_name(cap) == name
    m = managed_from_capsule(cap)
    if version is not None:
        assert (m.version.major, m.version.minor) == version
    back = tb.from_dlpack(cap)
    assert back.data_ptr() == t.data_ptr() and back.tolist() == t.tolist()


def test___dlpack___copy_true_sets_is_copied_and_owns_its_memory(collect):
    buf = bytearray(8)
    t = tb.from_dlpack(buf)
    cap = t.__dlpack__(max_version=(1, 3), copy=True)
    m = managed_from_capsule(cap)
    assert m.flags & DLPACK_FLAG_IS_COPIED and not m.flags & DLPACK_FLAG_READ_ONLY
    assert m.dl_tensor.data != t.data_ptr()
    del t
    collect()
    buf.append(0)  # the copy does not hold the original


# ---- asarray ----

@pytest.mark.parametrize("obj, dtype, shape", [
    (True, "bool", ()), (3, "int64", ()), (1.5, "float32", ()), (1 + 2j, "complex64", ()),
    ([True, False], "bool", (2,)), ([1, True], "int64", (2,)), ([1, 2.5], "float32", (2,)),
    ([1, 2j], "complex64", (2,)), ([[1, 2], [3, 4]], "int64", (2, 2)),
    ([], "float32", (0,)), ([[], []], "float32", (2, 0)),
], ids=repr)
def test_asarray_infers_dtypes_from_python_scalars(obj, dtype, shape):
    t = tb.asarray(obj)
    assert t.dtype == dtype and t.shape == shape and not t.readonly
    assert t.tolist() == obj


@pytest.mark.parametrize("spelling, name", [
    ("float64", "float64"), ("int16", "int16"), (float, "float64"), (int, "int64"),
    (bool, "bool"), (complex, "complex128"),
], ids=repr)
def test_asarray_dtype_argument(spelling, name):
    t = tb.asarray([1, 0, 1], dtype=spelling)
    assert t.dtype == name and t.tolist() == [1, 0, 1]


def test_python_float_means_float64_but_float_data_defaults_to_float32():
    assert tb.asarray([1.0, 2.0]).dtype == "float32"  # torch's default, for data
    assert tb.asarray([1.0, 2.0], dtype=float).dtype == "float64"  # Python's float, for a dtype
    assert tb.asarray([1j], dtype=complex).dtype == "complex128"


def test_a_tensors_own_dtype_is_a_dtype_argument():
    d = tb.tensor([1.0], dtype="float16").dtype
    assert d == "float16" and str(d) == "float16"
    assert tb.asarray([1, 2], dtype=d).dtype == "float16"
    assert tb.tensor([1, 2], dtype=d).dtype == "float16"


def test_asarray_of_a_tensor_shares_copies_or_refuses():
    x = tb.tensor([1.0, 2.0, 3.0])  # float32
    same = tb.asarray(x)
    assert same.data_ptr() == x.data_ptr()
    assert tb.asarray(x, dtype="float32", copy=False).data_ptr() == x.data_ptr()
    assert tb.asarray(x, device="cpu", copy=False).data_ptr() == x.data_ptr()
    new = tb.asarray(x, copy=True)
    assert new.data_ptr() != x.data_ptr() and new.tolist() == x.tolist()
    x[0] = 9.0  # array-api-tests: after a copy, the source's changes are not seen
    assert new[0].item() == 1.0 and same[0].item() == 9.0
    conv = tb.asarray(x, dtype="float64")
    assert conv.dtype == "float64" and conv.data_ptr() != x.data_ptr()
    assert conv.tolist() == [9.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        tb.asarray(x, dtype="float64", copy=False)
    with pytest.raises(ValueError):
        tb.asarray(x, device="tpu")


@pytest.mark.parametrize("copy", [None, False, True])
def test_asarray_of_a_buffer(copy):
    buf = array.array("d", [1.0, 2.0, 3.0])
    t = tb.asarray(buf, copy=copy)
    assert t.dtype == "float64" and t.tolist() == [1.0, 2.0, 3.0]
    shares = copy is not True
    assert (t.data_ptr() == address_of(buf)) == shares
    buf[0] = 5.0
    assert (t[0].item() == 5.0) == shares
    assert not t.readonly


def test_asarray_of_read_only_and_strided_buffers():
    ro = tb.asarray(b"\x01\x02\x03")
    assert ro.readonly and ro.dtype == "uint8" and ro.tolist() == [1, 2, 3]
    w = tb.asarray(b"\x01\x02\x03", copy=True)
    assert not w.readonly and w.tolist() == [1, 2, 3]
    raw = bytearray(range(8))
    v = tb.asarray(memoryview(raw)[::-2])
    assert v.strides == (-2,) and v.tolist() == [7, 5, 3, 1]
    assert v.data_ptr() == address_of(raw) + 7
    assert tb.asarray(memoryview(raw)[::-2], copy=False).data_ptr() == address_of(raw) + 7
    assert tb.asarray(b"\x01\x02\x03", copy=False).tolist() == [1, 2, 3]  # a buffer: shared
    assert tb.asarray(raw, dtype="uint8", copy=False).data_ptr() == address_of(raw)
    with pytest.raises(ValueError):
        tb.asarray(raw, dtype="int16", copy=False)  # a dtype change needs a copy


def test_asarray_copy_false_refuses_python_sequences_and_scalars():
    for obj in ([1, 2, 3], (1.0, 2.0), 5, [[True]]):
        with pytest.raises(ValueError):
            tb.asarray(obj, copy=False)


@pytest.mark.parametrize("kind", ["versioned producer", "legacy-only producer", "numpy"])
def test_asarray_of_dlpack_producers(kind):
    if kind == "numpy":
        np = pytest.importorskip("numpy")
        obj = np.arange(4.0)
        address = obj.ctypes.data
    else:
        obj = (Producer if kind == "versioned producer" else LegacyOnlyProducer)(
            [0.0, 1.0, 2.0, 3.0])
        address = obj.address
    t = tb.asarray(obj)
    assert t.data_ptr() == address and t.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert tb.asarray(obj, copy=False).data_ptr() == address
    c = tb.asarray(obj, copy=True)
    assert c.data_ptr() != address and not c.readonly and c.tolist() == t.tolist()
    if kind == "legacy-only producer":
        assert t.readonly
    f = tb.asarray(obj, dtype="float32")
    assert f.dtype == "float32" and f.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_asarray_copy_of_a_read_only_tensor_is_writable():
    ro = tb.from_dlpack(bytes(range(4)))
    assert tb.asarray(ro).readonly and tb.asarray(ro).data_ptr() == ro.data_ptr()
    c = tb.asarray(ro, copy=True)
    assert not c.readonly and c.data_ptr() != ro.data_ptr() and c.tolist() == [0, 1, 2, 3]
    f = tb.asarray(ro, dtype="float32")
    assert not f.readonly and f.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_from_dlpack_copy_of_a_read_only_producer_is_writable(collect):
    p = Producer([1.0, 2.0], flags=DLPACK_FLAG_READ_ONLY)
    t = tb.from_dlpack(p, copy=True)
    assert not t.readonly and t.data_ptr() != p.address and t.tolist() == [1.0, 2.0]
    t[0] = 5.0
    assert p.buffer[0] == 1.0
    collect()
    assert p.deleted == 1
