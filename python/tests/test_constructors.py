"""tensor(obj) and Tensor(data) over Python numbers and nested sequences.

These pin the behaviour of the Python implementation (_flatten / _kind in
_convert.py) that the C pass in python/src/sequence.c replaced: shapes, dtype
inference, values, and the type and text of every error. Both paths ask
_kind for leaves that are not exactly bool, int, float or complex: NumPy
scalars by their dtype's kind, then the numbers ABCs, then the conversion
methods.
"""

import decimal
import fractions
import gc
import math
import struct
import sys

import pytest

import tensorbridge as tb

MAX_NDIM = 64  # TB_MAX_NDIM


def nested(depth, leaf=1):
    x = leaf
    for _ in range(depth):
        x = [x]
    return x


# ---- dtype inference: bool < int < float < complex, torch's defaults ----

@pytest.mark.parametrize("data, dtype", [
    ([True, False], "bool"),
    ([1, 2], "int64"),
    ([1.5, 2.0], "float32"),
    ([1j, 2], "complex64"),
    ([True, 2], "int64"),
    ([True, 1.5], "float32"),
    ([1, 2.5], "float32"),
    ([1, 2j], "complex64"),
    ([True, 2j], "complex64"),
    ([1.5, 2j], "complex64"),
    ([[1, 2], [3.0, 4]], "float32"),
    ([[True], [1j]], "complex64"),
])
def test_kind_ranks(data, dtype):
    assert tb.tensor(data).dtype == dtype


def test_mixed_values():
    assert tb.tensor([True, 1.5]).tolist() == [1.0, 1.5]
    assert tb.tensor([1, 2j]).tolist() == [1 + 0j, 2j]
    assert tb.tensor([True, 2]).tolist() == [1, 2]
    assert tb.tensor([False, 2j, 3.5]).tolist() == [0j, 2j, 3.5 + 0j]


def test_zero_dimensional():
    for value, dtype in [(3.5, "float32"), (7, "int64"), (True, "bool"), (1j, "complex64")]:
        t = tb.tensor(value)
        assert t.shape == () and t.ndim == 0 and t.dtype == dtype and t.item() == value
    t = tb.tensor(3.5, dtype="float64")
    assert t.shape == () and t.dtype == "float64"


def test_empty_sequences_are_float32():
    for data, shape in [([], (0,)), ((), (0,)), ([[]], (1, 0)), ([[], []], (2, 0)),
                        ([(), ()], (2, 0)), ([[[]], [[]]], (2, 1, 0))]:
        t = tb.tensor(data)
        assert t.shape == shape and t.dtype == "float32", data
    assert tb.tensor([], dtype="int8").dtype == "int8"


# ---- shapes: lists, tuples, mixed ----

def test_tuples_and_mixed_nesting():
    assert tb.tensor((1, 2, 3)).shape == (3,)
    t = tb.tensor([(1, 2), (3, 4), (5, 6)])
    assert t.shape == (3, 2) and t.tolist() == [[1, 2], [3, 4], [5, 6]]
    t = tb.tensor(([1.5], (2.5,)))
    assert t.shape == (2, 1) and t.tolist() == [[1.5], [2.5]]
    t = tb.tensor([[[1, 2], [3, 4]], ((5, 6), [7, 8])])
    assert t.shape == (2, 2, 2) and t.strides == (4, 2, 1)
    assert t.tolist() == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]


def test_list_and_tuple_subclasses_are_sequences():
    class L(list):
        pass

    class T(tuple):
        pass

    assert tb.tensor(L([1, 2])).tolist() == [1, 2]
    assert tb.tensor([T((1, 2)), L([3, 4])]).tolist() == [[1, 2], [3, 4]]


def test_max_ndim():
    t = tb.tensor(nested(MAX_NDIM, 2.5))
    assert t.shape == (1,) * MAX_NDIM and t.dtype == "float32"
    with pytest.raises(ValueError, match=f"at most {MAX_NDIM} dimensions"):
        tb.tensor(nested(MAX_NDIM + 1))
    with pytest.raises(TypeError, match="str is not numeric data"):
        tb.tensor(nested(MAX_NDIM + 1, "x"))


def test_self_containing_list_raises_recursion_error():
    a = []
    a.append(a)
    with pytest.raises(RecursionError):
        tb.tensor(a)


# ---- values ----

