"""Tensors in shared memory through multiprocessing: by handle, not by value.

A tensor whose memory is shared (Tensor.share_memory_(), or one attached
from another process) pickles, in multiprocessing's pickler only, as its
handle (dtype, shape, strides, offset) plus its file descriptor, which
multiprocessing hands to the other process (reduction.DupFd). The receiver
maps the same pages: queue.put(t) in one process and queue.get() in another
give the same memory, and writes are seen on both sides. CUDA tensors the
library allocated go by their CUDA IPC handle (no descriptor); the sender
keeps them alive until the receiver has them, as with torch.multiprocessing.
Other tensors, and every tensor in plain pickle, go by value
(Tensor.__reduce__).

Importing tensorbridge registers the reducer with
multiprocessing.reduction.ForkingPickler (as torch does for its tensors).
"""

from __future__ import annotations

import os

from . import _tensorbridge as _tb


def _rebuild_shared(handle: bytes, dupfd) -> "_tb.Tensor":
    fd = dupfd.detach()
    try:
        return _tb._shm_attach(handle, fd)
    finally:
        os.close(fd)  # attach took its own duplicate


def _rebuild_cuda(handle: bytes) -> "_tb.Tensor":
    return _tb._shm_attach(handle, -1)


def _reduce_for_multiprocessing(t):
    if not t.is_shared():
        return t.__reduce__()
    from multiprocessing import reduction
    handle, fd = _tb._shm_handle(t)
    if fd < 0:
        # CUDA memory travels by CUDA IPC handle, with no descriptor. As with
        # torch.multiprocessing, the sender must keep the tensor alive until
        # the receiver has attached: nothing holds the memory in flight.
        return _rebuild_cuda, (handle,)
    return _rebuild_shared, (handle, reduction.DupFd(fd))


def register() -> None:
    from multiprocessing import reduction
    reduction.ForkingPickler.register(_tb.Tensor, _reduce_for_multiprocessing)
