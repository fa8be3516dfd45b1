"""TensorFlow <-> tensorbridge: tf.convert_to_tensor (through __array__), and
DLPack both ways through tf.experimental.dlpack (TensorFlow speaks legacy
capsules only). TensorFlow's own behaviour with the same data as a NumPy
array is the oracle wherever the two could differ."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

np = pytest.importorskip("numpy")
tf = pytest.importorskip("tensorflow")

import tensorbridge as tb

# Every dtype both TensorFlow and DLPack have.
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]
to_dlpack = tf.experimental.dlpack.to_dlpack
tf_from_dlpack = tf.experimental.dlpack.from_dlpack


def tf_ptr(x):
    """The address of a CPU tf.Tensor's buffer (np.asarray shares it)."""
    return np.asarray(x).ctypes.data


def values(dtype, shape=(2, 3)):
    n = int(np.prod(shape))
    return tb.tensor(list(range(n)), dtype="int64").astype(dtype).reshape(*shape)


def tf_values(dtype, shape=(2, 3)):
    n = int(np.prod(shape))
    return tf.reshape(tf.cast(tf.range(n), getattr(tf, dtype)), shape)


def as_tf_list(x):
    return [bool(v) if x.dtype == tf.bool else v for v in x.numpy().tolist()]


# ---- tensorbridge -> TensorFlow ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_to_tensorflow_dlpack_zero_copy(dtype):
    t = values(dtype)
    x = tf_from_dlpack(t.__dlpack__())
    assert x.dtype == getattr(tf, dtype) and tuple(x.shape) == t.shape
    assert tf_ptr(x) == t.data_ptr()
    if dtype != "bfloat16":
        assert x.numpy().tolist() == values(dtype).tolist()
    # TensorFlow's tensors are immutable by contract, but the memory is shared:
    # a write through tensorbridge is seen through TensorFlow.
    t[0, 0] = 1
    assert tf.cast(x[0, 0], tf.float64).numpy() == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_to_tensorflow_and_back_is_the_same_memory(dtype):
    t = values(dtype)
    back = tb.from_dlpack(to_dlpack(tf_from_dlpack(t.__dlpack__())))
    assert back.data_ptr() == t.data_ptr() and back.dtype == dtype and back.shape == t.shape
    t[0, 0] = 1
    assert back[0, 0].item() == 1


@pytest.mark.parametrize("layout", ["transposed", "stepped", "reversed"])
def test_strided_tensors_go_to_tensorflow_as_tensorflow_takes_them(layout):
    base = values("float32", (4, 6))
    t = {"transposed": base.T, "stepped": base[:, ::2], "reversed": base[::-1]}[layout]
    # TensorFlow imports only compact row-major DLPack tensors; what it refuses
    # it refuses with an error, not a crash, and contiguous() always goes.
    try:
        x = tf_from_dlpack(t.__dlpack__())
    except Exception as e:  # TensorFlow raises its own InvalidArgumentError
        assert "compact" in str(e).lower() or "stride" in str(e).lower(), e
    else:
        assert x.numpy().tolist() == t.tolist()
    assert tf_from_dlpack(t.contiguous().__dlpack__()).numpy().tolist() == t.tolist()


# ---- TensorFlow -> tensorbridge ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ["capsule", "producer"])
def test_tensorflow_to_tensorbridge_zero_copy_read_only(dtype, route):
    x = tf_values(dtype)
    t = tb.from_dlpack(to_dlpack(x) if route == "capsule" else x)
    assert t.dtype == dtype and t.shape == tuple(x.shape)
    assert t.data_ptr() == tf_ptr(x)
    # A legacy capsule says nothing of read-only, and TensorFlow's tensors are
    # immutable: the import is read-only unless the caller opts in.
    assert t.readonly
    with pytest.raises((ValueError, TypeError, BufferError)):
        t[0, 0] = 1
    if dtype != "bfloat16":
        assert t.tolist() == x.numpy().tolist()


def test_tensorflow_capsule_legacy_writable_opt_in_shares_writes():
    x = tf_values("float32")
    t = tb.from_dlpack(to_dlpack(x), legacy_writable=True)
    assert not t.readonly and t.data_ptr() == tf_ptr(x)
    t[1, 2] = 42.0
    assert x.numpy()[1, 2] == 42.0


def test_tensorflow_capsule_is_consumed_once():
    cap = to_dlpack(tf_values("int32"))
    tb.from_dlpack(cap)
    with pytest.raises((ValueError, TypeError, BufferError)):
        tb.from_dlpack(cap)


def test_tensorflow_tensor_outlives_nothing_it_needs(collect):
    t = tb.from_dlpack(to_dlpack(tf_values("int64", (3, 3))))
    collect()
    assert t.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


# ---- tf.convert_to_tensor, through __array__ ----

@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != "bfloat16"])
def test_convert_to_tensor_matches_numpy(dtype):
    t = values(dtype)
    x = tf.convert_to_tensor(t)
    ref = tf.convert_to_tensor(np.asarray(t))
    assert x.dtype == ref.dtype == getattr(tf, dtype)
    assert x.numpy().tolist() == ref.numpy().tolist()


def test_convert_to_tensor_bfloat16_through_ml_dtypes():
    pytest.importorskip("ml_dtypes")
    t = tb.tensor([1.5, -2.0, 3.25], dtype="bfloat16")
    x = tf.convert_to_tensor(t)
    assert x.dtype == tf.bfloat16
    assert tf.cast(x, tf.float32).numpy().tolist() == [1.5, -2.0, 3.25]


@pytest.mark.parametrize("src,dst", [("float32", "float64"), ("int64", "float32"),
                                     ("int32", "int64"), ("float64", "float16")])
def test_convert_to_tensor_with_dtype_does_what_it_does_for_numpy(src, dst):
    t = values(src)
    ref_exc = got_exc = None
    try:
        ref = tf.convert_to_tensor(np.asarray(t), dtype=getattr(tf, dst))
    except Exception as e:
        ref_exc = type(e)
    try:
        x = tf.convert_to_tensor(t, dtype=getattr(tf, dst))
    except Exception as e:
        got_exc = type(e)
    assert got_exc == ref_exc
    if ref_exc is None:
        assert x.dtype == ref.dtype and x.numpy().tolist() == ref.numpy().tolist()


@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (1, 1)])
def test_convert_to_tensor_edge_shapes(shape):
    t = tb.tensor(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape))
    x = tf.convert_to_tensor(t)
    assert tuple(x.shape) == shape and x.numpy().tolist() == np.asarray(t).tolist()


def test_convert_to_tensor_strided():
    t = values("float64", (4, 6))[::2, ::-3]
    assert tf.convert_to_tensor(t).numpy().tolist() == t.tolist()


def test_tf_constant_and_tf_functions_take_tensors():
    t = values("float32")
    assert tf.reduce_sum(tf.constant(t)).numpy() == 15.0
    assert tf.add(t, 1.0).numpy().tolist() == [[1, 2, 3], [4, 5, 6]]
