"""What Python users reach for: dtype spellings and dtype objects, asarray,
__array__ (NumPy 2's protocol, ml_dtypes for the dtypes NumPy lacks),
view(dtype), the sequence protocol, type stubs and docstrings."""

import ast
import gc
import inspect
import os
import subprocess
import sys

import pytest

import tensorbridge as tb
from tensorbridge import _convert, _dtypes

np = pytest.importorskip("numpy")
NUMPY2 = int(np.__version__.split(".")[0]) >= 2
PKG = os.path.dirname(tb.__file__)


# ---- dtype spellings: one rule for every dtype argument ----

SPELLINGS = [
    # names and NumPy / torch words
    ("float32", "float32"), ("float", "float64"), ("double", "float64"), ("half", "float16"),
    ("int", "int64"), ("long", "int64"), ("short", "int16"), ("complex", "complex128"),
    ("bool_", "bool"), ("torch.float", "float32"), ("torch.int", "int32"),
    ("torch.cfloat", "complex64"), ("numpy.float32", "float32"), ("np.int8", "int8"),
    # typestrs and one-letter codes
    ("f4", "float32"), ("<f4", "float32"), ("=f8", "float64"), ("|b1", "bool"), ("i2", "int16"),
    ("<u8", "uint64"), ("c8", "complex64"), ("<c16", "complex128"), ("f2", "float16"),
    ("?", "bool"), ("b", "int8"), ("B", "uint8"), ("h", "int16"), ("i", "int32"), ("q", "int64"),
    ("e", "float16"), ("f", "float32"), ("d", "float64"), ("F", "complex64"), ("D", "complex128"),
    ("|u1", "uint8"), ("|i1", "int8"),
    # Python types
    (bool, "bool"), (int, "int64"), (float, "float64"), (complex, "complex128"),
]


@pytest.mark.parametrize("spelling,name", SPELLINGS, ids=[str(s) for s, _ in SPELLINGS])
def test_every_dtype_argument_takes_every_spelling(spelling, name):
    assert _dtypes.parse(spelling) == name
    t = tb.tensor([1, 0, 1], dtype=spelling)
    assert t.dtype == name and str(t.dtype) == name
    assert tb.tensor([1, 2]).astype(spelling).dtype == name
    assert tb.tensor([1, 2]).to(dtype=spelling).dtype == name
    assert tb.asarray([1, 2], dtype=spelling).dtype == name
    assert tb.dtype(spelling) is getattr(tb, name)


@pytest.mark.parametrize("name", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                                  "uint32", "uint64", "float16", "float32", "float64",
                                  "complex64", "complex128"])
def test_numpy_dtypes_and_scalar_types_are_dtypes(name):
    npdt = np.dtype(name if name != "bool" else "?")
    assert _dtypes.parse(npdt) == name
    assert _dtypes.parse(npdt.type) == name  # np.float32, np.bool_
    assert _dtypes.parse(npdt.str) == name  # "<f4"
    t = tb.tensor([0, 1], dtype=npdt.type)
    # t.dtype compares equal to each NumPy spelling, both ways round.
    assert t.dtype == npdt and npdt == t.dtype
    assert t.dtype == npdt.type and npdt.type == t.dtype
    assert t.dtype == name and name == t.dtype
    assert not (t.dtype != npdt)
    assert np.asarray(t).dtype == npdt


def test_torch_dtypes_are_dtypes():
    torch = pytest.importorskip("torch")
    cases = {torch.float32: "float32", torch.float: "float32", torch.double: "float64",
             torch.half: "float16", torch.bfloat16: "bfloat16", torch.int: "int32",
             torch.long: "int64", torch.bool: "bool", torch.uint8: "uint8",
             torch.complex64: "complex64", torch.cfloat: "complex64"}
    for tdt, name in cases.items():
        assert _dtypes.parse(tdt) == name
        t = tb.tensor([1], dtype=tdt)
        assert t.dtype == tdt and tdt == t.dtype and t.dtype == name


