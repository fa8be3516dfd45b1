"""DLPack in both directions at the protocol level: capsules, the standard's
arguments, the capsule rules, deleters, and the C exchange API."""

import ctypes
import gc
import subprocess
import sys
import textwrap
import threading

import pytest

import tensorbridge as tb
from dlpack_ctypes import (BOOL, CPU, CUDA, CUDA_HOST, DLPACK_FLAG_IS_COPIED,
                           DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED, DLPACK_FLAG_READ_ONLY,
                           ExchangeAPI, INT, LegacyOnlyProducer, Producer, capsule_name,
                           capsule_pointer, managed_from_capsule, new_capsule, rename_capsule, DLTensor,
                           DLManagedTensorVersioned, SET_ERROR, FROM_PY, TO_PY, ALLOCATOR,
                           DLTENSOR_FROM_PY, CURRENT_STREAM, ExchangeHeader, DLPackVersion)


MAIA = 17  # a DLPack device type without a backend in this build


def sample():
    return tb.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype="float64")


# ---- export: __dlpack__ ----

def test_versioned_capsule_when_max_version_at_least_1_0():
    t = sample()
    for mv in [(1, 0), (1, 3), (1, 99), (2, 0)]:
        cap = t.__dlpack__(max_version=mv)
        assert capsule_name(cap) == "dltensor_versioned"
    cap_m = t.__dlpack__(max_version=(1, 3))
    m = managed_from_capsule(cap_m)
    assert (m.version.major, m.version.minor) == (1, 3)
    assert m.flags == 0
    dl = m.dl_tensor
    assert dl.data == t.data_ptr() and dl.byte_offset == 0
    assert (dl.device.device_type, dl.device.device_id) == (CPU, 0)
    assert (dl.dtype.code, dl.dtype.bits, dl.dtype.lanes) == (2, 64, 1)
    assert [dl.shape[i] for i in range(dl.ndim)] == [2, 3]
    assert [dl.strides[i] for i in range(dl.ndim)] == [3, 1]


def test_legacy_capsule_without_max_version_or_below_1_0():
    t = sample()
    assert capsule_name(t.__dlpack__()) == "dltensor"
    assert capsule_name(t.__dlpack__(max_version=None)) == "dltensor"
    assert capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"


def test_export_of_a_view_points_at_its_first_element():
    base = sample()
    t = base[:, ::-2]
    cap_dl = t.__dlpack__(max_version=(1, 3))
    dl = managed_from_capsule(cap_dl).dl_tensor
    assert dl.data == t.data_ptr() == base.data_ptr() + 2 * 8 and dl.byte_offset == 0
    assert [dl.strides[i] for i in range(2)] == [3, -2]


def test_read_only_tensor_exports_flag_versioned_and_refuses_legacy():
    ro = tb.from_dlpack(bytes(16))
    cap_m = ro.__dlpack__(max_version=(1, 0))
    m = managed_from_capsule(cap_m)
    assert m.flags & DLPACK_FLAG_READ_ONLY
    with pytest.raises(BufferError, match="read-only"):
        ro.__dlpack__()
    cap_copied = ro.__dlpack__(copy=True)
    copied = managed_from_capsule(cap_copied)  # legacy, a fresh copy
    assert copied.dl_tensor.data != ro.data_ptr()


def test_copy_argument():
    t = sample()
    cap = t.__dlpack__(max_version=(1, 3), copy=True)
    m = managed_from_capsule(cap)
    assert m.flags & DLPACK_FLAG_IS_COPIED and m.dl_tensor.data != t.data_ptr()
    cap2 = t.__dlpack__(max_version=(1, 3), copy=False)
    m = managed_from_capsule(cap2)
    assert m.flags == 0 and m.dl_tensor.data == t.data_ptr()
    with pytest.raises(TypeError):
        t.__dlpack__(copy="yes")


