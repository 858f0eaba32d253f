"""HostBuffers: host memory for batch buffers, taken again once nothing refers to a batch any more.

Why: a fresh batch buffer is paid for twice. Large allocations (every video batch is far above glibc's
mmap threshold) come from ``mmap`` and go back on free, so the first write of each 4 KiB page faults into
the kernel, which zeroes it: writing 16 decoded 1080p frames into a new buffer cost 47-88 ms of CPU, into
memory already touched 8-14 ms (docs/bench.md, profile). Recycling the memory removes that.

Never written while in use: the pool keeps each buffer as a flat torch tensor and hands out views of it.
Every tensor that sees the memory (a view, a slice, a reshape, the tensor behind a ``.numpy()`` array or a
DLPack capsule) holds a reference to the buffer's storage, and a held ``UntypedStorage``/``TypedStorage``
holds the storage's Python object; the pool gives a buffer out again only when both counts are back to
what they were when it was made. Plain torch storage, not NumPy-backed tensors: their deleter takes the
GIL, which a tensor freed on a non-Python thread or during interpreter shutdown must not need.
"""

from __future__ import annotations

import math
import sys
import threading

import torch


def _uses(buffer: torch.Tensor) -> tuple[int, int]:
    """References to ``buffer``'s storage from tensors, and to the storage's Python object."""
    # torch has no public accessor for a storage's use count; this one is pinned with torch in the lock,
    # and tests/test_host_buffers.py fails if it stops tracking views, arrays, storages or capsules.
    storage = buffer.untyped_storage()
    return torch._C._storage_Use_Count(storage._cdata), sys.getrefcount(storage)


class HostBuffers:
    """Recycled, unpinned host memory for uint8 batch buffers.

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
        self._held: list[tuple[torch.Tensor, tuple[int, int]]] = []  # (flat buffer, its idle counts)
        self._lock = threading.Lock()
        self.reused = 0
        self.allocated = 0

    def take(self, shape: tuple[int, ...], *, pin: bool = False) -> torch.Tensor:
        """A uint8 tensor of ``shape``, contents undefined: recycled memory when an idle buffer of that size
        exists, else new.

        Args:
            shape: the tensor's shape.
            pin: page-locked memory for a CUDA copy (never recycled here, see the class).

        Returns:
            A contiguous uint8 CPU tensor that nothing else refers to.
        """
        if pin:
            return torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        nbytes = math.prod(shape)
        with self._lock:
            for i, (buffer, idle) in enumerate(self._held):
                if buffer.numel() == nbytes and _uses(buffer) == idle:
                    self._held.append(self._held.pop(i))  # most recently used last: trimmed last
                    self.reused += 1
                    return buffer.view(shape)
            buffer = torch.empty(nbytes, dtype=torch.uint8)
            self._held.append((buffer, _uses(buffer)))
            self.allocated += 1
            out = buffer.view(shape)  # taken before trimming, so the new buffer counts as in use
            self._trim()
            return out

    def idle(self) -> int:
        """How many kept buffers nothing but the pool refers to.

        Returns:
            The count.
        """
        with self._lock:
            return sum(_uses(buffer) == idle for buffer, idle in self._held)

    def clear(self) -> None:
        """Let go of every buffer (those in use stay valid for their users)."""
        with self._lock:
            self._held.clear()

    def _trim(self) -> None:
        flags = [_uses(buffer) == idle for buffer, idle in self._held]
        idle = [i for i, f in enumerate(flags) if f]
        busy = [i for i, f in enumerate(flags) if not f]
        drop = set(idle[: max(len(idle) - self.keep, 0)])
        drop.update(busy[: max(len(busy) - (2 * self.keep + 8), 0)])
        if drop:
            self._held = [h for i, h in enumerate(self._held) if i not in drop]