def test_float_values_round_once_to_float32():
    xs = [0.1, -1e-40, 1e39, -1e39, 3.4028235677973366e38, 1 + 2 ** -24, 1 + 3 * 2 ** -24,
          float("inf"), -0.0, 5e-324]
    t = tb.tensor(xs)
    expected = [struct.unpack("f", struct.pack("f", x))[0] if abs(x) < 3.5e38 else
                math.copysign(math.inf, x) for x in xs]
    assert t.tolist() == expected
    assert math.copysign(1, t.tolist()[8]) == -1
    assert math.isnan(tb.tensor([float("nan")]).item())
    assert tb.tensor(xs, dtype="float64").tolist() == xs


def test_int_values_and_int64_limits():
    xs = [0, -1, 2 ** 63 - 1, -2 ** 63, 123456789012345678]
    t = tb.tensor(xs)
    assert t.dtype == "int64" and t.tolist() == xs


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int8",
                                   "uint8", "int32", "bool", "complex64", "complex128"])
def test_explicit_dtype_is_the_library_cast_of_the_packed_data(dtype):
    # ints travel as int64, floats as float64: the result is the library's
    # cast of those, with its single rounding (2^62 + 2^38 + 1 would round
    # twice through double).
    ints = [1, -2, 300, 2 ** 53 + 1, 2 ** 62 + 2 ** 38 + 1, -2 ** 63, 2 ** 63 - 1]
    assert tb.tensor(ints, dtype=dtype).tolist() == tb.tensor(ints).to(dtype).tolist()
    floats = [0.5, -2.75, 1e300, float("nan"), 65520.0, 1 + 2 ** -11 + 2 ** -40, -0.0]
    got = tb.tensor(floats, dtype=dtype).tolist()
    want = tb.tensor(floats, dtype="float64").to(dtype).tolist()
    assert repr(got) == repr(want)
    bools = [True, False, True]
    assert tb.tensor(bools, dtype=dtype).tolist() == tb.tensor(bools).to(dtype).tolist()


def test_explicit_dtypes():
    t = tb.tensor([1, 2], dtype="float16")
    assert t.dtype == "float16" and t.tolist() == [1.0, 2.0]
    assert tb.tensor([1.5, 2.5], dtype=float).dtype == "float64"
    assert tb.tensor([1, 2], dtype=complex).tolist() == [1 + 0j, 2 + 0j]
    assert tb.tensor([0.0, 0.5, float("nan")], dtype="bool").tolist() == [False, True, True]
    assert tb.tensor([1j, 0j], dtype="bool").tolist() == [True, False]
    assert tb.tensor([300], dtype="int8").tolist() == [44]
    assert tb.tensor([float("nan"), 1e30, -1e30], dtype="int32").tolist() == [0, 2 ** 31 - 1,
                                                                                -2 ** 31]
    assert tb.tensor([1.5 - 2j], dtype="complex128").tolist() == [1.5 - 2j]
    with pytest.raises(TypeError, match="discard the imaginary part"):
        tb.tensor([1j], dtype="float32")
    with pytest.raises(TypeError, match="unknown dtype"):
        tb.tensor([1], dtype="float128")


def test_complex_values():
    t = tb.tensor([1 + 2j, -0.5j, 3], dtype="complex128")
    assert t.tolist() == [1 + 2j, -0.5j, 3 + 0j]
    assert tb.tensor([2 ** 70, 1j]).tolist() == [complex(2 ** 70), 1j]


def test_large_flat_and_nested():
    xs = [i * 0.25 - 1000.0 for i in range(100003)]
    assert tb.tensor(xs, dtype="float64").tolist() == xs
    rows = [[i * 7 + j for j in range(300)] for i in range(301)]
    t = tb.tensor(rows)
    assert t.shape == (301, 300) and t.tolist() == rows
    assert tb.tensor([tuple(r) for r in rows]).tolist() == rows


# ---- errors ----

@pytest.mark.parametrize("data, message", [
    ([[1, 2], [3]], "element 1 has shape (1,), element 0 has shape (2,)"),
    ([[1, 2], 3], "element 1 has shape (), element 0 has shape (2,)"),
    ([1, [2]], "element 1 has shape (1,), element 0 has shape ()"),
    ([[[1], [2, 3]], [4]], "element 1 has shape (2,), element 0 has shape (1,)"),
    ([[1], [2], [3, 4]], "element 2 has shape (2,), element 0 has shape (1,)"),
    ([[], [[1]]], "element 1 has shape (1, 1), element 0 has shape (0,)"),
    ([[object()], [1, 2]], "element 1 has shape (2,), element 0 has shape (1,)"),
    ([1.5, 2.5, ()], "element 2 has shape (0,), element 0 has shape ()"),
])
def test_ragged(data, message):
    with pytest.raises(ValueError) as e:
        tb.tensor(data)
    assert str(e.value) == "tensor(): ragged nested sequence: " + message
    with pytest.raises(ValueError) as e:
        tb.Tensor(data)
    assert str(e.value) == "tensor(): ragged nested sequence: " + message