def test_ml_dtypes_are_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        assert _dtypes.parse(getattr(ml_dtypes, name)) == name
        assert _dtypes.parse(np.dtype(getattr(ml_dtypes, name))) == name
        size = np.dtype(getattr(ml_dtypes, name)).itemsize
        t = tb.tensor([1], dtype=f"uint{8 * size}").view(getattr(ml_dtypes, name))
        assert t.dtype == np.dtype(getattr(ml_dtypes, name)) and t.dtype == name


def test_dtype_objects_are_strs_that_hash_as_their_names():
    d = tb.tensor([1.0]).dtype
    assert isinstance(d, str) and isinstance(d, tb.dtype)
    assert d is tb.float32 and d.name == "float32" and d.itemsize == 4
    assert repr(d) == "tensorbridge.float32" and f"{d}" == "float32"
    assert {d: 1}["float32"] == 1 and hash(d) == hash("float32")
    assert d != "float64" and d != np.float64 and d != 3 and d != None  # noqa: E711
    assert d != "not a dtype"
    assert tb.bfloat16.itemsize == 2 and tb.float4_e2m1fn.itemsize == 0


@pytest.mark.parametrize("bad", ["float128", "f3", "x4", "<V2", "", "torch.quint8", object(), 3,
                                 None.__class__])
def test_unknown_dtypes_are_type_errors_that_name_the_value(bad):
    with pytest.raises(TypeError, match="unknown dtype"):
        tb.tensor([1], dtype=bad)
    with pytest.raises(TypeError, match="unknown dtype"):
        tb.dtype(bad)


def test_foreign_byte_order_is_refused_with_a_way_out():
    other = ">" if sys.byteorder == "little" else "<"
    with pytest.raises(TypeError, match="byte order .* is not this machine's"):
        tb.tensor([1], dtype=other + "f4")
    with pytest.raises(TypeError, match="byte order"):
        tb.tensor([1], dtype=np.dtype(other + "i4"))
    # One-byte types have no byte order.
    assert tb.tensor([1], dtype=other + "i1").dtype == "int8"


def test_every_dtype_has_a_module_attribute_and_the_stub_lists_them():
    names = set(tb._tb._dtype_names())
    assert names == set(_dtypes._DTYPES) and len(names) >= 26
    for n in names:
        assert getattr(tb, n) is _dtypes._DTYPES[n]
        assert (n in tb.__all__) == (n != "bool")  # star-imports keep the builtin bool
    ns = {}
    exec("from tensorbridge import *", ns)
    assert "bool" not in ns and ns["float32"] is tb.float32
    # The TYPE_CHECKING block in __init__.py names the same dtypes.
    tree = ast.parse(open(os.path.join(PKG, "__init__.py")).read())
    declared = {node.target.id for node in ast.walk(tree)
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(node.annotation, ast.Name) and node.annotation.id == "dtype"}
    assert declared == names


# ---- asarray (the array API's) ----

def test_asarray_shares_when_it_can():
    t = tb.tensor([1.0, 2.0])
    assert tb.asarray(t) is t
    assert tb.asarray(t, dtype="float32") is t
    assert tb.asarray(t, device="cpu") is t
    a = np.arange(4.0)
    s = tb.asarray(a)
    assert s.data_ptr() == a.ctypes.data
    assert tb.asarray(a, copy=False).data_ptr() == a.ctypes.data
    a[0] = 7.0
    assert s[0].item() == 7.0
    m = memoryview(bytearray(b"abcd"))
    assert tb.asarray(m).tolist() == [97, 98, 99, 100]


def test_asarray_copies_when_asked_or_needed():
    a = np.arange(4.0)
    c = tb.asarray(a, copy=True)
    assert c.data_ptr() != a.ctypes.data and c.tolist() == a.tolist() and not c.readonly
    d = tb.asarray(a, dtype="float32")
    assert d.dtype == "float32" and d.data_ptr() != a.ctypes.data
    t = tb.tensor([1, 2])
    k = tb.asarray(t, copy=True)
    assert k is not t and k.data_ptr() != t.data_ptr()
    assert tb.asarray([1.0, 2.0]).dtype == "float32"  # torch's default for Python floats
    assert tb.asarray(3).dtype == "int64" and tb.asarray(3).ndim == 0


