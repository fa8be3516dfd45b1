""".npy and safetensors files from Python, mapped not read: round trips
against numpy.load / numpy.save and the safetensors package both ways, every
dtype each supports, the mmap modes, zero copy shown by the mapping itself,
and hostile files."""

import gc
import os

import pytest

import tensorbridge as tb

np = pytest.importorskip("numpy")
NUMPY2 = int(np.__version__.split(".")[0]) >= 2

NPY_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128"]
SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 3, 4), (1, 1)]


def sample(dtype, shape):
    n = int(np.prod(shape))
    a = (np.arange(n) % 7).astype(dtype).reshape(shape)
    return a


def mappings_of(path):
    """[(start, end, perms)] of this process's mappings of path."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi, parts[1]))
    return out


def inside_a_mapping(t, path):
    p = t.data_ptr()
    return any(lo <= p < hi for lo, hi, _ in mappings_of(path))


# ---- .npy ----

@pytest.mark.parametrize("dtype", NPY_DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_numpy_save_then_tb_load_maps_the_file(tmp_path, dtype, shape):
    path = tmp_path / "a.npy"
    a = sample(dtype, shape)
    np.save(path, a)
    t = tb.load(path)
    assert t.dtype == dtype and t.shape == shape and t.readonly
    assert t.tolist() == a.tolist()
    if a.size:
        assert inside_a_mapping(t, path)  # the file's pages, not a copy
        # The data starts where NumPy's header ends.
        header = os.path.getsize(path) - a.nbytes
        lo = min(lo for lo, _, _ in mappings_of(path))
        assert t.data_ptr() - lo == header


@pytest.mark.parametrize("dtype", NPY_DTYPES)
@pytest.mark.parametrize("layout", ["c", "transposed", "stepped", "reversed", "broadcast"])
def test_tb_save_then_numpy_load(tmp_path, dtype, layout):
    base = tb.tensor(sample(dtype, (4, 6)))
    t = {"c": base, "transposed": base.T, "stepped": base[::2, 1::2], "reversed": base[::-1, ::-2],
         "broadcast": base[0].expand(3, 6)}[layout]
    path = tmp_path / "b.npy"
    tb.save(path, t)
    a = np.load(path)
    assert a.dtype == np.dtype(dtype) and a.shape == t.shape and a.tolist() == t.tolist()
    assert a.flags.c_contiguous


def test_fortran_order_files_load_as_f_ordered_views(tmp_path):
    path = tmp_path / "f.npy"
    a = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    np.save(path, a)
    t = tb.load(path)
    assert t.tolist() == a.tolist() and t.strides == (1, 3) and not t.is_contiguous()
    assert inside_a_mapping(t, path)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_every_format_version_loads(tmp_path, version):
    path = tmp_path / "v.npy"
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, a, version=version)
    assert tb.load(path).tolist() == a.tolist()


def test_mmap_modes_behave_as_numpy_load(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros(4, dtype=np.int64))
    r = tb.load(path, mmap_mode="r")
    with pytest.raises(ValueError, match="read-only"):
        r[0] = 1
    c = tb.load(path, mmap_mode="c")
    c[0] = 7
    assert c[0].item() == 7 and np.load(path)[0] == 0  # copy-on-write: not in the file
    w = tb.load(path, mmap_mode="r+")
    w[1] = 9
    del w
    gc.collect()
    assert np.load(path).tolist() == [0, 9, 0, 0]  # written through
    m = tb.load(path, mmap_mode=None)  # a copy in fresh memory
    assert not m.readonly and not inside_a_mapping(m, path) and m.tolist() == [0, 9, 0, 0]
    with pytest.raises(ValueError, match="mmap_mode"):
        tb.load(path, mmap_mode="w+")


def test_the_mapping_goes_with_the_last_view(tmp_path):
    path = tmp_path / "g.npy"
    np.save(path, np.arange(1000, dtype=np.float32))
    t = tb.load(path)
    v = t[10:20]
    del t
    gc.collect()
    assert mappings_of(path) and v.tolist() == list(range(10, 20))
    del v
    gc.collect()
    assert mappings_of(path) == []


def test_a_mapped_read_only_tensor_exports_read_only(tmp_path):
    path = tmp_path / "ro.npy"
    np.save(path, np.arange(3.0))
    t = tb.load(path)
    cap = t.__dlpack__(max_version=(1, 0))
    from dlpack_ctypes import DLPACK_FLAG_READ_ONLY, managed_from_capsule
    assert managed_from_capsule(cap).flags & DLPACK_FLAG_READ_ONLY
    if NUMPY2:
        a = np.from_dlpack(t)
        assert not a.flags.writeable and a.ctypes.data == t.data_ptr()


def test_hostile_npy_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file") as info:
        tb.load(tmp_path / "missing.npy")
    assert info.value.errno == 2  # as numpy.load: the OSError subclass of the errno
    with pytest.raises(FileNotFoundError):
        tb.load_safetensors(tmp_path / "missing.safetensors")
    with pytest.raises(OSError, match="not a regular file"):
        tb.load(tmp_path)
    good = tmp_path / "ok.npy"
    np.save(good, np.arange(10, dtype=np.int64))
    data = good.read_bytes()
    cases = {
        "magic": b"\x93NUMPZ" + data[6:],
        "truncated": data[:-8],
        "version": data[:6] + b"\x09\x00" + data[8:],
        "descr": data.replace(b"'<i8'", b"'|O8'") if b"'<i8'" in data else None,
    }
    for what, blob in cases.items():
        if blob is None:
            continue
        bad = tmp_path / f"{what}.npy"
        bad.write_bytes(blob)
        with pytest.raises((ValueError, TypeError)) as info:
            tb.load(bad)
        assert str(info.value), what


def test_big_endian_files_are_refused_with_the_descr_named(tmp_path):
    path = tmp_path / "be.npy"
    np.save(path, np.arange(3, dtype=">i4"))
    with pytest.raises(TypeError, match=">i4"):
        tb.load(path)


# ---- safetensors ----

st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
ST_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
             "float16", "float32", "float64"]


@pytest.mark.parametrize("dtype", ST_DTYPES)
def test_safetensors_package_writes_tb_maps(tmp_path, dtype):
    path = tmp_path / "w.safetensors"
    arrays = {"a": sample(dtype, (3, 4)), "b": sample(dtype, (5,)), "s": sample(dtype, ()),
              "e": sample(dtype, (0, 2))}
    st.save_file(arrays, str(path), metadata={"format": "np", "note": "é"})
    d = tb.load_safetensors(path)
    assert set(d) == set(arrays) and d.metadata == {"format": "np", "note": "é"}
    for name, a in arrays.items():
        t = d[name]
        assert t.dtype == dtype and t.shape == a.shape and t.readonly
        assert t.tolist() == a.tolist()
        if a.size:
            assert inside_a_mapping(t, path)


@pytest.mark.parametrize("dtype", ST_DTYPES)
def test_tb_writes_safetensors_package_reads(tmp_path, dtype):
    path = tmp_path / "t.safetensors"
    base = tb.tensor(sample(dtype, (4, 6)))
    tensors = {"c": base, "strided": base.T[::2], "row": base[1], "zero_d": base[0, 0],
               "empty": base[:0]}
    tb.save_safetensors(path, tensors, metadata={"who": "tensorbridge"})
    back = st.load_file(str(path))
    assert set(back) == set(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == np.dtype(dtype) and back[name].shape == t.shape
        assert back[name].tolist() == t.tolist()
    from safetensors import safe_open
    with safe_open(str(path), "np") as f:
        assert f.metadata() == {"who": "tensorbridge"}


def test_safetensors_bfloat16_and_float8_round_trip(tmp_path):
    path = tmp_path / "bf.safetensors"
    b = tb.tensor([1.0, -2.0, 0.5], dtype="bfloat16")
    f8 = tb.tensor([1, 0x38], dtype="uint8").view("float8_e4m3fn")
    tb.save_safetensors(path, {"b": b, "f8": f8})
    d = tb.load_safetensors(path)
    assert d["b"].dtype == "bfloat16" and d["b"].tolist() == [1.0, -2.0, 0.5]
    assert d["f8"].dtype == "float8_e4m3fn" and d["f8"].view("uint8").tolist() == [1, 0x38]
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    only_bf16 = tmp_path / "b.safetensors"
    tb.save_safetensors(only_bf16, {"b": b})
    back = load_file(str(only_bf16))
    assert back["b"].dtype == torch.bfloat16 and back["b"].tolist() == [1.0, -2.0, 0.5]
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip(f"torch {torch.__version__} has no float8 dtypes to read them back with")
    back = load_file(str(path))
    assert back["f8"].dtype == torch.float8_e4m3fn
    assert back["f8"].view(torch.uint8).tolist() == [1, 0x38]


def test_every_safetensors_entry_keeps_the_one_mapping_alive(tmp_path):
    path = tmp_path / "k.safetensors"
    st.save_file({"x": np.arange(100.0), "y": np.ones(3, np.int32)}, str(path))
    d = tb.load_safetensors(path)
    assert len(mappings_of(path)) >= 1
    y = d["y"]
    del d
    gc.collect()
    assert mappings_of(path) and y.tolist() == [1, 1, 1]
    del y
    gc.collect()
    assert mappings_of(path) == []


@pytest.mark.parametrize("what", ["short", "header_too_long", "not_json", "bad_dtype",
                                  "overlap", "beyond"])
def test_hostile_safetensors_files_are_clear_errors(tmp_path, what):
    import json
    import struct

    def file(header, data=b""):
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + data

    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    blob = {
        "short": b"\x01\x02",
        "header_too_long": struct.pack("<Q", 1 << 40) + b"{}",
        "not_json": struct.pack("<Q", 5) + b"{abc}",
        "bad_dtype": file({"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
        "overlap": file({**good, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                        bytes(12)),
        "beyond": file(good, bytes(4)),
    }[what]
    path = tmp_path / "h.safetensors"
    path.write_bytes(blob)
    with pytest.raises((ValueError, TypeError)) as info:
        tb.load_safetensors(path)
    assert str(info.value)
    if what == "bad_dtype":
        assert "F33" in str(info.value)
    assert mappings_of(path) == []  # nothing stays mapped after a refusal


def test_save_safetensors_refuses_nul_in_names_and_metadata(tmp_path):
    with pytest.raises(ValueError, match="U\\+0000"):
        tb.save_safetensors(tmp_path / "n", {"w\x00hidden": tb.tensor([1.0])})
    with pytest.raises(ValueError, match="U\\+0000"):
        tb.save_safetensors(tmp_path / "n", {"w": tb.tensor([1.0])}, metadata={"k": "a\x00b"})
    assert not (tmp_path / "n").exists()


def test_save_safetensors_checks_its_arguments(tmp_path):
    with pytest.raises(TypeError, match="mapping"):
        tb.save_safetensors(tmp_path / "x", [tb.tensor([1.0])])
    with pytest.raises(TypeError, match="str"):
        tb.save_safetensors(tmp_path / "x", {"a": tb.tensor([1.0])}, metadata={"k": 1})
    with pytest.raises(ValueError, match="__metadata__"):
        tb.save_safetensors(tmp_path / "x", {"__metadata__": tb.tensor([1.0])})
    assert not (tmp_path / "x").exists()
