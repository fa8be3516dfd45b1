"""A copy into fresh memory: tensorbridge's Tensor.copy() against NumPy's
ndarray.copy() (and torch's clone() where importable), same data, same run.

    python3 benchmarks/bench_fresh_copy.py [--mib 64] [--repeat 30]

Prints each one's best time of `repeat` runs and its ratio to NumPy's. Every
run allocates and fills a new result, so page faults are part of the cost
(tensorbridge asks Linux for transparent huge pages for large buffers).
"""
import argparse

import numpy as np

import tensorbridge as tb
from benchutil import best_of


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    a = np.random.default_rng(0).standard_normal(args.mib * (1 << 20) // 4, dtype=np.float32)
    t = tb.from_numpy(a)
    rows = [("numpy a.copy()", lambda: a.copy()), ("tensorbridge t.copy()", lambda: t.copy())]
    try:
        import torch

        x = torch.from_numpy(a)
        rows.append(("torch x.clone()", lambda: x.clone()))
    except ImportError:
        pass
    ref = None
    for name, fn in rows:
        s = best_of(fn, args.repeat)
        ref = ref or s
        print(f"{name:24s} {s * 1e3:8.2f} ms  ratio {s / ref:5.2f}")


if __name__ == "__main__":
    main()
