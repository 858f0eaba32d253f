"""RaggedClips: a batch of uint8 clips of one length but each at its own frame size, packed in one buffer.

Real datasets mix resolutions and aspect ratios, so decoded clips of one batch cannot be stacked. Packing
them back to back in one flat uint8 buffer (clip ``i`` is ``[T, H_i, W_i, 3]`` contiguous at element
``offsets[i]``) lets one kernel launch read every clip at its own size, and lets decode workers write each
clip straight into its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .._errors import ConfigError


def packed_offsets(sizes: Sequence[tuple[int, int]], frames: int) -> tuple[list[int], int]:
    """Element offset of each clip in a packed buffer of ``frames``-long clips of ``sizes``, and its length."""
    offsets, total = [], 0
    for h, w in sizes:
        offsets.append(total)
        total += frames * h * w * 3
    return offsets, total


def _check_sizes(sizes: object) -> list[tuple[int, int]]:
    if isinstance(sizes, torch.Tensor):
        sizes = [tuple(int(v) for v in row) for row in sizes.tolist()]
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise ConfigError(f"sizes must be a list of (height, width) pairs, got {type(sizes).__name__}")
    out = []
    for s in sizes:
        if (
            not isinstance(s, Sequence)
            or len(s) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in s)
        ):
            raise ConfigError(
                f"sizes contains {s!r}; every entry must be a (height, width) pair of ints >= 1"
            )
        out.append((int(s[0]), int(s[1])))
    return out


@dataclass(frozen=True)
class RaggedClips:
    """``len(sizes)`` uint8 RGB clips of ``frames`` frames, clip ``i`` of ``sizes[i] = (H_i, W_i)``.

    ``data`` is the flat packed buffer (any device); ``sizes`` and ``offsets`` are host-side lists, so
    reading them never synchronises a GPU.
    """

    data: torch.Tensor = field(repr=False)
    sizes: tuple[tuple[int, int], ...]
    frames: int
    offsets: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sizes = tuple(_check_sizes(self.sizes))
        object.__setattr__(self, "sizes", sizes)
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ConfigError(f"frames={self.frames!r} is not allowed; need an int >= 1")
        if not isinstance(self.data, torch.Tensor) or self.data.dtype != torch.uint8 or self.data.dim() != 1:
            raise ConfigError(
                f"data must be a flat (1-D) uint8 torch.Tensor, got "
                f"{getattr(self.data, 'dtype', type(self.data).__name__)} {tuple(getattr(self.data, 'shape', ()))}"
            )
        offsets, total = packed_offsets(sizes, self.frames)
        if self.data.numel() != total:
            raise ConfigError(
                f"data has {self.data.numel()} elements but {len(sizes)} clips of {self.frames} frames at "
                f"sizes {list(sizes)} need {total}"
            )
        object.__setattr__(self, "offsets", tuple(offsets))

    @classmethod
    def empty(
        cls,
        sizes: Sequence[tuple[int, int]],
        frames: int,
        *,
        device: torch.device | str = "cpu",
        pin_memory: bool = False,
    ) -> RaggedClips:
        """An uninitialised batch whose :meth:`clip` views can be filled in place (e.g. by decoders)."""
        _, total = packed_offsets(_check_sizes(sizes), frames)
        data = torch.empty(total, dtype=torch.uint8, device=device, pin_memory=pin_memory)
        return cls(data=data, sizes=tuple(sizes), frames=frames)

    @classmethod
    def from_clips(cls, clips: Sequence[torch.Tensor]) -> RaggedClips:
        """Pack uint8 ``[T, H_i, W_i, 3]`` clips (one T, one device) into one buffer: one copy each."""
        if not clips:
            raise ConfigError("from_clips needs at least one clip")
        for i, c in enumerate(clips):
            if not isinstance(c, torch.Tensor) or c.dtype != torch.uint8 or c.dim() != 4 or c.shape[-1] != 3:
                raise ConfigError(
                    f"clips[{i}] must be a uint8 torch.Tensor [T, H, W, 3], got "
                    f"{getattr(c, 'dtype', type(c).__name__)} {tuple(getattr(c, 'shape', ()))}"
                )
        lengths = {int(c.shape[0]) for c in clips}
        if len(lengths) != 1:
            raise ConfigError(f"clips have different frame counts {sorted(lengths)}; they must all match")
        out = cls.empty(
            [(int(c.shape[1]), int(c.shape[2])) for c in clips], lengths.pop(), device=clips[0].device
        )
        for i, c in enumerate(clips):
            out.clip(i).copy_(c)
        return out

    @classmethod
    def from_batch(cls, video: torch.Tensor) -> RaggedClips:
        """A uniform uint8 ``[B, T, H, W, 3]`` batch as ragged clips (a view when it is contiguous)."""
        b, t, h, w, _ = video.shape
        return cls(data=video.contiguous().view(-1), sizes=((h, w),) * b, frames=t)

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def heights(self) -> list[int]:
        return [h for h, _ in self.sizes]

    @property
    def widths(self) -> list[int]:
        return [w for _, w in self.sizes]

    def clip(self, i: int) -> torch.Tensor:
        """Clip ``i`` as a ``[T, H_i, W_i, 3]`` view into ``data``."""
        h, w = self.sizes[i]
        start = self.offsets[i]
        return self.data[start : start + self.frames * h * w * 3].view(self.frames, h, w, 3)

    def select(self, rows: Sequence[int]) -> RaggedClips:
        """The clips at ``rows`` (in that order), packed anew."""
        return RaggedClips.from_clips([self.clip(i) for i in rows])

    def geometry(self) -> torch.Tensor:
        """int64 ``[B, 3]`` rows of ``(offset, height, width)`` on the host: the op's view of the packing."""
        return torch.tensor(
            [(o, h, w) for o, (h, w) in zip(self.offsets, self.sizes, strict=True)], dtype=torch.int64
        ).view(len(self.sizes), 3)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> RaggedClips:
        return RaggedClips(
            data=self.data.to(device, non_blocking=non_blocking), sizes=self.sizes, frames=self.frames
        )
