"""A dataset's per-video facts as arrays, whatever holds its videos: what plans, short-video checks, audio
lengths and the resume fingerprint read, so that none of them builds a VideoInfo per video.

An index (``IndexRows``) reads them from its memory-mapped columns; ``InfoColumns`` gives the same for
videos already held as VideoInfo objects (a probed dataset, a list in tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

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

    def path_array(self) -> Any:
        """Every video's path as an Arrow string array (chunked or not)."""
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

    def path_array(self) -> Any:
        import pyarrow as pa

        return pa.array([v.path for v in self._videos], pa.string())


def fingerprint(columns: VideoColumns) -> str:
    """What identifies a dataset for resume checks: the sha256 (16 hex digits) of ``path\\0first\\0count\\n``
    per video (its path, first frame and frame count), built in Arrow a chunk at a time.

    Args:
        columns: the dataset's columns.

    Returns:
        The digest.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    h = hashlib.sha256()
    paths = columns.path_array()
    chunks = paths.chunks if isinstance(paths, pa.ChunkedArray) else [paths]
    first, num = columns.array("first_frame"), columns.array("num_frames")
    at = 0
    for chunk in chunks:
        n = len(chunk)
        counts = pc.binary_join_element_wise(pa.array(num[at : at + n]).cast(pa.string()), "\n", "")
        lines = pc.binary_join_element_wise(
            chunk, pa.array(first[at : at + n]).cast(pa.string()), counts, "\0"
        )
        if n:
            _, offsets, data = lines.buffers()
            ends = np.frombuffer(offsets, np.int32)[[lines.offset, lines.offset + n]]
            h.update(memoryview(data)[int(ends[0]) : int(ends[1])])
        at += n
    # Arrow's allocator keeps the freed lines for reuse; nothing this size is built again soon.
    pa.default_memory_pool().release_unused()
    return h.hexdigest()[:16]