@pytest.mark.parametrize("data, message", [
    (["a"], "tensor(): str is not numeric data"),
    ("abc", "tensor(): str is not numeric data"),
    ([1, b"a"], "tensor(): bytes is not numeric data"),
    ([[1, 2], [3], "a"], "tensor(): str is not numeric data"),  # before the ragged check
    ([None], "tensor(): cannot convert NoneType to a number"),
    (None, "tensor(): cannot convert NoneType to a number"),
    ([[1.5, 2.5], [3.5, object()]], "tensor(): cannot convert object to a number"),
    (range(3), "tensor(): cannot convert range to a number"),
    ([1, {}], "tensor(): cannot convert dict to a number"),
])
def test_non_numeric(data, message):
    with pytest.raises(TypeError) as e:
        tb.tensor(data)
    assert str(e.value) == message


@pytest.mark.parametrize("value", [2 ** 63, 2 ** 64 - 1, 2 ** 70, -2 ** 63 - 1, -10 ** 30])
def test_int_overflow(value):
    with pytest.raises(OverflowError) as e:
        tb.tensor([1, 2, value, 3])
    assert str(e.value).startswith("tensor(): an integer does not fit in int64 (")
    assert e.value.__cause__ is None
    with pytest.raises(OverflowError, match="does not fit in int64"):
        tb.tensor([[True], [value]], dtype="float32")


def test_int_overflow_reported_after_conversion_errors():
    class BadInt:
        def __index__(self):
            raise ZeroDivisionError("bad int")

    with pytest.raises(ZeroDivisionError, match="bad int"):
        tb.tensor([2 ** 70, BadInt()])


def test_int_too_large_for_float_kinds():
    with pytest.raises(OverflowError, match="int too large to convert to float"):
        tb.tensor([1.5, 10 ** 400])
    with pytest.raises(OverflowError, match="int too large to convert to float"):
        tb.tensor([1j, 10 ** 400])
    assert tb.tensor([1.0, 2 ** 63]).tolist() == [1.0, 2.0 ** 63]


# ---- other scalar types: _kind's rules ----

class Index:
    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class Float:
    def __init__(self, v):
        self.v = v

    def __float__(self):
        return self.v


class Complex:
    def __init__(self, v):
        self.v = v

    def __complex__(self):
        return self.v


class IndexWithLen(Float):
    def __index__(self):
        return 1

    def __len__(self):
        return 1


class RaisingAttr:
    def __getattr__(self, name):
        raise KeyError(name)


def test_objects_with_number_methods():
    t = tb.tensor([Index(3), Index(-4)])
    assert t.dtype == "int64" and t.tolist() == [3, -4]
    t = tb.tensor([Float(1.25), 2])
    assert t.dtype == "float32" and t.tolist() == [1.25, 2.0]
    t = tb.tensor([Complex(1 + 1j), 2.5])
    assert t.dtype == "complex64" and t.tolist() == [1 + 1j, 2.5 + 0j]
    t = tb.tensor([IndexWithLen(0.5)])  # __len__: not an int; __float__: a float
    assert t.dtype == "float32" and t.tolist() == [0.5]
    t = tb.tensor([Index(2), 1.5])
    assert t.dtype == "float32" and t.tolist() == [2.0, 1.5]
    assert tb.tensor([Index(2 ** 40)], dtype="float64").tolist() == [2.0 ** 40]
    with pytest.raises(OverflowError, match="does not fit in int64"):
        tb.tensor([Index(2 ** 64)])
    with pytest.raises(KeyError):  # hasattr lets everything but AttributeError through
        tb.tensor([1, RaisingAttr()])


def test_int_and_float_subclasses():
    class I(int):
        pass

    class F(float):
        pass

    t = tb.tensor([I(5), 2])
    assert t.dtype == "int64" and t.tolist() == [5, 2]
    t = tb.tensor([F(0.5)])
    assert t.dtype == "float32" and t.tolist() == [0.5]


def test_fractions_and_decimals_are_real():
    t = tb.tensor([fractions.Fraction(1, 2)])
    assert t.dtype == "float32" and t.tolist() == [0.5]
    t = tb.tensor([decimal.Decimal("1.25"), 2])
    assert t.dtype == "float32" and t.tolist() == [1.25, 2.0]


