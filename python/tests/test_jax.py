"""JAX <-> tensorbridge, both directions (JAX exports and asks for legacy
capsules; it accepts compact or transposed layouts only)."""

import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import tensorbridge as tb  # noqa: E402
from frameworks import Spy  # noqa: E402

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]


def values(dtype, n=6):
    return jnp.arange(n).astype(dtype) if dtype != "bool" else jnp.arange(n) % 2 == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_to_tensorbridge_every_dtype_zero_copy(dtype):
    x = values(dtype)
    t = tb.from_dlpack(x)
    assert t.dtype == dtype and t.shape == x.shape
    assert t.data_ptr() == x.unsafe_buffer_pointer()
    assert t.tolist() == x.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorbridge_to_jax_every_dtype_zero_copy(dtype):
    t = tb.tensor([1, 0, 1, 1], dtype=dtype)
    x = jax.dlpack.from_dlpack(t)
    assert str(x.dtype) == dtype and x.unsafe_buffer_pointer() == t.data_ptr()
    assert x.tolist() == t.tolist()
    t[0] = 0  # JAX arrays are immutable, but the memory is the same
    assert x[0].item() == 0


def test_jax_arrays_import_read_only():
    """JAX arrays are immutable and reach tensorbridge as legacy capsules, which
    cannot say so: the import is read-only, and a write is refused."""
    x = jnp.arange(4.0)
    t = tb.from_dlpack(x)
    assert t.readonly
    with pytest.raises(ValueError, match="read-only"):
        t[0] = 42.0
    assert float(x[0]) == 0.0
    # The caller may vouch otherwise; the memory is then shared writable.
    w = tb.from_dlpack(x, legacy_writable=True)
    assert not w.readonly and w.data_ptr() == t.data_ptr()
    w[0] = 42.0
    assert float(x[0]) == 42.0 and t[0].item() == 42.0


def test_jax_capsule_kinds():
    spy = Spy(jnp.arange(3.0))
    tb.from_dlpack(spy)
    assert spy.capsules[0] == "dltensor"  # legacy, even when max_version is offered
    spy = Spy(tb.tensor([1.0, 2.0]))
    jax.dlpack.from_dlpack(spy)
    assert spy.capsules == ["dltensor"]
    assert "max_version" not in spy.calls[0] or spy.calls[0]["max_version"] is None


@pytest.mark.parametrize("layout", ["0-d", "size-0", "transposed"])
def test_layouts_both_ways(layout):
    base = tb.tensor([[float(i * 4 + j) for j in range(4)] for i in range(3)])
    t = {"0-d": base[1, 2], "size-0": base[:0], "transposed": base.T}[layout]
    x = jax.dlpack.from_dlpack(t)
    assert x.shape == t.shape and x.tolist() == t.tolist()
    back = tb.from_dlpack(x)
    assert back.shape == t.shape and back.tolist() == t.tolist()


@pytest.mark.parametrize("index", [(slice(None), slice(None, None, -1)),
                                   (slice(None), slice(None, None, 2))])
def test_jax_refuses_non_compact_layouts_without_crashing(index):
    t = tb.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[index]
    with pytest.raises(Exception, match="striding|stride"):
        jax.dlpack.from_dlpack(t)
    assert jax.dlpack.from_dlpack(t.contiguous()).tolist() == t.tolist()


def test_read_only_tensor_is_refused_by_legacy_export():
    with pytest.raises(BufferError, match="read-only"):
        jax.dlpack.from_dlpack(tb.from_dlpack(b"ab"))
