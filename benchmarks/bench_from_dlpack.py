#!/usr/bin/env python3
"""Per-call cost of tensorbridge.from_dlpack against each framework's own
from_dlpack, on the same objects, in one run.

    python3 benchmarks/bench_from_dlpack.py [--number N] [--repeat R]

For every framework that imports (NumPy, PyTorch, JAX) it times, on one small
tensor of that framework:
    tensorbridge.from_dlpack(x)     vs   framework.from_dlpack(x)
and, with a tensorbridge.Tensor t as the producer:
    tensorbridge.from_dlpack(t)     vs   framework.from_dlpack(t)
The time of one call is the best of R runs of N calls, divided by N, the two
sides timed in alternation (many short runs: on a shared machine the best of
them is the figure least disturbed by other load); the ratio is tensorbridge's time over the
framework's (below 1: tensorbridge is faster).
Each imported tensor is dropped right away, so the cost includes the release.
"""

import argparse
import platform
import sys
import timeit

import tensorbridge as tb


def per_call_pair(ours, theirs, arg, number, repeat):
    """Best per-call time of ours(arg) and theirs(arg), timed in alternation so
    that both see the same machine state."""
    timers = [timeit.Timer("f(x)", globals={"f": f, "x": arg}) for f in (ours, theirs)]
    for t in timers:
        t.timeit(number=max(number // 10, 1))  # warm up
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, t in enumerate(timers):
            best[i] = min(best[i], t.timeit(number=number) / number)
    return best


def cases():
    """(framework label, version, producer label, object, reference from_dlpack)."""
    out = []
    try:
        import numpy as np
        a = np.arange(16, dtype=np.float32).reshape(4, 4)
        out.append(("numpy", np.__version__, "numpy.ndarray", a, np.from_dlpack))
        out.append(("numpy", np.__version__, "tensorbridge.Tensor", tb.from_dlpack(a).copy(),
                    np.from_dlpack))
    except ImportError:
        pass
    try:
        import torch
        x = torch.arange(16, dtype=torch.float32).reshape(4, 4)
        out.append(("torch", torch.__version__, "torch.Tensor", x, torch.from_dlpack))
        out.append(("torch", torch.__version__, "tensorbridge.Tensor", tb.from_dlpack(x).copy(),
                    torch.from_dlpack))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp
        j = jnp.arange(16, dtype=jnp.float32).reshape(4, 4)
        out.append(("jax", jax.__version__, "jax.Array", j, jax.dlpack.from_dlpack))
        out.append(("jax", jax.__version__, "tensorbridge.Tensor", tb.tensor(j),
                    jax.dlpack.from_dlpack))
    except ImportError:
        pass
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=50, help="runs; the best counts")
    args = parser.parse_args()
    rows = cases()
    if not rows:
        sys.exit("bench_from_dlpack: none of numpy, torch, jax imports here")
    print(f"Python {platform.python_version()} ({sys.executable}), tensorbridge {tb.__version__}")
    print(f"best of {args.repeat} x {args.number} calls, 4 x 4 float32\n")
    print(f"| framework | producer | tensorbridge.from_dlpack | framework's from_dlpack "
          f"| ratio (tb / framework) |")
    print("|---|---|---:|---:|---:|")
    worst = 0.0
    for fw, version, producer, obj, reference in rows:
        ours, theirs = per_call_pair(tb.from_dlpack, reference, obj, args.number, args.repeat)
        worst = max(worst, ours / theirs)
        print(f"| {fw} {version} | {producer} | {ours * 1e9:.0f} ns | {theirs * 1e9:.0f} ns "
              f"| {ours / theirs:.2f} |")
    print(f"\nworst ratio: {worst:.2f} ({'no slower' if worst <= 1.0 else 'slower'} than the "
          "frameworks' own from_dlpack)")


if __name__ == "__main__":
    main()
