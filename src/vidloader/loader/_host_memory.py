"""The host memory batches are decoded into: HostBuffers, recycled once nothing refers to a batch, and,
for process workers, shared with them (``SharedRow``), so a worker writes its clip straight into the batch
instead of sending the frames back through the pool's result pipe.

Recycling, why: a fresh batch buffer is paid for twice. Large allocations (every video batch is far above
glibc's mmap threshold) come from ``mmap`` and go back on free, so the first write of each 4 KiB page faults
into the kernel, which zeroes it: writing 16 decoded 1080p frames into a new buffer cost 47-88 ms of CPU,
into memory already touched 8-14 ms (docs/bench.md, profile). Recycling the memory removes that.

Never written while in use: the pool keeps each buffer as a flat torch tensor and hands out views of it.
Every tensor that sees the memory (a view, a slice, a reshape, the tensor behind a ``.numpy()`` array or a
DLPack capsule) holds a reference to the buffer's storage, and a held ``UntypedStorage``/``TypedStorage``
holds the storage's Python object; the pool gives a buffer out again only when both counts are back to
what they were when it was made. Plain torch storage, not NumPy-backed tensors: their deleter takes the
GIL, which a tensor freed on a non-Python thread or during interpreter shutdown must not need.

Shared buffers, why: a process worker's clip was pickled, sent, unpickled and copied, 15-30 ms of CPU per
426x240 or 640x360 clip, more than its decode (docs/bench.md, thread against process workers). A shared
buffer is a file in ``/dev/shm`` that the loader maps with ``torch.from_file`` (plain torch storage) and
workers map by name, once per worker, so a clip costs the decode and a few hundred bytes each way. Its
space is reserved when it is made (``posix_fallocate``): a full ``/dev/shm`` (64 MiB in a default Docker
container) is an ``OSError`` there, and the pass falls back to sending frames, with a warning, instead of a
worker killed by SIGBUS on a write. The file is unlinked when the pool lets the buffer go or the loader
closes, and registered with multiprocessing's resource tracker, which unlinks it if this process dies first.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

log = logging.getLogger("vidloader")

SHM_DIR = "/dev/shm"
_names = itertools.count()


def _uses(buffer: torch.Tensor) -> tuple[int, int]:
    """References to ``buffer``'s storage from tensors, and to the storage's Python object."""
    # torch has no public accessor for a storage's use count; this one is pinned with torch in the lock,
    # and tests/test_host_buffers.py fails if it stops tracking views, arrays, storages or capsules.
    storage = buffer.untyped_storage()
    return torch._C._storage_Use_Count(storage._cdata), sys.getrefcount(storage)


def _shared_buffer(nbytes: int) -> tuple[torch.Tensor, str]:
    """A flat uint8 tensor on a new file of ``nbytes`` in /dev/shm, and the file's name.

    Raises:
        OSError: no /dev/shm, or not enough space in it.
    """
    from multiprocessing import resource_tracker

    name = f"vidloader-{os.getpid()}-{next(_names)}"
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        os.close(fd)
        os.unlink(path)
        raise OSError(exc.errno, f"no room for a {nbytes}-byte shared batch buffer in {SHM_DIR}") from exc
    os.close(fd)
    resource_tracker.register("/" + name, "shared_memory")  # unlinked by the tracker if we die first
    return torch.from_file(path, shared=True, size=nbytes, dtype=torch.uint8), name


def _unlink(name: str, names: set[str]) -> None:
    from multiprocessing import resource_tracker

    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(SHM_DIR, name))
    resource_tracker.unregister("/" + name, "shared_memory")
    names.discard(name)


def _unlink_all(names: set[str]) -> None:
    for name in list(names):
        _unlink(name, names)


@dataclass(frozen=True)
class SharedRow:
    """Where a batch row lies in a shared buffer: what a process worker is sent instead of the row."""

    name: str
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


class HostBuffers:
    """Recycled, unpinned host memory for uint8 batch buffers, private or shared with process workers.

    Pinned (CUDA staging) buffers are not kept here: torch's pinned-memory allocator already caches them
    and knows when the copy that reads them has finished.

    Args:
        keep: idle buffers kept for reuse at most (the memory they hold is ``keep`` batches); buffers still
            in use are tracked up to ``2 * keep + 8`` beyond that, older ones are let go (freed normally when
            their last user drops them).

    Raises:
        ValueError: ``keep`` is below 0.
    """

    def __init__(self, *, keep: int) -> None:
        if not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be an int >= 0, got {keep!r}")
        self.keep = keep
        # (flat buffer, its idle counts, its /dev/shm name or None)
        self._held: list[tuple[torch.Tensor, tuple[int, int], str | None]] = []
        self._lock = threading.Lock()
        # Shared files still linked. A loader never closed (a script that ends on an exception) unlinks
        # them when it is collected or the interpreter exits; the resource tracker would too, with a warning.
        self._names: set[str] = set()
        weakref.finalize(self, _unlink_all, self._names)
        self.reused = 0
        self.allocated = 0

    def take(self, shape: tuple[int, ...], *, pin: bool = False, shared: bool = False) -> torch.Tensor:
        """A uint8 tensor of ``shape``, contents undefined: recycled memory when an idle buffer of that size
        (and kind) exists, else new.

        Args:
            shape: the tensor's shape.
            pin: page-locked memory for a CUDA copy (never recycled here, see the class).
            shared: memory process workers can write (``share``).

        Returns:
            A contiguous uint8 CPU tensor that nothing else refers to.

        Raises:
            OSError: ``shared`` and /dev/shm cannot hold the buffer.
        """
        if pin:
            return torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        nbytes = math.prod(shape)
        with self._lock:
            for i, (buffer, idle, name) in enumerate(self._held):
                if buffer.numel() == nbytes and (name is not None) == shared and _uses(buffer) == idle:
                    self._held.append(self._held.pop(i))  # most recently used last: trimmed last
                    self.reused += 1
                    return buffer.view(shape)
            if shared:
                buffer, new_name = _shared_buffer(max(nbytes, 1))
                buffer = buffer[:nbytes]
                self._names.add(new_name)
            else:
                buffer, new_name = torch.empty(nbytes, dtype=torch.uint8), None
            self._held.append((buffer, _uses(buffer), new_name))
            self.allocated += 1
            out = buffer.view(shape)  # taken before trimming, so the new buffer counts as in use
            self._trim()
            return out

    def share(self, row: np.ndarray) -> SharedRow | None:
        """Where ``row`` (a view of a buffer from this pool) lies in its shared buffer; None for a row of
        private memory."""
        at = row.ctypes.data
        with self._lock:
            for buffer, _, name in self._held:
                base = buffer.data_ptr()
                if name is not None and base <= at < base + buffer.numel():
                    return SharedRow(name, at - base, tuple(row.shape), tuple(row.strides))
        return None

    def share_args(self, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """A worker call's ``args`` with every row of a shared buffer among them (or in a list among them)
        as its ``SharedRow``; None when there is none."""

        found = False

        def shared(arg: Any) -> Any:
            nonlocal found
            if isinstance(arg, np.ndarray):
                row = self.share(arg)
                found = found or row is not None
                return row or arg
            if isinstance(arg, list) and any(isinstance(a, np.ndarray) for a in arg):
                return [shared(a) for a in arg]
            return arg

        out = tuple(shared(a) for a in args)
        return out if found else None

    def idle(self) -> int:
        """How many kept buffers nothing but the pool refers to.

        Returns:
            The count.
        """
        with self._lock:
            return sum(_uses(buffer) == idle for buffer, idle, _ in self._held)

    def clear(self) -> None:
        """Let go of every buffer (those in use stay valid for their users; shared files are unlinked)."""
        with self._lock:
            _unlink_all(self._names)
            self._held.clear()

    def _trim(self) -> None:
        flags = [_uses(buffer) == idle for buffer, idle, _ in self._held]
        idle = [i for i, f in enumerate(flags) if f]
        busy = [i for i, f in enumerate(flags) if not f]
        drop = set(idle[: max(len(idle) - self.keep, 0)])
        drop.update(busy[: max(len(busy) - (2 * self.keep + 8), 0)])
        for i in drop:
            name = self._held[i][2]
            if name is not None:
                _unlink(name, self._names)
        if drop:
            self._held = [h for i, h in enumerate(self._held) if i not in drop]


# ---- the worker's side -----------------------------------------------------------------------------------

_mapped: dict[str, np.memmap] = {}  # a worker process's shared buffers, by name


def _row_array(row: SharedRow) -> np.ndarray:
    mapped = _mapped.get(row.name)
    if mapped is None:
        for gone in [n for n in _mapped if not os.path.exists(os.path.join(SHM_DIR, n))]:
            del _mapped[gone]  # buffers the loader let go: their memory is freed once unmapped here too
        mapped = _mapped[row.name] = np.memmap(os.path.join(SHM_DIR, row.name), dtype=np.uint8, mode="r+")
    return np.ndarray(row.shape, np.uint8, buffer=mapped, offset=row.offset, strides=row.strides)


def run_into_rows(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker process, each ``SharedRow`` among ``args`` (or in a list among them) given
    as the row's array in the shared buffer; frames the call wrote there come back as their ``SharedRow``
    (the results' ``swap_frames``), not as pixels."""
    rows: dict[tuple[int, tuple[int, ...]], SharedRow] = {}  # (address, shape) of each mapped row -> its ref

    def resolve(arg: Any) -> Any:
        if isinstance(arg, SharedRow):
            array = _row_array(arg)
            rows[(array.ctypes.data, arg.shape)] = arg
            return array
        if isinstance(arg, list) and any(isinstance(a, SharedRow) for a in arg):
            return [resolve(a) for a in arg]
        return arg

    result = fn(*[resolve(a) for a in args])

    def back(frames: Any) -> Any:
        if isinstance(frames, np.ndarray):
            return rows.get((frames.ctypes.data, tuple(frames.shape)), frames)
        return frames

    if isinstance(result, list):
        return [r.swap_frames(back) for r in result]
    return result.swap_frames(back)


def attach_rows(result: Any, row: np.ndarray | None) -> Any:
    """A worker's result for one clip, with frames it wrote into a shared buffer given as ``row`` (this
    process's view of that row) again; as it is for a clip without a row."""
    if row is None:
        return result
    came_back: list[bool] = []

    def swap(frames: Any) -> Any:
        came_back.append(isinstance(frames, SharedRow))
        return row if came_back[-1] else frames

    out = result.swap_frames(swap)
    # Frames sent as pixels (a row this pool had already let go was sent as an array): copied into the row.
    return out if any(came_back) else result.placed(row)


def hold_until_done(fut: Future, rows: Any) -> None:
    """Keep ``rows`` (this process's views of a buffer a worker call writes into) referenced until ``fut``,
    the call, is done: until then the buffer is not idle, so never handed out again."""
    fut.add_done_callback(functools.partial(_holding, rows))


def _holding(rows: Any, fut: Future) -> None:
    """A done-callback that does nothing: being held by ``fut`` until it is done is what ``rows`` need."""
