"""Every copy path side by side with its peers, in one process.

    python3 benchmarks/bench_peers.py [--threads 1,2] [--repeat 7] [--quick] [--only WORD]

For each operation: tensorbridge's best time and each importable peer's (torch
and NumPy, the same data, outputs fresh on every side), then the ratio
tensorbridge / peer. Runs alternate between the contenders, and each one's
best of `repeat` counts, so that a shared machine's noise hits everyone alike.
Each thread count is a block of its own (tensorbridge's set_num_threads and
torch.set_num_threads; NumPy has no threads for these).

Needs the tensorbridge package installed (a release build: `pip install .`
builds one) and NumPy; torch where importable (Debian's python3-torch, 1.13).
"""
import argparse
import sys
import time

import numpy as np

import tensorbridge as tb
from benchutil import best_of_each

try:
    import torch
except ImportError:  # the rows print without it
    torch = None


def timed_small(fn, n=20000):
    """Per-call time of a cheap call: the best of 5 loops of n calls."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def rows(quick):
    rng = np.random.default_rng(0)
    big = 4096 if quick else 8192
    out = []

    def transpose(name, dtype, n):
        a = (rng.integers(0, 100, (n, n)) if np.dtype(dtype).kind in "iu"
             else rng.standard_normal((n, n))).astype(dtype)
        t = tb.from_numpy(a)
        peers = {"numpy": lambda: np.ascontiguousarray(a.T)}
        if torch is not None:
            x = torch.from_numpy(a)
            peers["torch"] = lambda: x.t().contiguous()
        out.append((name, lambda: t.T.contiguous(), peers))

    transpose("transpose f32 4096^2", np.float32, 4096)
    transpose(f"transpose f32 {big}^2", np.float32, big)
    transpose("transpose f64 4096^2", np.float64, 4096)
    transpose(f"transpose uint8 {big}^2", np.uint8, big)
    transpose(f"transpose int16 {big}^2", np.int16, big)

    n_img = 16 if quick else 64
    img = rng.standard_normal((n_img, 64, 56, 56)).astype(np.float32)
    t_img = tb.from_numpy(img)
    peers = {"numpy": lambda: np.ascontiguousarray(img.transpose(0, 2, 3, 1))}
    if torch is not None:
        x_img = torch.from_numpy(img)
        peers["torch"] = lambda: x_img.permute(0, 2, 3, 1).contiguous()
    out.append((f"NCHW->NHWC {n_img}x64x56x56 f32", lambda: t_img.permute(0, 2, 3, 1).contiguous(),
                peers))

    n = 1 << 24
    f32 = rng.uniform(-4, 4, n).astype(np.float32)

    def cast(name, src, to_tb, to_np, to_torch):
        t = tb.from_numpy(src)
        peers = {}
        if to_np is not None:
            peers["numpy"] = lambda: src.astype(to_np)
        if torch is not None and to_torch is not None:
            x = torch.from_numpy(src)
            peers["torch"] = lambda: x.to(to_torch)
        out.append((name, lambda: t.to(dtype=to_tb), peers))

    tdt = (lambda name: getattr(torch, name)) if torch is not None else (lambda name: None)
    cast("cast f32 -> f16 2^24", f32, "float16", np.float16, tdt("float16"))
    cast("cast f16 -> f32 2^24", f32.astype(np.float16), "float32", np.float32, tdt("float32"))
    cast("cast f32 -> bf16 2^24", f32, "bfloat16", None, tdt("bfloat16"))
    if torch is not None:
        bf = torch.from_numpy(f32).to(torch.bfloat16)
        t_bf = tb.from_dlpack(bf)
        out.append(("cast bf16 -> f32 2^24", lambda: t_bf.to(dtype="float32"),
                    {"torch": lambda: bf.to(torch.float32)}))
    i64 = rng.integers(-(1 << 62), 1 << 62, n, dtype=np.int64)
    cast("cast i64 -> f32 (mixed signs) 2^24", i64, "float32", np.float32, tdt("float32"))
    cast("cast u8 -> f32 2^24", rng.integers(0, 256, n, dtype=np.uint8), "float32", np.float32,
         tdt("float32"))
    cast("cast f64 -> f32 2^24", f32.astype(np.float64), "float32", np.float32, tdt("float32"))

    a64 = rng.standard_normal(16 << 20, dtype=np.float32)
    t64 = tb.from_numpy(a64)
    peers = {"numpy": lambda: a64.copy()}
    if torch is not None:
        x64 = torch.from_numpy(a64)
        peers["torch"] = lambda: x64.clone()
    out.append(("fresh copy 64 MiB", lambda: t64.copy(), peers))

    flat = f32[: 1 << (20 if quick else 24)].astype(np.float64).tolist()
    side = 1024 if quick else 4096
    nested = rng.standard_normal((side, side)).tolist()
    ints = rng.integers(-1000, 1000, 1 << (20 if quick else 24)).tolist()
    out.append((f"tensor(list of {len(flat)} floats)", lambda: tb.tensor(flat),
                {"numpy": lambda: np.array(flat, dtype=np.float32)}))
    out.append((f"tensor(list of {len(ints)} ints)", lambda: tb.tensor(ints),
                {"numpy": lambda: np.array(ints)}))
    out.append((f"tensor(nested {side}x{side} floats)", lambda: tb.tensor(nested),
                {"numpy": lambda: np.array(nested, dtype=np.float32)}))
    return out


def small_rows():
    a = np.zeros((4, 4), np.float32)
    t = tb.from_numpy(a)
    res = []
    if torch is not None:
        res.append(("from_numpy(4x4)", lambda: tb.from_numpy(a), {"torch": lambda: torch.from_numpy(a)}))
    if hasattr(np, "from_dlpack"):
        res.append(("np.from_dlpack(4x4)", lambda: np.from_dlpack(t),
                    {"numpy (ndarray)": lambda: np.from_dlpack(a)}))
    return res


def report(name, mine, peers, unit):
    scale, label = (1e3, "ms") if unit == "ms" else (1e9, "ns")
    cells = [f"tb {mine * scale:8.2f} {label}"]
    for peer, s in peers.items():
        cells.append(f"{peer} {s * scale:8.2f} {label} ({mine / s:5.2f}x)")
    print(f"  {name:38s} " + "   ".join(cells), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", default="", help="only rows whose name contains this")
    args = ap.parse_args()
    print(f"tensorbridge {tb.__version__}, NumPy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else '(not importable)'}, "
          f"Python {sys.version.split()[0]}")
    table = [r for r in rows(args.quick) if args.only in r[0]]
    for threads in (int(x) for x in args.threads.split(",")):
        tb.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        print(f"threads = {threads} (tensorbridge and torch)")
        for name, mine, peers in table:
            times = best_of_each([mine] + list(peers.values()), args.repeat)
            report(name, times[0], dict(zip(peers, times[1:])), "ms")
        if threads == 1:
            for name, mine, peers in small_rows():
                if args.only not in name:
                    continue
                report(name, timed_small(mine), {k: timed_small(v) for k, v in peers.items()}, "ns")
    tb.set_num_threads(0)


if __name__ == "__main__":
    main()
