"""A batch's memory: ClipBatch, what the loader yields (it prints shapes, not tensors; ``frame_mask`` makes
its mask of padded frames), and HostBuffers, the recycled host memory batches are decoded into.

HostBuffers, why: a fresh batch buffer is paid for twice. Large allocations (every video batch is far above
glibc's mmap threshold) come from ``mmap`` and go back on free, so the first write of each 4 KiB page faults
into the kernel, which zeroes it: writing 16 decoded 1080p frames into a new buffer cost 47-88 ms of CPU,
into memory already touched 8-14 ms (docs/bench.md, profile). Recycling the memory removes that.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from .._errors import ConfigError
from ..sampling import ClipSpec


@dataclass
class ClipBatch:
    """One batch of clips.

    ``video`` and ``label`` live on the loader's device; the bookkeeping tensors (indices, timestamps) stay
    on the CPU so reading them never synchronises the GPU. With a multi-view transform (3-crop eval) every
    per-clip field is repeated per view and ``view_index`` says which view a row is.

    A batch unpacks like the ``(video, target, video_idx)`` tuples of torchvision's video reference scripts::

        for video, label, video_index in loader: ...

    ``len(batch)`` is the number of rows (clips x views), not the 3 unpacked fields; every field stays
    reachable by name (``batch.timestamp``, ``batch.audio``, ...).

    Attributes:
        video: the clips, ``[B, ...]`` in the loader's ``output_layout`` (or what its transform returns).
        label: int64 ``[B]`` class labels.
        video_index: int64 ``[B]``: index of the clip's video in the dataset.
        clip_index: int64 ``[B]``: index of the clip within its video's clips this epoch.
        frame_index: int64 ``[B, T]``: index of every frame in the decoded stream.
        timestamp: float64 ``[B, T]``: presentation time of every frame, in seconds.
        view_index: int64 ``[B]`` view of a multi-view transform, else None.
        audio, audio_mask: the clip's audio and whether it has any, when the loader was given ``audio=``.

    Raises:
        ConfigError: a field is not a tensor or has a different number of rows than ``video``.
    """

    video: torch.Tensor
    label: torch.Tensor
    video_index: torch.Tensor
    clip_index: torch.Tensor
    frame_index: torch.Tensor  # int64 [B, T]: index into the decoded stream
    timestamp: torch.Tensor  # float64 [B, T]: seconds
    view_index: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    audio_mask: torch.Tensor | None = None
    # bool [B, T] on the loader's device: False for frames that only repeat the last frame of a video shorter
    # than the clip (short_video="pad"); a model can drop them from attention or pooling.
    frame_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        b = self.video.shape[0]
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise ConfigError(f"ClipBatch.{f.name} must be a tensor, got {type(value).__name__}")
            if value.shape[0] != b:
                raise ConfigError(f"ClipBatch.{f.name} has {value.shape[0]} rows, video has {b}")
        if self.frame_index.ndim != 2 or self.timestamp.shape != self.frame_index.shape:
            raise ConfigError(
                f"frame_index {tuple(self.frame_index.shape)} and timestamp {tuple(self.timestamp.shape)} must both be [B, T]"
            )
        if self.frame_mask is not None and (
            self.frame_mask.dtype != torch.bool or self.frame_mask.shape != self.frame_index.shape
        ):
            raise ConfigError(
                f"frame_mask must be bool {tuple(self.frame_index.shape)} like frame_index, got "
                f"{self.frame_mask.dtype} {tuple(self.frame_mask.shape)}"
            )

    def __len__(self) -> int:
        return int(self.video.shape[0])

    def __iter__(self) -> Iterator[torch.Tensor]:
        """``video, label, video_index = batch``: the tuple torchvision's video classification loop unpacks."""
        return iter((self.video, self.label, self.video_index))

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                parts.append(f"{f.name}={tuple(v.shape)} {str(v.dtype).removeprefix('torch.')} {v.device}")
        return "ClipBatch(" + ", ".join(parts) + ")"

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ClipBatch:
        """A copy with every tensor on ``device`` (``Tensor.to`` semantics for ``non_blocking``).

        Args:
            device: where the tensors go.
            non_blocking: passed to ``Tensor.to``.

        Returns:
            A new ClipBatch; this one is unchanged.
        """
        kw = {
            f.name: (
                getattr(self, f.name).to(device, non_blocking=non_blocking)
                if getattr(self, f.name) is not None
                else None
            )
            for f in fields(self)
        }
        return ClipBatch(**kw)  # type: ignore[arg-type]


def frame_mask(clips: Sequence[ClipSpec]) -> torch.Tensor:
    """bool ``[B, T]``: True for real frames, False for frames that only repeat a short video's last one."""
    t = len(clips[0].frame_indices) if clips else 0
    mask = torch.ones((len(clips), t), dtype=torch.bool)
    for i, c in enumerate(clips):
        if c.padded:
            mask[i, t - c.padded :] = False
    return mask


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
