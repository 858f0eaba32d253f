"""One video's clips for one epoch: where they start and which frames they hold, under every sampling mode
and short-video policy. ``plan_epoch`` uses these for what its array planner does not cover."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .._errors import ConfigError
from ..dataset import VideoInfo
from ._clips import ClipSpec
from ._config import SamplingConfig
from ._random import TAG_CLIPS, choose_windows, uniform01
from ._video_columns import period as _period
from ._video_columns import short_mask


def _index_clip(info: VideoInfo, start: int, cfg: SamplingConfig) -> tuple[tuple[int, ...], int]:
    """Frame indices of the clip starting at ``start`` and how many of them are padding."""
    first, n = info.first_frame, info.num_frames
    last = first + n - 1
    wanted = [start + k * cfg.frame_stride for k in range(cfg.frames_per_clip)]
    if cfg.short_video == "loop":
        # The video played again from its first frame: the stride between frames is kept.
        return tuple(first + (i - first) % n for i in wanted), 0
    # Past the end a clip repeats the last frame (padding for videos shorter than a clip).
    return tuple(min(i, last) for i in wanted), sum(i > last for i in wanted)


def _time_span(info: VideoInfo) -> tuple[Fraction, Fraction]:
    """Presentation times of the video's first and last frame."""
    lo = info.frame_pts[info.first_frame] * info.time_base
    return lo, info.frame_pts[info.first_frame + info.num_frames - 1] * info.time_base


def _time_clip(info: VideoInfo, t0: Fraction, cfg: SamplingConfig) -> tuple[tuple[int, ...], int]:
    period = _period(cfg)
    times = [t0 + k * period for k in range(cfg.frames_per_clip)]
    lo, hi = _time_span(info)
    if cfg.short_video == "loop":
        # One loop lasts the video's span plus one mean frame duration, so the last frame shows for a frame.
        n = info.num_frames
        cycle = (hi - lo) * n / (n - 1) if n > 1 else period
        times = [lo + (t - lo) % cycle for t in times]
        return tuple(info.frame_at_time(t) for t in times), 0
    return tuple(info.frame_at_time(t) for t in times), sum(t > hi for t in times)


def is_short(info: VideoInfo, cfg: SamplingConfig) -> bool:
    """Whether a video is shorter than one clip (what ``short_video`` decides about).

    Args:
        info: the video.
        cfg: the sampling.

    Returns:
        True when one clip of ``cfg`` needs more frames (or seconds) than the video has.
    """
    return bool(short_mask([info], cfg)[0])


def _starts(info: VideoInfo, cfg: SamplingConfig, key: tuple[int, int, int] | None) -> list[Fraction]:
    """Clip starts: frame indices in stride mode, seconds (exact) in target-fps mode. ``key`` is
    (seed, epoch, video) for random starts; None for the fixed plans, and for "without_replacement" when
    only its candidate windows are wanted (to count them)."""
    timed = cfg.target_fps is not None
    lo: Fraction
    if timed:
        lo, hi = _time_span(info)
        unit = _period(cfg)
        room = hi - lo - (cfg.frames_per_clip - 1) * unit
    else:
        lo = Fraction(info.first_frame)
        room = Fraction(info.num_frames - ((cfg.frames_per_clip - 1) * cfg.frame_stride + 1))
        unit = Fraction(1)
    room = max(room, Fraction(0))
    k = cfg.clips_per_video
    if cfg.clips_per_video_mode == "without_replacement":
        windows = _windows(lo, room, cfg.step * unit)
        if key is None:  # the candidates, for counting
            return windows
        # The same choice as the array planner's (``stride_clips``).
        _, chosen = choose_windows(key[0], key[1], np.array([key[2]]), np.array([len(windows)]), k)
        return [windows[i] for i in chosen.tolist()]
    if cfg.sampling == "random":
        assert key is not None
        # The same counter-based numbers as the array planner (``stride_clips``), so a video's clips do
        # not depend on which path planned them.
        u = uniform01(*key, np.arange(k), TAG_CLIPS)
        if timed:
            return [lo + Fraction(float(x) * float(room)) if room > 0 else lo for x in u]
        return [lo + min(int(x * (int(room) + 1)), int(room)) for x in u]
    if cfg.sampling == "uniform":
        offsets = [room / 2] if k == 1 else [room * i / (k - 1) for i in range(k)]
        return [lo + (o if timed else round(o)) for o in offsets]
    return _windows(lo, room, cfg.step * unit)


def _windows(lo: Fraction, room: Fraction, step: Fraction) -> list[Fraction]:
    """Sliding-window starts: ``lo``, ``lo + step``, ... while the window still fits."""
    return [lo + i * step for i in range(int(room // step) + 1)]


def video_clips(
    info: VideoInfo, video_index: int, cfg: SamplingConfig, *, seed: int, epoch: int
) -> list[ClipSpec]:
    """The clips of one video for one epoch; depends on (seed, epoch, video_index) only.

    Args:
        info: the video.
        video_index: its index in the dataset (recorded in the clips, and part of the random key).
        cfg: the sampling plan.
        seed, epoch: the random key of "random" sampling.

    Returns:
        The clips in start order, ``clip_index`` 0, 1, ...: ``clips_per_video`` of them for "random" (at most
        that many with ``clips_per_video_mode="without_replacement"``) and "uniform", every window for "sliding".

    Raises:
        ConfigError: the video is shorter than one clip and ``cfg.short_video == "error"``.
    """
    if cfg.short_video in ("skip", "error") and is_short(info, cfg):
        if cfg.short_video == "skip":
            return []
        raise ConfigError(
            f"{info.path} is shorter than one clip ({info.num_frames} frames, {info.duration:.3f}s; a clip of "
            f"{cfg.frames_per_clip} frames needs more) and short_video='error'; choose short_video='pad', "
            "'loop' or 'skip', or shorten the clip"
        )
    clips = []
    for ci, s in enumerate(_starts(info, cfg, (seed, epoch, video_index))):
        if cfg.target_fps is not None:
            idx, padded = _time_clip(info, s, cfg)
        else:
            idx, padded = _index_clip(info, int(s), cfg)
        clips.append(ClipSpec(video_index=video_index, clip_index=ci, frame_indices=idx, padded=padded))
    return clips