def test_numpy_scalars():
    np = pytest.importorskip("numpy")
    t = tb.tensor([np.float64(1.5), np.float64(-2)])
    assert t.dtype == "float32" and t.tolist() == [1.5, -2.0]
    t = tb.tensor([np.int32(3), np.int64(-4), np.uint8(200)])
    assert t.dtype == "int64" and t.tolist() == [3, -4, 200]
    t = tb.tensor([np.bool_(True), np.bool_(False)])
    assert t.dtype == "bool" and t.tolist() == [True, False]
    t = tb.tensor([np.bool_(True), 2])
    assert t.dtype == "int64" and t.tolist() == [1, 2]
    t = tb.tensor([np.int16(2), 0.5])
    assert t.dtype == "float32" and t.tolist() == [2.0, 0.5]
    assert tb.tensor(np.float64(2.5)).shape == ()
    # Every NumPy scalar by its dtype's kind (they all have .imag: a rule on
    # attributes once made float32 scalars complex64).
    t = tb.tensor([np.float32(1.5)])
    assert t.dtype == "float32" and t.tolist() == [1.5]
    t = tb.tensor([np.float16(0.5), np.float32(2)])
    assert t.dtype == "float32" and t.tolist() == [0.5, 2.0]
    t = tb.tensor([np.array(3, dtype=np.int16), np.array(2.5, dtype=np.float32)])
    assert t.dtype == "float32" and t.tolist() == [3.0, 2.5]
    t = tb.tensor([np.array(3, dtype=np.uint8)])
    assert t.dtype == "int64" and t.tolist() == [3]
    t = tb.tensor([np.array(True)])
    assert t.dtype == "bool" and t.tolist() == [True]
    t = tb.tensor([np.complex64(1 - 1j)])
    assert t.dtype == "complex64" and t.tolist() == [1 - 1j]
    with pytest.raises(TypeError):  # an array with more than one element
        tb.tensor([np.array([1.0, 2.0])])


# ---- Tensor elements ----

def test_tensors_inside_lists():
    t = tb.tensor([tb.tensor([1, 2]), tb.tensor([3, 4])])
    assert t.shape == (2, 2) and t.dtype == "int64" and t.tolist() == [[1, 2], [3, 4]]
    t = tb.tensor([[1.5, 2.5], tb.tensor([3.5, 4.5])])
    assert t.shape == (2, 2) and t.tolist() == [[1.5, 2.5], [3.5, 4.5]]
    with pytest.raises(ValueError, match="ragged"):
        tb.tensor([tb.tensor([1, 2]), tb.tensor([3])])
    t = tb.tensor([tb.tensor(1), tb.tensor(2)])  # 0-d tensors, as torch takes them
    assert t.shape == (2,) and t.dtype == "int64" and t.tolist() == [1, 2]
    t = tb.tensor([[tb.tensor(1.5)], [2]])
    assert t.shape == (2, 1) and t.dtype == "float32" and t.tolist() == [[1.5], [2.0]]


# ---- Tensor(data) ----

def test_Tensor_data_is_float32():
    for data, values in [([1, 2], [1.0, 2.0]), ([True], [1.0]), ([[0.0, 2]], [[0.0, 2.0]]),
                         ((1, 2.5), [1.0, 2.5]), ([[1], [2]], [[1.0], [2.0]])]:
        t = tb.Tensor(data)
        assert t.dtype == "float32" and t.tolist() == values
    t = tb.Tensor(3.5)
    assert t.shape == () and t.dtype == "float32"
    assert tb.Tensor([]).shape == (0,)
    assert tb.Tensor([[1, 2]], device="cpu").tolist() == [[1.0, 2.0]]
    assert tb.Tensor([2 ** 62 + 2 ** 38 + 1]).tolist() == tb.tensor([2 ** 62 + 2 ** 38 + 1]).to(
        "float32").tolist()
    with pytest.raises(TypeError, match="discard the imaginary part"):
        tb.Tensor([1j])
    with pytest.raises(TypeError, match="str is not numeric data"):
        tb.Tensor(["a"])
    with pytest.raises(OverflowError, match="does not fit in int64"):
        tb.Tensor([2 ** 64])


# ---- robustness: no leaks, no crash when a leaf's methods mutate the data ----

