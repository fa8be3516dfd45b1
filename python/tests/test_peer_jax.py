"""JAX's DLPack tests (tests/array_interoperability_test.py and the DLPack
parts of tests/pytorch_interoperability_test.py), adapted so that
tensorbridge is one side of every exchange. JAX asks for and hands out
legacy capsules, takes compact or permuted layouts only, and its arrays are
immutable but share memory. What JAX cannot do is asked of JAX first (with
NumPy, JAX's usual partner, where JAX cannot make the input itself), and the
test skips with JAX's own answer."""

import ctypes

import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # as test_jax.py: 64-bit dtypes stay 64-bit
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402  (JAX depends on it)

import tensorbridge as tb  # noqa: E402
from frameworks import CapsuleHolder, Spy, error_of  # noqa: E402
from dlpack_ctypes import Producer, capsule_name  # noqa: E402

JAX_VERSION = jax.__version__
SHAPES = [(), (4,), (3, 4), (2, 3, 4), (3, 1), (1, 4), (2, 1, 4), (0,), (0, 4), (3, 0), (2, 0, 1)]
ROUND_DTYPES = ["bool", "int8", "uint32", "float16", "bfloat16", "float64", "complex64"]




def _jax_hands_out_versioned():
    try:
        return capsule_name(jnp.zeros(1).__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    except TypeError:
        return False


JAX_VERSIONED = _jax_hands_out_versioned()


def jax_supports(name):
    check = getattr(jax.dlpack, "is_supported_dtype", None)
    if check is not None:
        return bool(check(jnp.dtype(name)))
    return jnp.dtype(name) in {jnp.dtype(d) for d in getattr(jax.dlpack, "SUPPORTED_DTYPES", ())}


def values(name, n):
    if name == "bool":
        return [i % 3 != 0 for i in range(n)]
    if name.startswith("complex"):
        return [complex(i, -i) for i in range(n)]
    if name.startswith("float") or name == "bfloat16":
        return [i * 0.5 - 1.0 for i in range(n)]
    return [i % 7 + 1 for i in range(n)]


def size_of(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def tb_sample(name, shape):
    return tb.tensor(values(name, size_of(shape)), dtype=name).reshape(shape)


def jax_sample(name, shape):
    return jnp.asarray(np.array(values(name, size_of(shape))).reshape(shape), dtype=name)


NEW_VALUE = {"bool": True}  # a value no sample starts with; 6 for the others




def check_same(t, x):
    assert t.shape == x.shape and t.dtype == str(x.dtype) and t.tolist() == x.tolist()
    if x.size:
        assert t.data_ptr() == x.unsafe_buffer_pointer()


# ---- shapes x dtypes, both ways (testJaxArrayRoundTrip, testJaxToNumpy, testNumpyToJax) ----

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ROUND_DTYPES)
def test_jax_to_tensorbridge_shapes(dtype, shape):
    x = jax_sample(dtype, shape)
    t = tb.from_dlpack(x)
    check_same(t, x)
    if not JAX_VERSIONED:
        assert t.readonly  # JAX's capsules are legacy: no read-only bit, so read-only
        with pytest.raises(BufferError, match="read-only"):
            jax.dlpack.from_dlpack(t)  # and JAX asks for legacy capsules only
    w = tb.from_dlpack(x, legacy_writable=True)
    check_same(w, x)
    y = jax.dlpack.from_dlpack(w)  # back to JAX, zero copy where JAX keeps it
    assert y.shape == shape and y.dtype == x.dtype and y.tolist() == x.tolist()
    if x.size and x.unsafe_buffer_pointer() % 64 == 0:
        assert y.unsafe_buffer_pointer() == x.unsafe_buffer_pointer()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ROUND_DTYPES)
def test_tensorbridge_to_jax_shapes(dtype, shape):
    t = tb_sample(dtype, shape)
    y = jax.dlpack.from_dlpack(t)
    z = jax.dlpack.from_dlpack(t)  # more than one array from one tensor
    for v in (y, z):
        assert v.shape == shape and str(v.dtype) == dtype and v.tolist() == t.tolist()
    if t.numel():
        if t.data_ptr() % 64 == 0:
            assert y.unsafe_buffer_pointer() == t.data_ptr()
        if y.unsafe_buffer_pointer() == t.data_ptr():
            idx = (0,) * len(shape)
            t[idx] = NEW_VALUE.get(dtype, 6)
            assert y[idx].item() == t[idx].item()  # JAX reads the shared memory


@pytest.mark.parametrize("dtype", ["int8", "int32", "uint16", "float16", "bfloat16", "float32",
                                   "float64", "complex128"])
