"""ClipBatch, what the loader yields (it prints shapes, not tensors; ``frame_mask`` makes its mask of padded
frames). The host memory batches are decoded into is ``_host_memory``'s.
"""

from __future__ import annotations

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
