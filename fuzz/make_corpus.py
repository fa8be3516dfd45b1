#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_dlpack_import into fuzz/corpus/.

Each seed is one producer struct in the byte format that decode() in
fuzz_dlpack_import.c reads; this script is the format's second reader's
twin, so keep the two in step. Run it from anywhere:

    python3 fuzz/make_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# Same order as k_special in the C source.
SPECIAL = [
    INT64_MAX, INT64_MIN, INT64_MAX // 2, 1 << 31, 1 << 32, 1 << 40, 1 << 62, -(1 << 62),
    INT64_MAX - 1, 1 << 20, 1 << 30, -(1 << 20), 2**31 - 1, 2**32 - 1, 1 << 61, -(1 << 61),
]

DATA_BUFFER, DATA_NULL, DATA_RAW, DATA_MISALIGNED = range(4)
LAYOUT_ANY, LAYOUT_C, LAYOUT_F = range(3)
COPY_IF_NEEDED, COPY_ALWAYS, COPY_NEVER = range(3)
ALIGNMENTS = [0, 1, 16, 64, 128]
# Same order as k_option_dtypes in the C source.
OPTION_DTYPES = [(6, 8), (0, 8), (0, 16), (0, 32), (0, 64), (1, 8), (1, 64), (2, 16), (4, 16),
                 (2, 32), (2, 64), (5, 64), (5, 128), (10, 8), (17, 4), (2, 24)]

READ_ONLY, IS_COPIED, PADDED = 1, 2, 4
CPU, CUDA, CUDA_HOST, OPENCL = 1, 2, 3, 4
F32, F64, I16, U8, C128, BOOL, FP4 = (2, 32, 1), (2, 64, 1), (0, 16, 1), (1, 8, 1), (5, 128, 1), \
    (6, 8, 1), (17, 4, 1)


def coded(v):
    """One value in get_coded()'s encoding."""
    if 0 <= v < 0x80:
        return bytes([v])
    if -64 <= v <= -1:
        return bytes([0x7F - v])
    if v in SPECIAL:
        return bytes([0xC0 + SPECIAL.index(v)])
    return bytes([0xD0]) + struct.pack("<q", v)


def options(layout=LAYOUT_ANY, copy=COPY_IF_NEEDED, writable=False, alignment=0, dtype=None,
            device=None):
    a = layout + 3 * copy + 9 * int(writable) + 18 * ALIGNMENTS.index(alignment)
    assert a < 256
    b = 0 if dtype is None else 0x80 | OPTION_DTYPES.index(dtype[:2])
    c = 0 if device is None else 1 | (device << 1)
    return bytes([a, b, c])


def seed(shape=(), strides=None, dtype=F32, legacy=False, shape_null=False, data=DATA_BUFFER,
         opts=None, no_deleter=False, reexport=True, major=1, minor=3, flags=0, device=(CPU, 0),
         ndim=None, byte_offset=0, raw_pointer=0, misalign=1):
    ndim = len(shape) if ndim is None else ndim
    sel = (int(legacy) | int(strides is None) << 1 | int(shape_null) << 2 | data << 3
           | int(opts is not None) << 5 | int(no_deleter) << 6 | int(reexport) << 7)
    out = bytes([sel])
    if not legacy:
        out += struct.pack("<IIQ", major, minor, flags)
    out += struct.pack("<bb", *device)
    out += struct.pack("<BBH", *dtype)
    if -128 <= ndim < 0x7F:
        out += struct.pack("<b", ndim)
    else:
        out += bytes([0x7F]) + struct.pack("<i", ndim)
    stored = max(0, min(ndim, 72))
    if not shape_null:
        out += b"".join(coded(v) for v in list(shape)[:stored])
    if strides is not None:
        out += b"".join(coded(v) for v in list(strides)[:stored])
    out += coded(byte_offset)
    if data == DATA_RAW:
        out += struct.pack("<Q", raw_pointer)
    if data == DATA_MISALIGNED:
        out += bytes([misalign - 1])
    if opts is not None:
        out += opts
    return out


