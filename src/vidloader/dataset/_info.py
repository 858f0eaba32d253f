"""VideoInfo: what the index knows about one video (or one segment of it)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import Any, Protocol

from .._errors import ConfigError


class IndexRow(Protocol):
    """Where a VideoInfo read from a memory-mapped index lives, so it can travel as that reference."""

    def reduce(self) -> tuple[Callable[..., VideoInfo], tuple[Any, ...]]:
        """How another process reads the row again: (function, arguments), as ``__reduce__`` returns them."""
        ...


@dataclass(frozen=True)
class VideoInfo:
    """One indexed video, or the `[start, end)` segment of one.

    ``num_frames`` and ``duration`` describe the segment; frame indices everywhere in vidloader count
    decoded frames of the whole chosen stream in presentation order, so a segment covers the indices
    ``first_frame .. first_frame + num_frames - 1``.

    ``index_row`` is set only on a VideoInfo read from a memory-mapped index (``from_index_row``): it then
    pickles as that row's reference, a few hundred bytes, instead of every frame's pts, and the receiving
    process reads the row from its own map of the same file. Copies made with ``dataclasses.replace``
    (a relabelled or cut VideoInfo) are no longer that row, and pickle in full.
    """

    path: str
    label: int
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    rotation: int
    has_audio: bool
    start: float | None = None
    end: float | None = None
    stream_index: int = 0
    time_base_num: int = 1
    time_base_den: int = 1
    first_frame: int = 0
    size_bytes: int = 0
    # Presentation timestamps (stream time base) of every frame of the whole stream, sorted; they let the
    # sampler work in time (target fps, VFR) and let decoders find frames by pts after a seek.
    frame_pts: tuple[int, ...] = field(default=(), repr=False)
    keyframe_pts: tuple[int, ...] = field(default=(), repr=False)
    audio_streams: tuple[int, ...] = field(default=(), repr=False)
    # What is known of damage (whole stream, not just the segment): the frames the container lists (0: not
    # recorded, as in indexes written before these fields), the frames a full decode gave with no error
    # that can touch them (-1: no full decode was made; the probe makes one only for a file it sees
    # damaged, ``verify`` for every file), and FFmpeg's first error ("" when none was seen).
    frames_in_container: int = 0
    frames_decoded: int = -1
    damage: str = ""
    # Not an argument (init=False): ``replace`` does not carry it to a changed copy; not compared either.
    index_row: IndexRow | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"{self.path}: num_frames must be >= 1, got {self.num_frames}")
        if self.frame_pts and self.first_frame + self.num_frames > len(self.frame_pts):
            raise ConfigError(f"{self.path}: segment runs past the stream's {len(self.frame_pts)} frames")

    @property
    def time_base(self) -> Fraction:
        return Fraction(self.time_base_num, self.time_base_den)

    @property
    def damaged(self) -> bool:
        """Whether indexing found this file damaged (``damage`` says how; ``frames_decoded`` of
        ``frames_in_container`` frames decode)."""
        return bool(self.damage)

    @property
    def verified(self) -> bool:
        """Whether every frame of the file was decoded once at indexing (``frames_decoded`` is known)."""
        return self.frames_decoded >= 0

    @property
    def total_frames(self) -> int:
        """Frames in the whole stream (not just the segment)."""
        return len(self.frame_pts) if self.frame_pts else self.first_frame + self.num_frames

    def pts_seconds(self, frame_index: int) -> float:
        return float(self.frame_pts[frame_index] * self.time_base)

    def frame_at_time(self, t: float | Fraction) -> int:
        """Index of the last frame whose pts <= t (seconds), clamped to the segment."""
        tb = self.time_base
        # Compare in exact rationals so a frame exactly at t is never lost to float rounding.
        target = Fraction(t) / tb
        i = bisect.bisect_right(self.frame_pts, target) - 1
        lo, hi = self.first_frame, self.first_frame + self.num_frames - 1
        return min(max(i, lo), hi)

    def with_segment(self, *, label: int, start: float | None, end: float | None) -> VideoInfo:
        """This stream restricted to presentation times in [start, end), relabelled."""
        if start is None and end is None:
            return replace(self, label=label)
        pts_s = [p * self.time_base for p in self.frame_pts]
        lo = 0 if start is None else bisect.bisect_left(pts_s, Fraction(start))
        hi = len(pts_s) if end is None else bisect.bisect_left(pts_s, Fraction(end))
        if hi <= lo:
            raise ConfigError(f"{self.path}: segment [{start}, {end}) s holds no frame")
        seg_pts = self.frame_pts[lo:hi]
        step = (seg_pts[-1] - seg_pts[0]) / max(len(seg_pts) - 1, 1)
        duration = (
            float((seg_pts[-1] - seg_pts[0] + step) * self.time_base) if len(seg_pts) > 1 else 1 / self.fps
        )
        return replace(
            self, label=label, start=start, end=end, first_frame=lo, num_frames=hi - lo, duration=duration
        )

    @classmethod
    def from_index_row(cls, row: IndexRow, **values: Any) -> VideoInfo:
        """The VideoInfo of a row of a memory-mapped index, which pickles as ``row.reduce()``.

        Args:
            row: the row's reference.
            **values: the VideoInfo's fields, as read from the row.

        Returns:
            The VideoInfo.
        """
        info = cls(**values)
        object.__setattr__(info, "index_row", row)  # frozen: set once, here, by the class itself
        return info

    def __reduce_ex__(self, protocol):
        if self.index_row is not None:
            return self.index_row.reduce()
        return super().__reduce_ex__(protocol)

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        for k in ("frame_pts", "keyframe_pts", "audio_streams"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VideoInfo:
        d = dict(d)
        for k in ("frame_pts", "keyframe_pts", "audio_streams"):
            d[k] = tuple(d.get(k, ()))
        return cls(**d)


def whole_stream(info: VideoInfo) -> VideoInfo:
    """The VideoInfo of a segment widened back to its whole stream, unlabelled (what a probe returns).

    Args:
        info: a VideoInfo, of a segment or not.

    Returns:
        The whole stream's VideoInfo with label -1.
    """
    if info.start is None and info.end is None:
        return replace(info, label=-1)
    n = len(info.frame_pts)
    span = (info.frame_pts[-1] - info.frame_pts[0]) * info.time_base
    duration = float(span) + (float(span) / (n - 1) if n > 1 else 1.0 / info.fps)
    return replace(info, label=-1, start=None, end=None, first_frame=0, num_frames=n, duration=duration)
