"""HostBuffers: host memory for batch buffers, taken again once nothing refers to a batch any more.

Why: a fresh batch buffer is paid for twice. Large allocations (every video batch is far above glibc's
mmap threshold) come from ``mmap`` and go back on free, so the first write of each 4 KiB page faults into
the kernel, which zeroes it: writing 16 decoded 1080p frames into a new buffer cost 47-88 ms of CPU, into
memory already touched 8-14 ms (docs/bench.md, profile). Recycling the memory removes that.

Never written while in use: every buffer is a NumPy array the pool keeps, handed out as ``torch.from_numpy``
views (the array itself may sit on a torch tensor's memory). Each tensor storage made from it holds a reference to the array for as long as any tensor, view,
slice or ``.numpy()`` array of it is alive, so the array's reference count says exactly whether the caller
(or anything else) can still see the memory. The pool gives a buffer out again only when its count shows
the pool's own references alone: a batch the training loop keeps, in any form, is never rewritten.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import torch

# sys.getrefcount of an array held only by the pool's list: the list's reference plus the call's argument.
_IDLE_REFS = 2


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
        self._held: list[np.ndarray] = []
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
            for i in range(len(self._held)):
                if self._held[i].nbytes == nbytes and sys.getrefcount(self._held[i]) == _IDLE_REFS:
                    base = self._held.pop(i)
                    self._held.append(base)  # most recently used last: trimming drops the oldest first
                    self.reused += 1
                    return torch.from_numpy(base).view(shape)
            # torch's allocator, not NumPy's: NumPy asks for transparent huge pages on large arrays, and
            # faulting those in cost more than 4 KiB pages here (docs/bench.md, profile).
            base = torch.empty(nbytes, dtype=torch.uint8).numpy()
            self._held.append(base)
            self.allocated += 1
            self._trim()
            return torch.from_numpy(base).view(shape)

    def idle(self) -> int:
        """How many kept buffers nothing but the pool refers to.

        Returns:
            The count.
        """
        with self._lock:
            return sum(sys.getrefcount(self._held[i]) == _IDLE_REFS for i in range(len(self._held)))

    def clear(self) -> None:
        """Let go of every buffer (those in use stay valid for their users)."""
        with self._lock:
            self._held.clear()

    def _trim(self) -> None:
        idle = [i for i in range(len(self._held)) if sys.getrefcount(self._held[i]) == _IDLE_REFS]
        drop = set(idle[: max(len(idle) - self.keep, 0)])
        busy = [i for i in range(len(self._held)) if i not in set(idle)]
        drop.update(busy[: max(len(busy) - (2 * self.keep + 8), 0)])
        if drop:
            self._held = [b for i, b in enumerate(self._held) if i not in drop]
