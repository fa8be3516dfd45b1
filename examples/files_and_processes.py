"""Tensors in files and in other processes, from Python, without copies.

  python3 examples/files_and_processes.py        (the package installed: pip install .)

1. A .npy file is mapped: the tensor is the page cache itself, read-only,
   and NumPy sees the same memory.
2. A safetensors file: each entry a read-only view of one mapping.
3. A tensor in shared memory goes to another process through a
   multiprocessing queue by handle; the child's write is seen here.
Prints what it checked; exits non-zero when a check fails.
"""

import multiprocessing as mp
import os
import sys
import tempfile

import numpy as np

import tensorbridge as tb


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        sys.exit(1)


def child(queue, done):
    t = queue.get()  # the same pages as the parent's tensor
    t[0, 0] = 42.0
    done.put(t.is_shared())


def main():
    folder = tempfile.mkdtemp(prefix="tb-example-")
    npy = os.path.join(folder, "weights.npy")
    np.save(npy, np.arange(12, dtype=np.float32).reshape(3, 4))

    w = tb.load(npy)  # mmap_mode="r"
    check(w.readonly and w.tolist()[2] == [8.0, 9.0, 10.0, 11.0], f"tb.load maps {npy}")
    a = np.asarray(w)  # NumPy 2's np.from_dlpack(w) too; NumPy 1.x's refuses read-only
    check(a.ctypes.data == w.data_ptr() and not a.flags.writeable,
          "NumPy reads the same memory (no copy), read-only")
    tb.save(os.path.join(folder, "transposed.npy"), w.T)  # streamed in C order
    check(np.load(os.path.join(folder, "transposed.npy")).tolist() == a.T.tolist(),
          "tb.save of a transposed view reads back in NumPy")

    st = os.path.join(folder, "model.safetensors")
    tb.save_safetensors(st, {"w": w, "b": tb.tensor([1.0, 2.0], dtype="bfloat16")},
                        metadata={"format": "example"})
    d = tb.load_safetensors(st)
    check(sorted(d) == ["b", "w"] and d.metadata == {"format": "example"},
          "load_safetensors: every entry and the metadata")
    check(d["w"].readonly and d["w"].tolist() == w.tolist() and d["b"].dtype == "bfloat16",
          "entries are read-only views of the file")

    t = tb.tensor([[1.0, 2.0], [3.0, 4.0]]).share_memory_()
    ctx = mp.get_context("spawn")  # a fresh interpreter: the strictest case
    queue, done = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=child, args=(queue, done))
    p.start()
    queue.put(t)
    check(done.get(timeout=120) is True, "the child got a tensor in shared memory")
    p.join(120)
    check(p.exitcode == 0 and t[0, 0].item() == 42.0, "the child's write is seen here")
    print("all checks passed")


if __name__ == "__main__":
    main()
