"""ClipPlan: an epoch's clips held as three arrays, a ClipSpec made only for the clip that is asked for.

A million clips as ClipSpec objects cost about 700 MB and seconds to build; as arrays they are 80 MB.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from .._errors import ConfigError


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """One clip: ``frame_indices`` index the decoded frames of the video's stream (presentation order).

    ``padded``: how many trailing frames only repeat the video's last frame because the video is shorter
    than the clip (``short_video="pad"``); the loader turns it into ``ClipBatch.frame_mask``.
    """

    video_index: int
    clip_index: int
    frame_indices: tuple[int, ...]
    padded: int = 0

    def __post_init__(self) -> None:
        if not self.frame_indices:
            raise ConfigError("a clip needs at least one frame index")
        if not 0 <= self.padded < len(self.frame_indices):
            raise ConfigError(
                f"padded={self.padded} must be in [0, {len(self.frame_indices)}) (at least one real frame)"
            )


class ClipPlan(Sequence[ClipSpec]):
    """Clips in order: ``plan[i]`` is a ClipSpec, ``plan[a:b]`` a list of them; equal to any sequence of
    the same clips. Held as arrays, so a million clips cost tens of MB, not a million objects.

    Args:
        videos: int64 ``[N]`` video indices.
        clips: int64 ``[N]`` clip indices within each video.
        frames: ``[N, frames_per_clip]`` frame indices.
        padded: ``[N]`` trailing padding frames per clip (default: none).

    Raises:
        ConfigError: the arrays disagree in length, or ``frames`` is not 2-D.
    """

    def __init__(
        self, videos: np.ndarray, clips: np.ndarray, frames: np.ndarray, padded: np.ndarray | None = None
    ) -> None:
        if not (len(videos) == len(clips) == len(frames)) or frames.ndim != 2:
            raise ConfigError("a clip plan needs as many videos, clip indices and frame rows")
        self.videos = np.ascontiguousarray(videos, np.int64)
        self.clips = np.ascontiguousarray(clips, np.int64)
        # Frame indices fit int32 (2**31 frames is 2.7 years at 25 fps): half the memory of int64.
        self.frames = np.ascontiguousarray(frames, np.int32)
        self.padded = (
            np.zeros(len(videos), np.int32) if padded is None else np.ascontiguousarray(padded, np.int32)
        )

    @classmethod
    def from_specs(cls, specs: Sequence[ClipSpec], frames_per_clip: int) -> ClipPlan:
        if isinstance(specs, ClipPlan):
            return specs
        frames = np.array([c.frame_indices for c in specs], np.int64).reshape(len(specs), frames_per_clip)
        return cls(
            np.array([c.video_index for c in specs], np.int64),
            np.array([c.clip_index for c in specs], np.int64),
            frames,
            np.array([c.padded for c in specs], np.int32),
        )

    @classmethod
    def concat(cls, plans: Sequence[Sequence[ClipSpec]]) -> ClipPlan:
        """One plan of several in order (ClipPlans joined as arrays; other sequences read clip by clip)."""
        parts = [cls.from_specs(p, len(p[0].frame_indices)) for p in plans if len(p)]
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 1), np.int32))
        return cls(
            np.concatenate([p.videos for p in parts]),
            np.concatenate([p.clips for p in parts]),
            np.concatenate([p.frames for p in parts]),
            np.concatenate([p.padded for p in parts]),
        )

    def take(self, rows: np.ndarray) -> ClipPlan:
        return ClipPlan(self.videos[rows], self.clips[rows], self.frames[rows], self.padded[rows])

    def __len__(self) -> int:
        return len(self.videos)

    def _spec(self, i: int) -> ClipSpec:
        return ClipSpec(
            video_index=int(self.videos[i]),
            clip_index=int(self.clips[i]),
            frame_indices=tuple(self.frames[i].tolist()),
            padded=int(self.padded[i]),
        )

    @overload
    def __getitem__(self, i: int) -> ClipSpec: ...
    @overload
    def __getitem__(self, i: slice) -> list[ClipSpec]: ...
    def __getitem__(self, i: int | slice) -> ClipSpec | list[ClipSpec]:
        if isinstance(i, slice):
            rows = range(*i.indices(len(self)))
            v, c, f = self.videos[i].tolist(), self.clips[i].tolist(), self.frames[i].tolist()
            p = self.padded[i].tolist()
            return [
                ClipSpec(video_index=v[k], clip_index=c[k], frame_indices=tuple(f[k]), padded=p[k])
                for k in range(len(rows))
            ]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"clip {i} out of range for a plan of {n} clips")
        return self._spec(i % n)

    def __iter__(self) -> Iterator[ClipSpec]:
        step = 4096
        for s in range(0, len(self), step):
            yield from self[s : s + step]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ClipPlan):
            return (
                np.array_equal(self.videos, other.videos)
                and np.array_equal(self.clips, other.clips)
                and np.array_equal(self.frames, other.frames)
                and np.array_equal(self.padded, other.padded)
            )
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ClipPlan(clips={len(self)}, frames_per_clip={self.frames.shape[1]})"

    def batches(self, batch_size: int, start: int, stop: int) -> Sequence[list[ClipSpec]]:
        """Batches ``start`` to ``stop`` (exclusive) of ``batch_size`` clips each, made when indexed."""
        return _Batches(self, batch_size, start, stop)


class _Batches(Sequence[list[ClipSpec]]):
    def __init__(self, plan: ClipPlan, batch_size: int, start: int, stop: int) -> None:
        self._plan, self._size, self._start = plan, batch_size, start
        self._n = max(stop - start, 0)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, b):
        if isinstance(b, slice):
            return [self[k] for k in range(*b.indices(self._n))]
        if not 0 <= b < self._n:
            raise IndexError(f"batch {b} out of range ({self._n} batches)")
        first = (self._start + b) * self._size
        return self._plan[first : first + self._size]