def test_asarray_copy_false_refuses_what_needs_a_copy():
    a = np.arange(4.0)
    with pytest.raises(ValueError, match="copy=False.*float64 -> float32"):
        tb.asarray(a, dtype="float32", copy=False)
    with pytest.raises(ValueError, match="copy=False.*list"):
        tb.asarray([1, 2], copy=False)
    with pytest.raises(ValueError, match="copy must be"):
        tb.asarray(a, copy="no")


def test_asarray_takes_a_bare_capsule():
    t = tb.tensor([1, 2, 3], dtype="int16")
    cap = t.__dlpack__(max_version=(1, 3))
    s = tb.asarray(cap)
    assert s.data_ptr() == t.data_ptr() and s.dtype == "int16"
    t[0] = 7
    assert s[0].item() == 7


# ---- __array__ ----

def test_array_shares_memory_and_read_only_stays_read_only():
    t = tb.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = t.__array__()
    assert a.ctypes.data == t.data_ptr() and a.flags.writeable
    a[0, 0] = 9.0
    assert t[0, 0].item() == 9.0
    ro = t.expand(3, 2, 2)
    r = np.asarray(ro)
    assert not r.flags.writeable and r.strides[0] == 0
    # Strided views keep their strides, in bytes for NumPy.
    v = t.T[::-1]
    assert np.asarray(v).ctypes.data == v.data_ptr()
    assert np.asarray(v).tolist() == v.tolist()


def test_array_copy_and_dtype_follow_numpy2():
    t = tb.tensor([1.0, 2.0], dtype="float32")
    c = t.__array__(copy=True)
    assert c.ctypes.data != t.data_ptr() and c.tolist() == [1.0, 2.0]
    assert t.__array__(copy=False).ctypes.data == t.data_ptr()
    assert t.__array__(np.float32, copy=False).ctypes.data == t.data_ptr()
    d = t.__array__(np.float64)
    assert d.dtype == np.float64 and d.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="copy=False"):
        t.__array__(np.float64, copy=False)
    if NUMPY2:
        assert np.array(t, copy=True).ctypes.data != t.data_ptr()
        assert np.asarray(t, dtype=np.float32).ctypes.data == t.data_ptr()
        with pytest.raises(ValueError):
            np.array(t, dtype=np.float64, copy=False)


def test_array_of_extension_dtypes_through_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        ext = np.dtype(getattr(ml_dtypes, name))
        # The bytes of the values, made by ml_dtypes (float8 has no conversions
        # in the library), reinterpreted as the dtype.
        raw = np.array([[1.0, -2.0], [0.5, 4.0]], dtype=ext).view(f"u{ext.itemsize}")
        t = tb.tensor(raw).view(name)
        a = np.asarray(t)
        assert a.dtype == np.dtype(getattr(ml_dtypes, name)), name
        assert a.ctypes.data == t.data_ptr() and a.shape == (2, 2)
        assert a.astype(np.float32).tolist() == [[1.0, -2.0], [0.5, 4.0]]
        # Never an object array of 0-d tensors.
        assert a.dtype != object
        # Strided and read-only views too.
        v = np.asarray(t.T)
        assert v.ctypes.data == t.data_ptr() and v.astype(np.float32).tolist() == [[1, 0.5], [-2, 4]]


def test_array_of_extension_dtypes_without_ml_dtypes_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_convert, "_ml_dtypes", False)
    t = tb.tensor([1.0], dtype="bfloat16")
    with pytest.raises(TypeError, match="NumPy has no bfloat16 dtype: install ml_dtypes"):
        np.asarray(t)
    with pytest.raises(TypeError, match="NumPy has no bfloat16"):
        t.__array__()


def test_array_of_packed_dtypes_is_a_clear_error():
    import ctypes
    from dlpack_ctypes import Producer
    # Four float4_e2m1fn elements packed in two bytes (DLPack code 17, 4 bits).
    p = Producer((0x21, 0x43), ctype=ctypes.c_uint8, code=17, bits=4, shape=(4,))
    t = tb.from_dlpack(p)
    assert t.dtype == "float4_e2m1fn" and t.itemsize == 0
    with pytest.raises(TypeError, match="packed"):
        np.asarray(t)


