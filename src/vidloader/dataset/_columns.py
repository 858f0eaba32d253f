"""A dataset's per-video facts as arrays, whatever holds its videos: what plans, short-video checks, audio
lengths and the resume fingerprint read, so that none of them builds a VideoInfo per video.

An index (``IndexRows``) reads them from its memory-mapped columns; ``InfoColumns`` gives the same for
videos already held as VideoInfo objects (a probed dataset, a list in tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ._index_writer import constant_step
from ._info import VideoInfo


class VideoColumns(Protocol):
    """Per-video facts of a dataset, read column-wise (``IndexRows`` and ``InfoColumns``)."""

    def __len__(self) -> int: ...

    def array(self, name: str) -> np.ndarray:
        """A numeric or boolean VideoInfo field of every video, or ``total_frames``, or ``pts_step`` (the
        step of a constant rate's timestamps, 0 for a variable rate)."""
        ...

    def pts_at(self, videos: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The pts of frame ``frames[i]`` (of the whole stream) of video ``videos[i]``."""
        ...

    def paths_of(self, videos: np.ndarray) -> list[str]:
        """The paths of some videos."""
        ...

    def fingerprint(self) -> str:
        """What identifies the videos for resume checks: the sha256 (16 hex digits) of
        ``path\0first\0count\n`` per video (its path, first frame and frame count)."""
        ...


class InfoColumns:
    """``VideoColumns`` of videos held as VideoInfo objects (read from them; none is built).

    Args:
        videos: the videos.
    """

    def __init__(self, videos: Sequence[VideoInfo]) -> None:
        self._videos = videos

    def __len__(self) -> int:
        return len(self._videos)

    def array(self, name: str) -> np.ndarray:
        if name == "pts_step":  # as the index stores it: the step of a constant rate, else 0
            return np.array([constant_step(v.frame_pts) for v in self._videos], np.int64)
        values = [getattr(v, name) for v in self._videos]
        return np.array(values, np.bool_ if values and isinstance(values[0], bool) else None)

    def pts_at(self, videos: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Raises IndexError: a video has no timestamp for that frame."""
        pairs = zip(np.asarray(videos).tolist(), np.asarray(frames).tolist(), strict=True)
        return np.array([self._videos[v].frame_pts[f] for v, f in pairs], np.int64)

    def paths_of(self, videos: np.ndarray) -> list[str]:
        return [self._videos[v].path for v in np.asarray(videos).tolist()]

    def fingerprint(self) -> str:
        # Videos held as objects are few enough for Python; it spares such a process importing Arrow.
        h = hashlib.sha256()
        for v in self._videos:
            h.update(f"{v.path}\0{v.first_frame}\0{v.num_frames}\n".encode())
        return h.hexdigest()[:16]