def test_imported_buffers_feed_jit_and_come_back(dtype):
    # testTorchToJax's "the result can be passed to a jit computation".
    t = tb_sample(dtype, (2, 3))
    y = jax.dlpack.from_dlpack(t)
    z = jax.jit(lambda v: v * 2 + 1)(y)
    expect = [[v * 2 + 1 for v in row] for row in t.tolist()]
    assert z.tolist() == expect
    back = tb.from_dlpack(z)
    assert back.tolist() == expect and back.data_ptr() == z.unsafe_buffer_pointer()


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2", "int4", "uint4"])
def test_narrow_dtypes_jax_may_not_move(dtype):
    if not hasattr(jnp, dtype):
        pytest.skip(f"JAX {JAX_VERSION} has no jnp.{dtype}")
    if not jax_supports(dtype):
        pytest.skip(f"JAX {JAX_VERSION} does not move {dtype} over DLPack: "
                    f"jax.dlpack.is_supported_dtype({dtype}) is False")
    x = jnp.asarray([1, 2, 3], dtype=dtype)
    t = tb.from_dlpack(x)
    assert t.dtype == dtype and t.shape == (3,) and t.data_ptr() == x.unsafe_buffer_pointer()
    y = jax.dlpack.from_dlpack(tb.from_dlpack(x, copy=True))
    assert y.dtype == x.dtype and (y == x).all()


# ---- layouts (testNondefaultLayout, testTorchToJaxFailure) ----

def _same(fn):
    return (fn, fn)


def _zero_stride(v):
    return np.lib.stride_tricks.as_strided(v[:6], shape=(4, 6), strides=(0, v.itemsize))


LAYOUTS = {
    "transposed": _same(lambda v: v.reshape(4, 6).T),
    "permuted-3d": (lambda a: a.reshape(2, 3, 4).transpose(2, 0, 1),
                    lambda t: t.reshape(2, 3, 4).permute(2, 0, 1)),
    "row": _same(lambda v: v.reshape(4, 6)[2]),
    "column": _same(lambda v: v.reshape(4, 6)[:, 1]),
    "steps": _same(lambda v: v.reshape(4, 6)[::2, ::3]),
    "negative": _same(lambda v: v[::-1]),
    "size1-stride3": _same(lambda v: v[::3][:1]),
    "size1-inner": _same(lambda v: v.reshape(4, 6)[:, 2:3]),
    "new-axis": _same(lambda v: v.reshape(4, 6)[:, None, :]),
    "zero-stride": (_zero_stride, None),  # tensorbridge: from_numpy of NumPy's
    "0-d": _same(lambda v: v.reshape(4, 6)[1, 2, ...]),
    "empty": _same(lambda v: v.reshape(2, 4, 3)[:, :0]),
}


