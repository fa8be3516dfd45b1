"""What the Python benchmarks share: best-of timing, run in turns.

Imported as a sibling module (`python3 benchmarks/<name>.py` puts this folder
first on sys.path).
"""
import gc
import time


def best_of_each(fns, repeat):
    """The best time of each callable over `repeat` rounds; each round runs
    every callable once, in turn, so a shared machine's noise hits them alike.
    Each result is dropped before the next run (fresh outputs every time)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
            del out
            best[i] = min(best[i], dt)
    return best


def best_of(fn, repeat):
    """The best time of one callable over `repeat` runs."""
    return best_of_each([fn], repeat)[0]
