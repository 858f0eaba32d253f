"""What sampling decides per video, decided for every video at once on a dataset's columns (first frame,
frame count, timestamps): which videos are shorter than one clip and how many clips each gives. A dataset
opened from an index answers from its memory-mapped columns, so neither builds a VideoInfo per video.

Target-fps decisions compare times exactly, as ``video_clips`` does with Fractions: in integers (int64
while the products fit, Python integers beyond)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..dataset import InfoColumns, VideoColumns, VideoInfo
from ._config import SamplingConfig


@runtime_checkable
class HasColumns(Protocol):
    """Videos that give their facts column-wise (``VideoDataset.columns``)."""

    @property
    def columns(self) -> VideoColumns: ...


def columns_of(videos: Sequence[VideoInfo]) -> VideoColumns:
    """The columns of a dataset (read from its index), or of a plain sequence of VideoInfo.

    Args:
        videos: a VideoDataset or any sequence of VideoInfo.

    Returns:
        Its ``VideoColumns``.
    """
    return videos.columns if isinstance(videos, HasColumns) else InfoColumns(videos)


def period(cfg: SamplingConfig) -> Fraction:
    """Seconds between two frames of a clip in target-fps mode, exact."""
    if cfg.target_fps is None:
        raise ValueError("period() is for target-fps sampling")
    # Exact rationals: in floats t0 + k / fps lands a hair before a frame sitting exactly at that time (0.6 s
    # is 0.59999... s), and "last frame with pts <= t" then takes the frame before it.
    return 1 / Fraction(cfg.target_fps).limit_denominator(1_000_000)


def _exact(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays as int64 when every product of one element of each fits in 62 bits, else as Python
    integers (object arrays), so that their products are exact either way."""
    bound = 1.0
    for a in arrays:
        bound *= float(np.abs(a).max(initial=0)) + 1.0
    dtype: Any = np.int64 if bound < 2.0**62 else object
    return [np.asarray(a).astype(dtype) for a in arrays]


def time_room(cols: VideoColumns, cfg: SamplingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per video, the seconds a clip's start can move in target-fps mode, as a fraction ``num / den`` of
    integers (negative for a video shorter than one clip): its first-to-last-frame span less
    ``(frames_per_clip - 1)`` periods.

    Raises:
        IndexError: a video has no timestamps.
    """
    first = np.asarray(cols.array("first_frame"), np.int64)
    last = first + np.asarray(cols.array("num_frames"), np.int64) - 1
    videos = np.arange(len(cols))
    span = cols.pts_at(videos, last) - cols.pts_at(videos, first)
    p = period(cfg)
    tb_num, tb_den = cols.array("time_base_num"), cols.array("time_base_den")
    span, tb_num, tb_den, pn, pd = _exact(
        span, tb_num, tb_den, np.array([p.numerator]), np.array([p.denominator])
    )
    # span * tb - (k - 1) * p  ==  (span * tb_num * pd - (k - 1) * pn * tb_den) / (tb_den * pd)
    return span * tb_num * pd - (cfg.frames_per_clip - 1) * pn * tb_den, tb_den * pd


def short_mask(videos: Sequence[VideoInfo], cfg: SamplingConfig) -> np.ndarray:
    """Which videos are shorter than one clip (what ``short_video`` decides about), for every video.

    Args:
        videos: a VideoDataset (read column-wise) or a sequence of VideoInfo.
        cfg: the sampling.

    Returns:
        bool ``[len(videos)]``, True where ``is_short`` is.
    """
    cols = columns_of(videos)
    if cfg.target_fps is not None:
        room, _ = time_room(cols, cfg)
        return np.asarray(room < 0, bool)
    return np.asarray(cols.array("num_frames")) < (cfg.frames_per_clip - 1) * cfg.frame_stride + 1


def clip_counts(videos: Sequence[VideoInfo], cfg: SamplingConfig) -> np.ndarray:
    """How many clips each video gives per epoch (``clip_count`` of every video, the same every epoch).

    Args:
        videos: a VideoDataset (read column-wise) or a sequence of VideoInfo.
        cfg: the sampling.

    Returns:
        int64 ``[len(videos)]``.
    """
    cols = columns_of(videos)
    short = short_mask(videos, cfg) if cfg.short_video == "skip" else np.zeros(len(cols), bool)
    if not cfg.windowed:
        counts = np.full(len(cols), cfg.clips_per_video, np.int64)
    elif cfg.target_fps is None:
        need = (cfg.frames_per_clip - 1) * cfg.frame_stride + 1
        room = np.maximum(np.asarray(cols.array("num_frames"), np.int64) - need, 0)
        counts = room // cfg.step + 1
    else:
        num, den = time_room(cols, cfg)
        p = period(cfg)
        # Windows every step periods while one fits: floor(room / (step * p)) + 1, room clipped at 0.
        num, den, pn, pd = _exact(np.maximum(num, 0), den, np.array([p.numerator]), np.array([p.denominator]))
        counts = np.asarray((num * pd) // (den * cfg.step * pn) + 1, np.int64)
    if cfg.sampling != "sliding":
        counts = np.minimum(counts, cfg.clips_per_video)
    counts[short] = 0
    return counts
