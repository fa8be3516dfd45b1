"""Opening a large tensor file by mapping it: tensorbridge against NumPy's
np.load(mmap_mode="r") and the safetensors package's safe_open, in one run.

Writes one .npy file and one safetensors file of --size MiB (1024 by
default) into --dir, then times, best of --repeat turns each:
  npy:          tb.load(path, mmap_mode="r")  vs  np.load(path, mmap_mode="r")
  safetensors:  tb.load_safetensors(path)[name]
                vs  safetensors.safe_open(path, "np").get_tensor(name)
                (safe_open reads the entry into memory: that is its numpy API)
                and vs safe_open(path, "np") + get_slice(name) (its lazy view)
and prints each ratio (tensorbridge / peer: below 1.0, tensorbridge is
faster). Also checks that the open costs O(1): the time for a 1/16 size file
is within noise of the full one.

  python3 benchmarks/bench_open.py [--size MiB] [--repeat N] [--dir DIR]
"""

import argparse
import os
import sys
import tempfile

import numpy as np

from benchutil import best_of_each

import tensorbridge as tb


def write_files(folder, mib):
    n = mib * (1 << 20) // 4
    a = np.arange(n, dtype=np.float32).reshape(-1, 1024)
    npy = os.path.join(folder, f"bench_{mib}.npy")
    st = os.path.join(folder, f"bench_{mib}.safetensors")
    np.save(npy, a)
    tb.save_safetensors(st, {"weight": tb.from_numpy(a)})
    del a
    return npy, st


def drop_page_cache_hint(path):
    # Timing the open, not the page cache: every contender maps the same,
    # already cached file, which is what a loader does on its second run.
    with open(path, "rb") as f:
        f.read(1 << 20)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=1024, help="MiB per file")
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    try:
        import safetensors
        from safetensors import safe_open
    except ImportError:
        print("safetensors is not installed: pip install safetensors", file=sys.stderr)
        return 2
    folder = args.dir or tempfile.mkdtemp(prefix="tb-bench-open-")
    rows = []
    for mib in (max(args.size // 16, 1), args.size):
        npy, st = write_files(folder, mib)
        drop_page_cache_hint(npy)
        drop_page_cache_hint(st)

        def tb_npy():
            t = tb.load(npy, mmap_mode="r")
            return t.data_ptr()

        def np_npy():
            a = np.load(npy, mmap_mode="r")
            return a.ctypes.data

        def tb_st():
            return tb.load_safetensors(st)["weight"].data_ptr()

        def st_lazy():
            with safe_open(st, "np") as f:
                return f.get_slice("weight").get_shape()

        fns = [tb_npy, np_npy, tb_st, st_lazy]
        if mib <= 256:  # safe_open's get_tensor reads the whole entry
            def st_get():
                with safe_open(st, "np") as f:
                    return f.get_tensor("weight").shape
            fns.append(st_get)
        best = best_of_each(fns, args.repeat)
        rows.append((mib, best))
        os.remove(npy)
        os.remove(st)
    print(f"numpy {np.__version__}, safetensors {safetensors.__version__}, "
          f"tensorbridge {tb.__version__}; best of {args.repeat}")
    for mib, best in rows:
        print(f"\n{mib} MiB file")
        print(f"  tb.load(mmap 'r')         {best[0] * 1e6:9.1f} us   "
              f"np.load(mmap_mode='r') {best[1] * 1e6:9.1f} us   ratio {best[0] / best[1]:.2f}")
        print(f"  tb.load_safetensors[...]  {best[2] * 1e6:9.1f} us   "
              f"safe_open+get_slice    {best[3] * 1e6:9.1f} us   ratio {best[2] / best[3]:.2f}")
        if len(best) > 4:
            print(f"  {'':26s}{'':12s}   safe_open+get_tensor   {best[4] * 1e6:9.1f} us   "
                  f"ratio {best[2] / best[4]:.4f}")
    (small, b_small), (big, b_big) = rows
    print(f"\nO(1) open: {big} MiB / {small} MiB time, tb.load {b_big[0] / b_small[0]:.2f}, "
          f"tb.load_safetensors {b_big[2] / b_small[2]:.2f} (1.0 = independent of size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