def test_array_of_a_device_tensor_says_to_copy_first():
    if not tb.is_available("opencl"):
        pytest.skip("no OpenCL device in this build")
    d = tb.tensor([1.0]).to("opencl")
    with pytest.raises(TypeError, match=r"t\.cpu\(\) first"):
        np.asarray(d)
    assert np.asarray(d.cpu()).tolist() == [1.0]


# ---- view(dtype) ----

def test_view_reinterprets_the_same_memory():
    t = tb.tensor([1.0, -2.0], dtype="float32")
    u = t.view("uint32")
    assert u.data_ptr() == t.data_ptr() and u.shape == t.shape and u.dtype == "uint32"
    assert u.tolist() == np.asarray(t).view(np.uint32).tolist()
    u[0] = 0
    assert t[0].item() == 0.0
    with pytest.raises(TypeError, match="2-byte elements"):
        t.view("int16")
    with pytest.raises(TypeError, match="bool"):
        tb.tensor([1, 2], dtype="uint8").view("bool")
    assert tb.tensor([True]).view("uint8").tolist() == [1]


# ---- the sequence protocol ----

def test_iteration_gives_numbers_for_1d_and_views_for_more():
    t = tb.tensor([[1, 2], [3, 4]], dtype="int16")
    rows = list(t)
    assert all(isinstance(r, tb.Tensor) for r in rows) and rows[1].data_ptr() == t[1].data_ptr()
    assert list(t[0]) == [1, 2] and all(type(x) is int for x in t[0])
    assert isinstance(t[0][0], tb.Tensor)  # indexing still gives a 0-d view
    assert [type(x) for x in tb.tensor([1.5, 2.5])] == [float, float]
    assert list(tb.tensor([True, False])) == [True, False]


def test_torch_tensor_of_a_tensor_goes_through_the_sequence_protocol():
    torch = pytest.importorskip("torch")
    t = tb.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.tensor(t).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert torch.as_tensor(t[:, ::-1]).tolist() == [[2.0, 1.0], [4.0, 3.0]]


# ---- stubs and docstrings ----

def _stub_names(cls_name=None):
    tree = ast.parse(open(os.path.join(PKG, "_tensorbridge.pyi")).read())
    body = tree.body
    if cls_name is not None:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name).body
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_stub_declares_every_public_name_of_the_extension():
    stub = _stub_names("Tensor")
    public = {n for n in dir(tb.Tensor) if not n.startswith("_")} | {
        "__dlpack__", "__dlpack_device__", "__array__", "__dlpack_c_exchange_api__"}
    assert public - stub == set(), "in Tensor, missing from _tensorbridge.pyi"
    assert stub - set(dir(tb.Tensor)) - {"__new__", "__buffer__"} == set(), "stale in the stub"
    mod = {n for n in dir(tb._tb) if not n.startswith("__")} - {"Tensor"}
    assert mod - _stub_names() == set(), "module functions missing from the stub"
    assert os.path.exists(os.path.join(PKG, "py.typed"))


def test_every_public_name_has_a_docstring():
    missing = []
    for name in tb.__all__:
        obj = getattr(tb, name)
        if isinstance(obj, tb.dtype):
            continue
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(name)
    for name, member in inspect.getmembers(tb.Tensor):
        if name.startswith("_") and name not in ("__dlpack__", "__dlpack_device__", "__array__"):
            continue
        if not (getattr(member, "__doc__", None) or "").strip():
            missing.append("Tensor." + name)
    assert missing == []


