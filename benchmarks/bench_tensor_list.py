"""tensorbridge.tensor(list) and Tensor(list) against np.array(list) on the
same Python lists, same run: flat 2^24 floats and ints, nested 4096 x 4096
floats and ints. Best of `repeat` runs each.

    python3 benchmarks/bench_tensor_list.py [--log2n 24] [--repeat 5]

Prints each one's best time and its ratio to np.array's (the target is
<= 1.5). tb.tensor gives torch's dtypes (float32 for floats, int64 for
ints), np.array NumPy's (float64, int64); Tensor(list) is always float32.
"""
import argparse
import random

import numpy as np

import tensorbridge as tb
from benchutil import best_of


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log2n", type=int, default=24, help="elements: 2^log2n (even)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = 1 << args.log2n
    side = 1 << (args.log2n // 2)
    rng = random.Random(0)
    floats = [rng.random() for _ in range(n)]
    ints = [rng.randrange(-(1 << 40), 1 << 40) for _ in range(n)]
    cases = [
        (f"flat 2^{args.log2n} floats", floats),
        (f"flat 2^{args.log2n} ints", ints),
        (f"nested {side}x{side} floats", [floats[i * side:(i + 1) * side] for i in range(side)]),
        (f"nested {side}x{side} ints", [ints[i * side:(i + 1) * side] for i in range(side)]),
    ]
    for name, data in cases:
        t_np = best_of(lambda: np.array(data), args.repeat)
        t_tb = best_of(lambda: tb.tensor(data), args.repeat)
        t_tt = best_of(lambda: tb.Tensor(data), args.repeat)
        print(f"{name:24s} np.array {t_np * 1e3:8.1f} ms  tb.tensor {t_tb * 1e3:8.1f} ms "
              f"ratio {t_tb / t_np:5.2f}  tb.Tensor {t_tt * 1e3:8.1f} ms ratio {t_tt / t_np:5.2f}")


if __name__ == "__main__":
    main()