def test_stream_and_dl_device_arguments():
    t = sample()
    assert capsule_name(t.__dlpack__(stream=None, max_version=(1, 3))) == "dltensor_versioned"
    assert capsule_name(t.__dlpack__(stream=-1)) == "dltensor"
    # A CPU tensor has no streams, and says so in the same words for any value.
    for s in (0, 1, 2):
        with pytest.raises(ValueError, match=f"on the CPU has no streams: stream must be None "
                                             rf"\(or -1\), not {s}"):
            t.__dlpack__(stream=s)
    if tb.is_available("opencl"):
        d = tb.tensor([1.0]).to("opencl")
        with pytest.raises(ValueError, match="stream = 0 is ambiguous"):
            d.__dlpack__(stream=0)
    assert capsule_name(t.__dlpack__(dl_device=(CPU, 0), copy=False)) == "dltensor"
    with pytest.raises(BufferError, match="copy=False"):
        t.__dlpack__(dl_device=(CUDA, 0), copy=False)
    with pytest.raises(BufferError, match="maia"):
        t.__dlpack__(dl_device=(MAIA, 0))  # a device this build has no backend for
    with pytest.raises(TypeError):
        t.__dlpack__(1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        t.__dlpack__(version=(1, 0))
    with pytest.raises(TypeError, match="max_version"):
        t.__dlpack__(max_version=1)


def test_capsule_destructor_runs_the_deleter_only_when_unconsumed(collect):
    buf = bytearray(16)
    t = tb.from_dlpack(buf)
    cap = t.__dlpack__(max_version=(1, 3))
    del t
    with pytest.raises(BufferError):
        buf.append(0)  # the capsule still holds the memory
    del cap  # unconsumed: the destructor deletes
    collect()
    buf.append(0)


def test_deleter_runs_without_the_gil_on_another_thread():
    """A consumer on a thread of its own calls the deleter without the GIL;
    the deleter ends in PyBuffer_Release, so it must take the GIL itself."""
    buf = bytearray(32)
    cap = tb.from_dlpack(buf).__dlpack__(max_version=(1, 3))
    m = managed_from_capsule(cap)
    rename_capsule(cap, "used_dltensor_versioned")  # this "consumer" owns it now
    deleter = m.deleter  # a CFUNCTYPE: ctypes releases the GIL around the call
    ptr = ctypes.pointer(m)
    th = threading.Thread(target=deleter, args=(ptr,))
    th.start()
    th.join()
    del cap
    buf.append(0)  # the buffer export was released


def test_deleters_at_interpreter_shutdown():
    code = textwrap.dedent("""
        import threading, time
        import tensorbridge as tb
        buf = bytearray(64)
        keep = [tb.from_dlpack(buf), tb.from_dlpack(buf).__dlpack__(max_version=(1, 3)),
                tb.from_dlpack(memoryview(buf)[::2]).__dlpack__()]
        def hold():
            t = tb.from_dlpack(buf)
            time.sleep(0.2)
            del t
        threading.Thread(target=hold, daemon=True).start()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok" and "Fatal" not in r.stderr


# ---- import: from_dlpack and the capsule rules ----

def test_import_versioned_shares_and_deletes_once(collect):
    p = Producer([1.0, 2.0, 3.0])
    t = tb.from_dlpack(p)
    assert p.calls[0]["max_version"] == (1, 3)
    assert t.data_ptr() == p.address and t.tolist() == [1.0, 2.0, 3.0]
    p.buffer[0] = 9.0
    assert t[0].item() == 9.0
    t[1] = -2.0
    assert p.buffer[1] == -2.0
    v = t[::-1]
    del t
    collect()
    assert p.deleted == 0  # the view keeps it alive
    del v
    collect()
    assert p.deleted == 1


def test_import_legacy_after_type_error(collect):
    p = LegacyOnlyProducer([1.0, 2.0])
    t = tb.from_dlpack(p)
    # A legacy capsule says nothing of read-only: the import is read-only.
    assert len(p.calls) == 1 and t.tolist() == [1.0, 2.0] and t.readonly
    with pytest.raises(ValueError, match="read-only"):
        t[0] = 3.0
    del t
    collect()
    assert p.deleted == 1
    # legacy_writable=True vouches for the memory: writable, the same rules.
    w = tb.from_dlpack(p, legacy_writable=True)
    assert not w.readonly and len(p.calls) == 2
    w[0] = 3.0
    assert w.tolist() == [3.0, 2.0]
    del w
    collect()
    assert p.deleted == 2


@pytest.mark.parametrize("look_up_first", [False, True])
def test_a_changed_producer_class_is_seen_on_the_next_call(collect, look_up_first):
    """from_dlpack remembers what it found on a producer's type (exchange table,
    __dlpack__, legacy or not); changing the class must be noticed at once.
    CPython marks a modified class in two ways over its versions (a cleared
    flag before 3.11, a zero version tag after), and any attribute lookup gives
    it a new tag: both orders are checked."""

    class Changing(Producer):
        pass

    def changed(has_dlpack):
        if look_up_first:
            assert hasattr(p, "__dlpack__") == has_dlpack

    p = Changing([1.0, 2.0])
    assert tb.from_dlpack(p).tolist() == [1.0, 2.0]  # versioned, now remembered
    assert p.calls[-1]["max_version"] == (1, 3)

    # Legacy-only __dlpack__ put on the class: asked without max_version.
    def legacy_dlpack(self, *, stream=None):
        self.calls.append(dict(stream=stream))
        self.versioned, self.name = False, "dltensor"
        return self.capsule()

    Changing.__dlpack__ = legacy_dlpack
    changed(True)
    assert tb.from_dlpack(p).tolist() == [1.0, 2.0]
    assert p.calls[-1] == dict(stream=None)

    # No __dlpack__ at all (nor a buffer): a TypeError, not a stale method.
    del Changing.__dlpack__
    Producer_dlpack = Producer.__dlpack__
    try:
        del Producer.__dlpack__
        changed(False)
        with pytest.raises(TypeError, match="neither DLPack"):
            tb.from_dlpack(p)
    finally:
        Producer.__dlpack__ = Producer_dlpack
    p.versioned, p.name = True, "dltensor_versioned"
    changed(True)
    assert tb.from_dlpack(p).tolist() == [1.0, 2.0]  # the base's method again
    assert p.calls[-1]["max_version"] == (1, 3)
    collect()
    assert p.deleted == 3  # one per import that succeeded


def test_import_honours_read_only_and_is_copied_flags(collect):
    p = Producer(flags=DLPACK_FLAG_READ_ONLY)
    t = tb.from_dlpack(p)
    assert t.readonly
    with pytest.raises(ValueError):
        t[0] = 1.0
    assert memoryview(t).readonly  # and no writable buffer either
    # IS_COPIED with copy=True: the producer's copy is ours; no second copy.
    q = Producer(flags=DLPACK_FLAG_IS_COPIED)
    c = tb.from_dlpack(q, copy=True)
    assert c.data_ptr() == q.address and q.calls[0]["copy"] is True
    del t, c
    collect()
    assert p.deleted == 1 and q.deleted == 1


def test_import_copy_true_copies_and_deletes_at_once(collect):
    p = Producer([5.0, 6.0])
    t = tb.from_dlpack(p, copy=True)
    assert t.data_ptr() != p.address and t.tolist() == [5.0, 6.0]
    collect()
    assert p.deleted == 1  # consumed and released right after the copy


def test_import_honours_byte_offset_and_strides():
    p = Producer([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], shape=(2, 2), strides=(-2, 1), byte_offset=32)
    t = tb.from_dlpack(p)
    assert t.tolist() == [[4.0, 5.0], [2.0, 3.0]]
    assert t.strides == (-2, 1)


def test_import_of_zero_d_and_size_zero():
    assert tb.from_dlpack(Producer([7.0], shape=())).item() == 7.0
    e = tb.from_dlpack(Producer([], shape=(0, 3), data_null=True))
    assert e.shape == (0, 3) and e.numel() == 0


def test_consumed_capsule_is_refused():
    cap = sample().__dlpack__(max_version=(1, 3))
    t = tb.from_dlpack(cap)
    assert capsule_name(cap) == "used_dltensor_versioned"
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)
    legacy = sample().__dlpack__()
    tb.from_dlpack(legacy)
    assert capsule_name(legacy) == "used_dltensor"
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(legacy)
    assert t.shape == (2, 3)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(name="not_a_tensor"), TypeError, "not a DLPack tensor"),
    (dict(version=(2, 0)), BufferError, "version 2.0"),
    (dict(version=(0, 9)), BufferError, "version 0.9"),
    (dict(flags=DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED), BufferError, "flags"),
    (dict(lanes=2), BufferError, "lanes"),
    (dict(code=99), BufferError, "dtype"),
    (dict(code=INT, bits=7), BufferError, "dtype"),
    (dict(code=BOOL, bits=1), BufferError, "dtype"),
    (dict(shape=(4,), strides=None), BufferError, "strides is NULL"),
    (dict(shape=(-1,), strides=(1,)), BufferError, "negative"),
    (dict(strides=(1,), data_null=True), BufferError, "NULL"),
    (dict(device=(99, 0), strides=(1,)), BufferError, "device"),
])
def test_refused_capsules_stay_unconsumed(kwargs, exc, match, collect):
    p = Producer(**kwargs)
    cap = p.capsule()
    with pytest.raises(exc, match=match):
        tb.from_dlpack(cap)
    assert capsule_name(cap) == p.name  # not renamed: still the producer's
    assert p.deleted == 0
    del cap
    collect()
    if p.name != "not_a_tensor":
        assert p.deleted == 1  # the producer's destructor deleted it, once


def test_null_strides_allowed_before_1_2_and_in_legacy():
    p = Producer([1.0, 2.0], shape=(2,), strides=None, version=(1, 1))
    assert tb.from_dlpack(p).tolist() == [1.0, 2.0]
    assert tb.from_dlpack(LegacyOnlyProducer([1.0, 2.0])).strides == (1,)


def test_non_cpu_device_without_backend_is_refused(collect):
    # MAIA: a device type no backend of this build serves, so nothing could
    # read, copy or free its memory: refused, and the capsule stays the producer's.
    p = Producer(device=(MAIA, 0), strides=(1,))
    with pytest.raises(BufferError, match="no maia device is present"):
        tb.from_dlpack(p)
    cap = p.capsule()
    for kwargs in ({}, {"device": "cpu"}):
        with pytest.raises(BufferError, match="maia"):
            tb.from_dlpack(cap, **kwargs)
        assert capsule_name(cap) == "dltensor_versioned"
    with pytest.raises(BufferError, match="copy=False"):
        tb.from_dlpack(cap, device="cpu", copy=False)
    assert capsule_name(cap) == "dltensor_versioned"
    del cap
    collect()
    assert p.deleted == 2  # each capsule's own destructor, once


def test_host_reachable_device_can_be_read():
    t = tb.from_dlpack(Producer([1.0, 2.0], device=(CUDA_HOST, 0), strides=(1,)))
    assert t.device == "cuda_host:0" and t.tolist() == [1.0, 2.0]


def test_from_dlpack_arguments_and_non_producers():
    with pytest.raises(TypeError, match="neither DLPack"):
        tb.from_dlpack(object())
    with pytest.raises(TypeError):
        tb.from_dlpack([1, 2, 3])
    with pytest.raises(TypeError):
        tb.from_dlpack()
    with pytest.raises(TypeError, match="unexpected keyword"):
        tb.from_dlpack(sample(), stream=1)
    with pytest.raises(ValueError, match="unknown device"):
        tb.from_dlpack(sample(), device="tpu")

    class Bad:
        def __dlpack__(self, **kw):
            return "not a capsule"

    with pytest.raises(TypeError, match="not a capsule"):
        tb.from_dlpack(Bad())


def test_device_and_copy_are_passed_to_the_producer():
    p = Producer([1.0])
    tb.from_dlpack(p, device="cpu", copy=False)
    assert p.calls[-1] == dict(stream=None, max_version=(1, 3), dl_device=(1, 0), copy=False)
    tb.from_dlpack(p)
    assert p.calls[-1] == dict(stream=None, max_version=(1, 3), dl_device=None, copy=None)


def test_buffer_protocol_fallback():
    data = bytearray(b"\x01\x02\x03\x04")
    t = tb.from_dlpack(data)
    assert t.dtype == "uint8" and not t.readonly and t.tolist() == [1, 2, 3, 4]
    t[0] = 9
    assert data[0] == 9
    ro = tb.from_dlpack(b"xy")
    assert ro.readonly
    mv = memoryview(bytearray(24)).cast("d")[::-1]
    s = tb.from_dlpack(mv)
    assert s.dtype == "float64" and s.strides == (-1,)
    with pytest.raises(BufferError, match="format"):
        tb.from_dlpack(memoryview(b"abcd").cast("c"))


def test_tensor_round_trip_through_its_own_capsules():
    t = sample()
    for kwargs in [{}, dict(max_version=(1, 3))]:
        back = tb.from_dlpack(t.__dlpack__(**kwargs))
        assert back.data_ptr() == t.data_ptr() and back.tolist() == t.tolist()


# ---- the C exchange API ----

def exchange_table():
    cap = tb.Tensor.__dlpack_c_exchange_api__
    assert capsule_name(cap) == "dlpack_exchange_api"
    addr = ctypes.pythonapi.PyCapsule_GetPointer(cap, b"dlpack_exchange_api")
    return ctypes.cast(addr, ctypes.POINTER(ExchangeAPI)).contents


def test_exchange_table_is_published_on_the_type():
    api = exchange_table()
    assert (api.header.version.major, api.header.version.minor) == (1, 3)
    assert not api.header.prev_api
    assert "__dlpack_c_exchange_api__" in dir(tb.Tensor)


def test_exchange_from_py_and_to_py(collect):
    api = exchange_table()
    t = sample()
    out = ctypes.POINTER(DLManagedTensorVersioned)()
    assert api.managed_tensor_from_py_object_no_sync(t, ctypes.byref(out)) == 0
    m = out.contents
    assert m.dl_tensor.data == t.data_ptr() and m.dl_tensor.ndim == 2
    obj = ctypes.c_void_p()
    assert api.managed_tensor_to_py_object_no_sync(out, ctypes.byref(obj)) == 0
    back = ctypes.cast(obj, ctypes.py_object).value
    ctypes.pythonapi.Py_DecRef(obj)  # the table returned a new reference
    assert isinstance(back, tb.Tensor) and back.data_ptr() == t.data_ptr()
    with pytest.raises(TypeError):
        api.managed_tensor_from_py_object_no_sync(object(), ctypes.byref(out))


def test_exchange_from_py_carries_read_only(collect):
    """The table's from_py marks a read-only tensor READ_ONLY, and a
    writable one not."""
    api = exchange_table()
    for t, read_only in [(tb.from_dlpack(memoryview(bytes(8))), True), (sample(), False)]:
        assert t.readonly == read_only
        out = ctypes.POINTER(DLManagedTensorVersioned)()
        assert api.managed_tensor_from_py_object_no_sync(t, ctypes.byref(out)) == 0
        m = out.contents
        assert m.dl_tensor.data == t.data_ptr()
        assert bool(m.flags & DLPACK_FLAG_READ_ONLY) == read_only
        m.deleter(out)


def test_exchange_dltensor_and_stream():
    api = exchange_table()
    t = sample()[1, ::-1]
    dl = DLTensor()
    assert api.dltensor_from_py_object_no_sync(t, ctypes.byref(dl)) == 0
    assert dl.data == t.data_ptr() and dl.byte_offset == 0 and dl.strides[0] == -1
    stream = ctypes.c_void_p(1234)
    assert api.current_work_stream(CPU, 0, ctypes.byref(stream)) == 0
    assert stream.value is None


def test_exchange_allocator_and_its_errors():
    api = exchange_table()
    shape = (ctypes.c_int64 * 2)(2, 3)
    proto = DLTensor()
    proto.ndim, proto.shape = 2, ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    proto.dtype.code, proto.dtype.bits, proto.dtype.lanes = 2, 32, 1
    proto.device.device_type = CPU
    errors = []
    set_error = SET_ERROR(lambda ctx, kind, msg: errors.append((kind, msg)))
    out = ctypes.POINTER(DLManagedTensorVersioned)()
    assert api.managed_tensor_allocator(ctypes.byref(proto), ctypes.byref(out), None, set_error) == 0
    t = tb.from_dlpack(capsule_for(out))
    assert t.shape == (2, 3) and t.dtype == "float32"
    proto.device.device_type = MAIA
    assert api.managed_tensor_allocator(ctypes.byref(proto), ctypes.byref(out), None, set_error) == -1
    assert errors and b"maia" in errors[0][1]


def capsule_for(ptr):
    """Wraps a DLManagedTensorVersioned* in a capsule without destructor."""
    return new_capsule(ctypes.cast(ptr, ctypes.c_void_p).value, "dltensor_versioned")


def test_from_dlpack_uses_tensorbridge_own_table():
    t = sample()
    s = tb.from_dlpack(t)
    assert s is not t and s.data_ptr() == t.data_ptr()
    s[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    c = tb.from_dlpack(t, copy=True)
    assert c.data_ptr() != t.data_ptr() and c.tolist() == t.tolist()


class TableProducer:
    """A producer whose type publishes an exchange table made in ctypes, and
    whose __dlpack__ must not be called when the table is used."""

    exported = 0

    def __init__(self, inner):
        self.inner = inner

    def __dlpack__(self, **kwargs):
        raise AssertionError("from_dlpack called __dlpack__ although a table exists")


def _table_from_py(obj, out):
    cap = obj.inner.__dlpack__(max_version=(1, 3))
    out[0] = ctypes.cast(capsule_pointer(cap, "dltensor_versioned"),
                         ctypes.POINTER(DLManagedTensorVersioned))
    rename_capsule(cap, "used_dltensor_versioned")  # ownership moves to `out`
    TableProducer.exported += 1
    return 0


_TABLE = ExchangeAPI()
_TABLE.header = ExchangeHeader(DLPackVersion(1, 3), None)
_TABLE.managed_tensor_from_py_object_no_sync = FROM_PY(_table_from_py)
_TABLE_CAPSULE = new_capsule(ctypes.addressof(_TABLE), "dlpack_exchange_api")
TableProducer.__dlpack_c_exchange_api__ = _TABLE_CAPSULE


def test_from_dlpack_uses_a_producers_table():
    t = sample()
    before = TableProducer.exported
    s = tb.from_dlpack(TableProducer(t))
    assert TableProducer.exported == before + 1
    assert s.data_ptr() == t.data_ptr() and s.tolist() == t.tolist()


def test_from_dlpack_accepts_the_older_integer_attribute():
    class IntTableProducer(TableProducer):
        __dlpack_c_exchange_api__ = None
        __c_dlpack_exchange_api__ = ctypes.addressof(_TABLE)

    before = TableProducer.exported
    s = tb.from_dlpack(IntTableProducer(sample()))
    assert TableProducer.exported == before + 1 and s.shape == (2, 3)


def test_table_of_another_major_is_skipped():
    class FutureTable(TableProducer):
        pass

    future = ExchangeAPI()
    future.header = ExchangeHeader(DLPackVersion(2, 0), None)
    FutureTable.__dlpack_c_exchange_api__ = new_capsule(ctypes.addressof(future),
                                                        "dlpack_exchange_api")
    FutureTable._keep = future
    with pytest.raises(AssertionError, match="called __dlpack__"):
        tb.from_dlpack(FutureTable(sample()))  # falls back to __dlpack__



def test_unknown_dl_device_is_a_buffer_error():
    t = tb.tensor([1.0, 2.0])
    with pytest.raises(BufferError, match="dl_device"):
        t.__dlpack__(dl_device=(99, 0))
    with pytest.raises(ValueError):  # malformed, not a device it cannot reach
        t.__dlpack__(dl_device=(1,))


def test_the_producers_dlpack_error_propagates():
    np = pytest.importorskip("numpy")
    a = np.array(["2020-01-01"], dtype="datetime64[D]")
    with pytest.raises(BufferError):
        a.__dlpack__()
    with pytest.raises(BufferError):  # NumPy's own error, not the buffer protocol's ValueError
        tb.from_dlpack(a)


def test_a_read_only_array_still_imports_read_only():
    np = pytest.importorskip("numpy")
    a = np.arange(4, dtype=np.float32)
    a.flags.writeable = False
    t = tb.from_dlpack(a)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises((ValueError, TypeError, BufferError)):
        t[0] = 5



def test_the_answer_is_the_highest_version_not_above_the_consumers():
    t = sample()
    for asked, answered in [((1, 0), (1, 0)), ((1, 2), (1, 2)), ((1, 3), (1, 3)),
                            ((1, 99), (1, 3)), ((2, 0), (1, 3))]:
        cap = t.__dlpack__(max_version=asked)  # keeps the struct alive while read
        m = managed_from_capsule(cap)
        assert (m.version.major, m.version.minor) == answered, asked


def test_what_the_consumers_version_cannot_express_is_refused():
    # float8_e4m3fn (code 10) entered DLPack in 1.1: a 1.0 consumer is refused.
    p = Producer(values=(1, 2, 3, 4), ctype=ctypes.c_uint8, code=10, bits=8)
    t = tb.from_dlpack(p)
    with pytest.raises(BufferError, match=r"DLPack 1\.1.*\(1, 0\)"):
        t.__dlpack__(max_version=(1, 0))
    cap = t.__dlpack__(max_version=(1, 1))
    m = managed_from_capsule(cap)
    assert (m.version.major, m.version.minor) == (1, 1) and m.dl_tensor.dtype.code == 10
