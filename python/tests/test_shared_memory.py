"""Tensors in shared memory: share_memory_() / is_shared() as torch names them,
and multiprocessing sending them by handle (the same pages in both
processes), every start method; other tensors go by value."""

import gc
import multiprocessing as mp
import os
import pickle
import signal
import sys

import pytest

import tensorbridge as tb
from tensorbridge import _tensorbridge as _tb

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in mp.get_all_start_methods()]
# Forking a process that runs JAX's or TensorFlow's threads may deadlock the
# child (JAX warns so): with them loaded, the fork cases use forkserver,
# whose server forks from a clean process. The run without them forks.
def threaded_peers():
    return [m for m in ("jax", "tensorflow") if m in sys.modules]


def context(method):
    """The start method's context; "fork" becomes forkserver with a threaded
    peer loaded (asked when the test runs: earlier tests may have loaded one)."""
    if method == "fork" and threaded_peers():
        method = "forkserver"
    return mp.get_context(method)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def dev_shm():
    """The library's names in /dev/shm (multiprocessing keeps its semaphores
    there too: not ours to count)."""
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("tb-")}
    except FileNotFoundError:
        return set()


def test_share_memory_moves_the_tensor_and_returns_self():
    t = tb.tensor([[1.0, 2.0], [3.0, 4.0]])
    before = t.data_ptr()
    assert not t.is_shared()
    assert t.share_memory_() is t
    assert t.is_shared() and t.data_ptr() != before
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]] and not t.readonly
    where = t.data_ptr()
    assert t.share_memory_() is t and t.data_ptr() == where  # already there: nothing moves
    v = t[1]
    assert v.is_shared()  # views of shared memory are shared too


def test_a_buffer_exported_before_share_memory_stays_valid():
    t = tb.tensor([1.0, 2.0, 3.0])
    m = memoryview(t)
    t.share_memory_()
    t[0] = 9.0
    gc.collect()
    # The old memory lives as long as the object: the buffer reads it safely.
    assert m.tolist() == [1.0, 2.0, 3.0] and t.tolist() == [9.0, 2.0, 3.0]
    m.release()


def test_strided_and_device_free_tensors_share_in_c_order():
    t = tb.tensor([[1, 2, 3], [4, 5, 6]], dtype="int16").T[::-1]
    s = t.share_memory_()
    assert s.is_shared() and s.is_contiguous() and s.tolist() == [[3, 6], [2, 5], [1, 4]]


def _child_reads_writes(q, r, go):
    t = q.get()
    r.put((t.is_shared(), t.tolist()))
    t[0, 0] = 100.0  # seen by the parent
    r.put("written")
    go.wait(30)
    r.put(t[1, 1].item())  # the parent's write, seen here


@pytest.mark.parametrize("method", METHODS)
def test_queue_sends_shared_tensors_by_handle(method):
    ctx = context(method)
    q, r, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    t = tb.tensor([[1.0, 2.0], [3.0, 4.0]]).share_memory_()
    p = ctx.Process(target=_child_reads_writes, args=(q, r, go))
    p.start()
    try:
        q.put(t)
        assert r.get(timeout=60) == (True, [[1.0, 2.0], [3.0, 4.0]])
        assert r.get(timeout=60) == "written"
        assert t[0, 0].item() == 100.0
        t[1, 1] = -7.0
        go.set()
        assert r.get(timeout=60) == -7.0
    finally:
        p.join(60)
    assert p.exitcode == 0


def _child_writes_copy(q, r):
    t = q.get()
    r.put(t.is_shared())
    t[0] = 5


def test_queue_sends_other_tensors_by_value():
    ctx = context("fork")
    q, r = ctx.Queue(), ctx.Queue()
    t = tb.tensor([1, 2, 3])
    p = ctx.Process(target=_child_writes_copy, args=(q, r))
    p.start()
    q.put(t)
    assert r.get(timeout=60) is False
    p.join(60)
    assert p.exitcode == 0 and t.tolist() == [1, 2, 3]


def test_plain_pickle_of_a_shared_tensor_is_by_value():
    t = tb.tensor([1.0, 2.0]).share_memory_()
    u = pickle.loads(pickle.dumps(t))
    assert not u.is_shared() and u.tolist() == [1.0, 2.0] and u.data_ptr() != t.data_ptr()


def test_handle_round_trip_in_one_process_shares_the_pages():
    t = tb.tensor([[1, 2], [3, 4]], dtype="int32").share_memory_()
    handle, fd = _tb._shm_handle(t)
    assert isinstance(handle, bytes) and handle[:4] == b"TBSM" and fd >= 0
    u = _tb._shm_attach(handle, fd)
    assert u.is_shared() and u.tolist() == t.tolist() and u.data_ptr() != t.data_ptr()
    u[0, 1] = 20
    assert t[0, 1].item() == 20
    v = _tb._shm_attach(*_tb._shm_handle(t[1]))  # a view's offset travels too
    assert v.tolist() == [3, 4]
    v[1] = 40
    assert t[1, 1].item() == 40


def test_hostile_handles_are_refused_with_the_field_named():
    t = tb.tensor([1.0, 2.0, 3.0]).share_memory_()
    handle, fd = _tb._shm_handle(t)
    with pytest.raises(ValueError, match="magic"):
        _tb._shm_attach(b"XXXX" + handle[4:], fd)
    with pytest.raises(ValueError):
        _tb._shm_attach(handle[:-1], fd)
    with pytest.raises(OSError):
        _tb._shm_attach(handle, 10_000)  # not an open descriptor
    with pytest.raises(ValueError, match=r"not in shared memory \(share_memory_\(\) moves it there\)"):
        _tb._shm_handle(tb.tensor([1.0]))


def test_sending_many_tensors_leaks_no_descriptor():
    gc.collect()  # earlier tests' garbage may hold descriptors
    before = open_fds()
    for _ in range(50):
        t = tb.tensor([1.0] * 16).share_memory_()
        u = _tb._shm_attach(*_tb._shm_handle(t))
        del t, u
    gc.collect()
    assert open_fds() == before


def _child_attaches_and_hangs(q, r):
    t = q.get()
    r.put(t.tolist())
    signal.pause()


@pytest.mark.parametrize("kind", ["memfd", "shm_open"])
def test_a_killed_process_leaves_nothing_in_dev_shm(kind, monkeypatch):
    monkeypatch.setenv("TB_SHM_KIND", kind)
    ctx = context("fork")
    before = dev_shm()
    q, r = ctx.Queue(), ctx.Queue()
    t = tb.tensor([4.0, 5.0]).share_memory_()
    assert dev_shm() == before  # nothing named, even while alive
    p = ctx.Process(target=_child_attaches_and_hangs, args=(q, r))
    p.start()
    q.put(t)
    assert r.get(timeout=60) == [4.0, 5.0]
    os.kill(p.pid, signal.SIGKILL)
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    assert dev_shm() == before and t.tolist() == [4.0, 5.0]
