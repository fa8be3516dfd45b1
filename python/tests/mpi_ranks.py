"""Run by test_mpi.py under `mpirun -n 2`: tensorbridge tensors travel through
MPI as they are. mpi4py takes each Tensor through the buffer protocol, so
receives land in the tensor's own memory (no NumPy array in between), and
what the buffer protocol cannot describe is refused, not converted.

Each rank prints one line `rank N: ok ...` when all its checks pass; any
failure aborts the whole job (a hung peer would otherwise wait forever)."""

import sys
import traceback

from mpi4py import MPI

import tensorbridge as tb

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def refused(fn):
    try:
        fn()
    except (BufferError, ValueError, TypeError):
        return True
    return False


def main():
    assert comm.Get_size() == 2, comm.Get_size()
    checks = []

    # Point to point: Send a 2-d float64 tensor, Recv into a tensor in place.
    if rank == 0:
        t = tb.tensor([[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]], dtype="float64")
        # A view that is not contiguous has no contiguous buffer: mpi4py
        # refuses it rather than copying it through an array of its own.
        assert refused(lambda: comm.Send(t[:, ::2], dest=1, tag=1))
        comm.Send(t, dest=1, tag=1)
        # A strided source made contiguous first goes as it is.
        comm.Send(t.T.contiguous(), dest=1, tag=2)
    else:
        r = tb.tensor([[0.0] * 3] * 2, dtype="float64")
        where = r.data_ptr()
        # A read-only tensor cannot be received into.
        assert refused(lambda: comm.Recv(r.expand(2, 2, 3), source=0, tag=1))
        comm.Recv(r, source=0, tag=1)
        assert r.data_ptr() == where, "received into another buffer"
        assert r.tolist() == [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]], r.tolist()
        c = tb.tensor([[0.0] * 2] * 3, dtype="float64")
        comm.Recv(c, source=0, tag=2)
        assert c.tolist() == [[1.5, 4.5], [2.5, 5.5], [3.5, 6.5]], c.tolist()
    checks.append("send/recv in place")

    # Collectives: Bcast int32 and complex128 tensors from rank 0 into each
    # rank's own tensor.
    b = tb.tensor([7, 8, 9] if rank == 0 else [0, 0, 0], dtype="int32")
    comm.Bcast(b, root=0)
    assert b.tolist() == [7, 8, 9], b.tolist()
    z = tb.tensor([1 + 2j, -3j] if rank == 0 else [0j, 0j], dtype="complex128")
    comm.Bcast(z, root=0)
    assert z.tolist() == [1 + 2j, -3j], z.tolist()
    checks.append("bcast")

    # A dtype the buffer protocol has no format for (bfloat16) goes as its
    # bytes, with the MPI datatype said explicitly: view() shares the memory.
    h = tb.tensor([1.0, -2.0, 0.5] if rank == 0 else [0.0] * 3, dtype="bfloat16")
    comm.Bcast([h.view("uint16"), MPI.UINT16_T], root=0)
    assert h.astype("float32").tolist() == [1.0, -2.0, 0.5], h.tolist()
    checks.append("bfloat16 as bytes")

    # Allreduce into a tensor of the receiving rank.
    s = tb.tensor([float(rank + 1)] * 4, dtype="float32")
    out = tb.tensor([0.0] * 4, dtype="float32")
    comm.Allreduce(s, out, op=MPI.SUM)
    assert out.tolist() == [3.0] * 4, out.tolist()
    checks.append("allreduce")

    print(f"rank {rank}: ok {', '.join(checks)}", flush=True)


try:
    main()
except BaseException:
    traceback.print_exc()
    sys.stdout.flush()
    comm.Abort(1)