def aligned_like(ptr_value, n, dtype=np.float32):
    """A NumPy arange of n whose address has the same remainder mod 64 as
    ptr_value, so that JAX judges both by the same alignment."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // item + 1, dtype=dtype)
    off = ((ptr_value - raw.ctypes.data) % 64) // item
    a = raw[off:off + n]
    a[...] = np.arange(n)
    assert a.ctypes.data % 64 == ptr_value % 64
    return a


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tensorbridge_layouts_to_jax(layout):
    base = tb.tensor(list(range(24)), dtype="float32")
    np_fn, tb_fn = LAYOUTS[layout]
    a = np_fn(aligned_like(base.data_ptr(), 24))
    t = tb_fn(base) if tb_fn is not None else tb.from_numpy(a)
    assert t.tolist() == a.tolist()
    try:
        ref = jax.dlpack.from_dlpack(a)  # JAX with NumPy, its usual partner
    except Exception as e:
        with pytest.raises(type(e)):
            jax.dlpack.from_dlpack(t)  # refused the same way, not a crash
        pytest.skip(f"JAX {JAX_VERSION} refuses this layout from NumPy too: "
                    f"{type(e).__name__}: {str(e)[:160]}")
    y = jax.dlpack.from_dlpack(t)
    assert y.shape == t.shape and y.tolist() == t.tolist() == ref.tolist()
    if t.numel():
        assert (y.unsafe_buffer_pointer() == t.data_ptr()) == (
            ref.unsafe_buffer_pointer() == a.ctypes.data)


# ---- read-only, copy, device ----

def test_jax_capsules_import_read_only_unless_asked():
    x = jnp.arange(4.0)
    spy = Spy(x)
    t = tb.from_dlpack(spy)
    if spy.capsules[-1] == "dltensor_versioned":
        pytest.skip(f"JAX {JAX_VERSION} hands out versioned capsules")
    assert t.readonly and t.data_ptr() == x.unsafe_buffer_pointer()
    with pytest.raises(ValueError, match="read-only"):
        t[0] = 1.0
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0]
    w = tb.from_dlpack(x, legacy_writable=True)
    assert not w.readonly and w.data_ptr() == x.unsafe_buffer_pointer()


@pytest.mark.parametrize("copy", [None, False, True])
def test_jax_to_tensorbridge_copy_and_device(copy):
    x = jnp.arange(8.0)
    t = tb.from_dlpack(x, device="cpu", copy=copy)
    shares = copy is not True
    assert (t.data_ptr() == x.unsafe_buffer_pointer()) == shares and t.tolist() == x.tolist()
    if copy:
        assert not t.readonly  # a private copy
        t[0] = 5.0
        assert float(x[0]) == 0.0


def test_tensorbridge_to_jax_device():
    cpu = jax.devices("cpu")[0]
    t = tb.tensor([1.0, 2.0, 3.0], dtype="float64")
    y = jax.dlpack.from_dlpack(t, device=cpu)
    assert y.devices() == {cpu} and y.tolist() == [1.0, 2.0, 3.0]
    assert y.unsafe_buffer_pointer() == t.data_ptr()


@pytest.mark.parametrize("copy", [False, True])
def test_tensorbridge_to_jax_copy(copy):
    probe = aligned_like(0, 8, np.float64)
    if jnp.from_dlpack(probe, copy=True).unsafe_buffer_pointer() == probe.ctypes.data:
        pytest.skip(f"JAX {JAX_VERSION}'s jnp.from_dlpack(copy=True) shares memory even with "
                    "an aligned NumPy array (it does not pass copy= to the producer)")
    t = tb.tensor([0.0, 1.0, 2.0, 3.0], dtype="float64")
    y = jnp.from_dlpack(t, copy=copy)
    assert y.tolist() == t.tolist()
    assert (y.unsafe_buffer_pointer() == t.data_ptr()) == (not copy)


# ---- lifetime and single consumption ----

@pytest.mark.parametrize("path", ["array", "capsule"])
def test_jax_source_deleted_first(path, collect):
    x = jnp.arange(1000.0) * 3
    expect = x.tolist()
    src = x if path == "array" else x.__dlpack__()
    t = tb.from_dlpack(src)
    del x, src
    collect()
    churn = [jnp.full(1000, -1.0) + i for i in range(20)]
    assert t.tolist() == expect
    del churn


def test_tensorbridge_source_deleted_first(collect):
    t = tb.tensor([float(i) for i in range(1000)], dtype="float64")
    y = jax.dlpack.from_dlpack(t)
    del t
    collect()
    churn = [tb.tensor([-1.0] * 1000, dtype="float64") for _ in range(20)]
    assert y.tolist() == [float(i) for i in range(1000)]
    assert float(jax.jit(lambda v: v.sum())(y)) == sum(range(1000))
    del churn


def test_jax_releases_tensorbridge_memory(collect):
    buf = bytearray(64)
    t = tb.from_dlpack(buf)
    address = t.data_ptr()
    y = jax.dlpack.from_dlpack(t)
    del t
    collect()
    if y.unsafe_buffer_pointer() == address:  # shared: JAX holds the export
        with pytest.raises(BufferError):
            buf.append(0)
        del y
        collect()
    else:  # JAX copied (alignment): the capsule must already be released
        assert y.tolist() == [0] * 64
    buf.append(0)


def test_jax_capsule_is_consumed_once_by_tensorbridge():
    x = jnp.arange(3.0)
    cap = x.__dlpack__()
    t = tb.from_dlpack(cap)
    assert capsule_name(cap) == "used_dltensor"
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)
    assert t.tolist() == [0.0, 1.0, 2.0]


def test_tensorbridge_capsule_is_consumed_once_by_jax():
    t = tb.tensor([1.0, 2.0])
    cap = t.__dlpack__()
    y = jax.dlpack.from_dlpack(CapsuleHolder(cap))
    assert capsule_name(cap) == "used_dltensor" and y.tolist() == [1.0, 2.0]
    with pytest.raises(Exception, match="at most once"):
        jax.dlpack.from_dlpack(CapsuleHolder(cap))  # JAX's own rule
    with pytest.raises(BufferError, match="already consumed"):
        tb.from_dlpack(cap)


def test_bare_tensorbridge_capsule_to_jax():
    why = error_of(lambda: jax.dlpack.from_dlpack(jnp.arange(2.0).__dlpack__()))
    if why:
        pytest.skip(f"JAX {JAX_VERSION} takes no bare capsules, not even its own: {why}")
    t = tb.tensor([1.0, 2.0])
    y = jax.dlpack.from_dlpack(t.__dlpack__())
    assert y.tolist() == [1.0, 2.0]


def test_versioned_only_producer_to_jax():
    # A producer that answers versioned capsules only, through tensorbridge.
    p = Producer([1.0, 2.0, 3.0], ctype=ctypes.c_double)
    t = tb.from_dlpack(p)
    assert not t.readonly and t.data_ptr() == p.address
    y = jax.dlpack.from_dlpack(t)
    assert y.tolist() == [1.0, 2.0, 3.0]