def test_mypy_accepts_typical_code_and_catches_a_wrong_type(tmp_path):
    pytest.importorskip("mypy")
    good = tmp_path / "good.py"
    good.write_text(
        "import tensorbridge as tb\n"
        "t: tb.Tensor = tb.tensor([[1.0, 2.0]], dtype='float32')\n"
        "n: int = t.size(0)\n"
        "s: tuple[int, ...] = t.shape\n"
        "d: tb.dtype = t.dtype\n"
        "u: tb.Tensor = tb.asarray([1, 2], dtype=tb.int16, copy=None)\n"
        "v: tb.Tensor = t.view('int32').T[0]\n"
        "w: tb.Tensor = tb.from_dlpack(t, legacy_writable=True)\n"
        "c = t.__dlpack__(max_version=(1, 3))\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import tensorbridge as tb\nx: str = tb.tensor([1]).numel()\n")
    # An installed package is found in site-packages (which mypy refuses in
    # MYPYPATH); a source tree on PYTHONPATH through MYPYPATH.
    import site
    env = dict(os.environ)
    if os.path.dirname(PKG) not in site.getsitepackages():
        env["MYPYPATH"] = os.path.dirname(PKG)
    run = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull]
    ok = subprocess.run(run + [str(good)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    no = subprocess.run(run + [str(bad)], capture_output=True, text=True, env=env)
    assert no.returncode == 1 and "Incompatible types in assignment" in no.stdout, no.stdout


def test_garbage_after_array_views_is_collected():
    t = tb.tensor([1.0] * 8)
    a = np.asarray(t)
    del t
    gc.collect()
    assert a.tolist() == [1.0] * 8


# ---- messages speak Python ----

def _failures():
    t = tb.tensor([1.0, 2.0])
    c = tb.tensor([1 + 1j])
    yield lambda: c.astype("float32")
    yield lambda: t.reshape(3)
    yield lambda: t.permute(1)
    yield lambda: t.squeeze(3)
    yield lambda: t.unsqueeze(5)
    yield lambda: t.expand(3)
    yield lambda: t.transpose(0, 3)
    yield lambda: t[5]
    yield lambda: t.view("int16")
    yield lambda: t.expand(2, 2).__setitem__(0, 1.0)
    yield lambda: t.expand(2, 2).__dlpack__()
    yield lambda: t.__dlpack__(stream=0)
    yield lambda: t.__dlpack__(dl_device=(99, 0))
    yield lambda: tb.tensor([1], dtype="f3")
    yield lambda: tb.from_dlpack(object())


def test_error_messages_name_python_calls_not_c_ones():
    seen = 0
    for f in _failures():
        with pytest.raises(Exception) as info:
            f()
        text = str(info.value)
        seen += 1
        assert "TB_" not in text and "tensor_" not in text, text
        assert not text.startswith(("tb_", "to_dlpack")), text
    assert seen == 15


# ---- pickle (by value) ----

@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int64", "float16", "bfloat16",
                                   "float32", "complex128"])
def test_pickle_round_trips_by_value(dtype):
    import pickle
    base = tb.tensor([[1, 0, 2], [3, 1, 0]], dtype=dtype)
    for t in (base, base.T, base[:, ::-2], base[1], base[0, 0]):
        for protocol in (2, pickle.HIGHEST_PROTOCOL):
            u = pickle.loads(pickle.dumps(t, protocol=protocol))
            assert u.dtype is t.dtype and u.shape == t.shape and u.tolist() == t.tolist()
            assert u.data_ptr() != t.data_ptr() and not u.readonly and u.is_contiguous()


def test_pickled_data_that_lies_about_its_size_is_refused():
    import pickle
    good = pickle.dumps(tb.tensor([1.0, 2.0]))
    bad = good.replace(b"\x02\x85", b"\x09\x85")  # shape (2,) -> (9,)
    assert bad != good
    with pytest.raises(ValueError, match="fewer than the shape needs"):
        pickle.loads(bad)
    with pytest.raises(ValueError, match="fewer than the shape needs"):
        tb._tb._new(b"", "float32", (2 ** 62, 2 ** 62))
    # Packed dtypes count their bits: 64 float4 elements need 32 bytes.
    with pytest.raises(ValueError, match="fewer than the shape needs"):
        tb._tb._new(b"", "float4_e2m1fn", (64,))
    with pytest.raises(ValueError, match="fewer than the shape needs"):
        tb._tb._new(bytes(31), "float4_e2m1fn", (64,))
    assert tb._tb._new(bytes(32), "float4_e2m1fn", (64,)).shape == (64,)
