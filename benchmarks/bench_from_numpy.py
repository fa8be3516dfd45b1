"""tensorbridge.from_numpy against torch.from_numpy on the same 4x4 float32
array, same run: best of 5 repeats of 200,000 calls, three rounds.

    python3 benchmarks/bench_from_numpy.py   (needs torch; Debian's python3-torch)
"""
import timeit

import numpy as np
import torch

import tensorbridge as tb

a = np.zeros((4, 4), np.float32)
for _ in range(3):
    n = 200000
    t_tb = min(timeit.repeat(lambda: tb.from_numpy(a), number=n, repeat=5)) / n * 1e9
    t_to = min(timeit.repeat(lambda: torch.from_numpy(a), number=n, repeat=5)) / n * 1e9
    print(f"tb.from_numpy {t_tb:6.0f} ns  torch.from_numpy {t_to:6.0f} ns  ratio {t_tb / t_to:.2f}")
