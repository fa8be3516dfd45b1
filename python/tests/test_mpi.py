"""tensorbridge tensors through MPI (mpi4py over Open MPI), two ranks on this
machine: python/tests/mpi_ranks.py is the program each rank runs."""

import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")

MPIRUN = shutil.which("mpirun")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.skipif(MPIRUN is None, reason="no mpirun on PATH (Open MPI: scripts/deps mpi)")
def test_two_ranks_exchange_tensors_without_copies():
    env = dict(os.environ)
    # Open MPI refuses to run as root unless told; CI runs as root.
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    cmd = [MPIRUN, "-n", "2", "--oversubscribe", "--bind-to", "none",
           sys.executable, os.path.join(HERE, "mpi_ranks.py")]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for rank in (0, 1):
        assert f"rank {rank}: ok send/recv in place, bcast, bfloat16 as bytes, allreduce" in out, out