SEEDS = {
    # Well-formed producers.
    "f32-2x3-c": seed((2, 3), (3, 1)),
    "legacy-i16-null-strides": seed((2, 3), None, I16, legacy=True),
    "v1-1-null-strides": seed((4, 2), None, minor=1),
    "reversed": seed((5,), (-1,)),
    "reversed-2d-legacy": seed((3, 4), (-4, -1), F64, legacy=True),
    "byte-offset-stepped": seed((4,), (2,), U8, byte_offset=8),
    "scalar": seed((), (), F64),
    "empty-null-data": seed((3, 0), (0, 1), data=DATA_NULL),
    "read-only": seed((2, 2), (2, 1), U8, flags=READ_ONLY),
    "broadcast-bool": seed((3, 4), (0, 1), BOOL),
    "complex128-stepped": seed((2, 3), (12, 3), C128),
    "fp4-packed": seed((2, 3), (3, 1), FP4),
    "cuda-host": seed((8,), (1,), device=(CUDA_HOST, 0)),
    "opencl-handle-offset": seed((4,), (-1,), device=(OPENCL, 0), byte_offset=12),
    "no-deleter-legacy": seed((6,), (1,), I16, legacy=True, no_deleter=True),
    "huge-never-read": seed((1 << 30,), (1,), data=DATA_RAW, raw_pointer=1 << 40),
    # Options.
    "opt-writable-copy": seed((2, 2), (2, 1), U8, flags=READ_ONLY, opts=options(writable=True)),
    "opt-layout-c": seed((2, 3), (1, 2), opts=options(layout=LAYOUT_C)),
    "opt-layout-f-never": seed((2, 3), (3, 1), opts=options(layout=LAYOUT_F, copy=COPY_NEVER)),
    "opt-dtype-f64": seed((2, 3), (3, 1), opts=options(dtype=F64)),
    "opt-copy-always": seed((3,), (1,), I16, legacy=True, opts=options(copy=COPY_ALWAYS)),
    "opt-is-copied": seed((3,), (1,), flags=IS_COPIED, opts=options(copy=COPY_ALWAYS)),
    "opt-align-16": seed((8,), (1,), data=DATA_MISALIGNED, misalign=4, opts=options(alignment=16)),
    "opt-device-cuda": seed((2,), (1,), opts=options(device=CUDA)),
    # Refusals.
    "major-0": seed((2, 3), (3, 1), major=0),
    "major-2": seed((2, 3), (3, 1), major=2),
    "padded-fp4": seed((4,), (1,), FP4, flags=PADDED),
    "unknown-flag": seed((2,), (1,), flags=1 << 40),
    "null-strides-1-2": seed((2, 3), None, minor=2),
    "ndim-minus-1": seed((), (), ndim=-1),
    "ndim-65": seed([1] * 65, [1] * 65),
    "ndim-huge": seed((), None, ndim=1 << 20),
    "shape-null": seed((2, 3), (3, 1), shape_null=True),
    "shape-negative": seed((2, -3), (3, 1)),
    "lanes-2": seed((2,), (1,), (2, 32, 2)),
    "float24": seed((2,), (1,), (2, 24, 1)),
    "device-99": seed((2,), (1,), device=(99, 0)),
    "data-null": seed((2, 3), (3, 1), data=DATA_NULL),
    "reach-overflow": seed((1 << 32, 2), (1 << 32, 1)),
    "below-zero": seed((1 << 20,), (-(1 << 20),), data=DATA_RAW, raw_pointer=0x1000),
    "byte-offset-max": seed((2,), (1,), byte_offset=-1),
    # Regressions: an early dlpack.c refused the first (negative strides on
    # a device address, as CuPy exports them) and ignored the dtype request
    # of the second (IS_COPIED with copy = ALWAYS).
    "regress-cuda-reversed": seed((4,), (-1,), device=(CUDA, 0)),
    "regress-is-copied-dtype": seed((3,), (1,), flags=IS_COPIED,
                                    opts=options(copy=COPY_ALWAYS, dtype=F64)),
    # The reach invariant: an empty tensor's strides are checked with each
    # extent 0 read as 1, since its views (select at index 4: 4 * stride;
    # slice with step 2: 2 * stride) compute those products. These were
    # accepted, and their views overflowed.
    "empty-reach-overflow": seed((5, 0), (INT64_MAX, 1)),
    "empty-reach-overflow-legacy": seed((5, 0), (INT64_MAX, 1), legacy=True),
    "empty-reach-min-null-data": seed((5, 0), (INT64_MIN, 1), data=DATA_NULL),
    "empty-reach-bytes": seed((5, 0), (1 << 59, 1)),
    "empty-reach-null-strides": seed((0, 1 << 62, 4), None, minor=1),
    # ... and the largest that fits, which imports and re-exports.
    "empty-reach-fits": seed((5, 0), (INT64_MAX // 16, 1)),
    "empty-zero-extent-stride-free": seed((5, 0), (1, INT64_MAX), legacy=True),
    # Devices that are not present: CUDA device memory without a CUDA device
    # (or past the devices present), a type without backend, and the
    # host-accessible types, which need none.
    "cuda-no-device": seed((2, 3), (3, 1), device=(CUDA, 0)),
    "cuda-no-device-empty": seed((0,), (1,), device=(CUDA, 0), data=DATA_NULL),
    "cuda-device-id-7": seed((2,), (1,), device=(CUDA, 7), legacy=True),
    "cuda-managed-host": seed((8,), (1,), device=(13, 0)),
    "rocm-no-backend": seed((4,), (1,), device=(10, 0)),
    "rocm-host": seed((4,), (-1,), device=(11, 0)),
    "opencl-absent-id": seed((4,), (1,), device=(OPENCL, 5), byte_offset=0),
    # The harness's made-up devices (present, never touched): a handle type
    # (Vulkan) keeps byte_offset, an address type (VPI) moves its base.
    "fake-vulkan-handle-offset": seed((4,), (-1,), device=(7, 0), byte_offset=12),
    "fake-vulkan-absent-id": seed((4,), (1,), device=(7, 3)),
    "fake-vpi-reversed": seed((3, 4), (-4, -1), F64, device=(9, 0), legacy=True),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