def test_no_reference_leaks_on_success_and_errors():
    if not hasattr(sys, "getrefcount"):
        pytest.skip("no sys.getrefcount")
    big, f, i, obj = 2 ** 70, Float(2.5), Index(3), object()
    rows = [[1.5, 2.5], [3.5, 4.5]]
    cases = [
        ([f, 1], None), ([i, i], None), ([[f], [i]], None), (rows, None), ((rows[0], rows[1]), None),
        ([1, 2, big], OverflowError), ([i, big], OverflowError), ([1.5, obj], TypeError),
        ([[f], [f, f]], ValueError), ([[f], rows], ValueError), ([f, "s"], TypeError),
    ]
    watched = [big, f, i, obj, rows, rows[0]]
    for data, error in cases:
        for _ in range(3):  # warm up caches
            try:
                tb.tensor(data)
            except Exception:
                pass
        gc.collect()
        before = [sys.getrefcount(x) for x in watched]
        for _ in range(50):
            if error is None:
                tb.tensor(data)
                tb.Tensor(data)
            else:
                with pytest.raises(error):
                    tb.tensor(data)
        gc.collect()
        assert [sys.getrefcount(x) for x in watched] == before, data


class Mutating:
    """A leaf whose conversion clears the list holding it."""

    def __init__(self, victim, v=1.0):
        self.victim, self.v = victim, v

    def __float__(self):
        self.victim.clear()
        self.victim.extend([None] * 3)
        return self.v


def test_leaves_that_mutate_the_sequence_do_not_crash():
    for _ in range(20):
        row = [1.5, 2.5]
        row.insert(1, Mutating(row))
        try:
            t = tb.tensor([row, [1.0, 2.0, 3.0]])
        except (TypeError, ValueError):
            pass
        else:
            assert t.shape in ((2, 3),)
        row = [1.5]
        row.append(Mutating(row))
        row.extend([2.5] * 100)
        try:
            tb.tensor(row)
        except (TypeError, ValueError):
            pass


# ---- the C pass against the Python reference, on random input ----

def _outcome(fn, data, dtype):
    try:
        t = fn(data, dtype)
    except Exception as e:  # the type and text must match too
        return ("error", type(e).__name__, str(e))
    return ("ok", t.dtype, t.shape, repr(t.tolist()))


def _random_leaf(rng, np):
    choices = [
        lambda: rng.random() * 10 - 5, lambda: rng.randrange(-100, 100),
        lambda: rng.choice([True, False]), lambda: complex(rng.random(), -1.5),
        lambda: rng.choice([2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 64, 10 ** 400]),
        lambda: rng.choice([float("inf"), -0.0, 1e300, 2.0 ** -1074]),
        lambda: Index(rng.randrange(-5, 5)), lambda: Float(0.25), lambda: Complex(1j),
        lambda: fractions.Fraction(1, 3),
    ]
    if np is not None:
        choices += [lambda: np.float64(1.25), lambda: np.int32(-7), lambda: np.bool_(True)]
    if rng.random() < 0.03:
        return rng.choice([None, "s", b"b", object(), tb.tensor([1, 2]), (), []])
    return rng.choice(choices)()


def _random_data(rng, np, shape, kinds):
    if not shape:
        return rng.choice(kinds)()
    n = shape[0] if rng.random() > 0.03 else shape[0] + rng.choice([-1, 1])
    items = [_random_data(rng, np, shape[1:], kinds) for _ in range(max(n, 0))]
    return items if rng.random() < 0.7 else tuple(items)


def test_c_pass_matches_the_python_reference():
    import random

    from tensorbridge import _convert

    try:
        import numpy as np
    except ImportError:
        np = None
    rng = random.Random(1234)
    for _ in range(600):
        shape = [rng.randrange(0, 4) for _ in range(rng.randrange(0, 4))]
        pool = [lambda: _random_leaf(rng, np)]
        if rng.random() < 0.5:  # mostly one kind, the common case
            leaf = _random_leaf(rng, np)
            pool = [lambda leaf=leaf: leaf] * 30 + pool
        data = _random_data(rng, np, shape, pool)
        dtype = rng.choice([None, None, "float32", "float64", "int8", "bool", "complex64",
                            "float16"])
        assert _outcome(_convert._from_sequence, data, dtype) == \
            _outcome(_convert._from_sequence_py, data, dtype), (data, dtype)
        if dtype is None and not isinstance(data, int):  # Tensor(int) is Tensor(*sizes)
            # Tensor(data) is tensor(data, dtype="float32"), producers included
            assert _outcome(lambda d, _: tb.Tensor(d), data, None) == \
                _outcome(tb.tensor, data, "float32"), data
