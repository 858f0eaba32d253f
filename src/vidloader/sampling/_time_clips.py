"""Target-fps clip plans of constant-rate videos computed on arrays, exactly as ``video_clips`` computes them
with Fractions: a million videos plan in seconds instead of a quarter of an hour.

A constant-rate video's frame ``i`` has pts ``pts_start + i * pts_step``, so "the last frame whose pts <= t"
is a floor division. Every time is kept as a fraction of integers (offsets from the video's first frame, in
seconds): the clip starts of "uniform" and "sliding" are rationals, a "random" start is the video's first
frame time plus a float (``x * room``, as the per-video path makes it), which is itself a fraction with a
power-of-two denominator. The integers are Python integers in object arrays (products of time bases,
periods and binary fractions outgrow int64); variable-rate videos are planned one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..dataset import VideoColumns, VideoInfo
from ._clips import ClipPlan
from ._config import SamplingConfig
from ._random import TAG_CLIPS, choose_windows, uniform01
from ._video_clips import video_clips
from ._video_columns import columns_of, period


def _obj(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(object)


def _float_of(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``float(Fraction(num, den))`` of each pair, correctly rounded (as Python rounds it)."""
    small = np.array([abs(n) < 2**53 and d < 2**53 for n, d in zip(num, den, strict=True)], bool)
    out = np.empty(len(num), np.float64)
    # Both exact as floats: one IEEE division is the correctly rounded quotient.
    out[small] = num[small].astype(np.float64) / den[small].astype(np.float64)
    out[~small] = [n / d for n, d in zip(num[~small], den[~small], strict=True)]  # int / int: rounded once
    return out


def _dyadic(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each float as an exact fraction (numerator, power-of-two denominator), as ``Fraction(g)`` is."""
    mant, exp = np.frexp(g)
    m = _obj((mant * 2.0**53).astype(np.int64))
    e = exp.astype(np.int64) - 53
    den = np.array([1 << int(-k) if k < 0 else 1 for k in e], object)
    num = np.array([int(x) << int(k) if k > 0 else int(x) for x, k in zip(m, e, strict=True)], object)
    return num, den


def _starts(
    videos: np.ndarray, rn: np.ndarray, rd: np.ndarray, cfg: SamplingConfig, *, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(position of the video, clip index, start offset numerator, denominator) of every clip, in seconds
    after the video's first frame; ``rn / rd`` is each video's room (>= 0)."""
    p, k = period(cfg), cfg.clips_per_video
    if cfg.windowed:
        step_n, step_d = cfg.step * p.numerator, p.denominator  # seconds between window starts
        windows = np.asarray((rn * step_d) // (rd * step_n), np.int64) + 1
        if cfg.sampling == "sliding":
            owner = np.repeat(np.arange(len(videos)), windows)
            window = np.arange(len(owner)) - np.repeat(np.cumsum(windows) - windows, windows)
        else:
            owner, window = choose_windows(seed, epoch, videos, windows, k)
        taken = np.bincount(owner, minlength=len(videos))
        clip = np.arange(len(owner)) - np.repeat(np.cumsum(taken) - taken, taken)
        return owner, clip, _obj(window) * step_n, np.full(len(owner), step_d, object)
    owner = np.repeat(np.arange(len(videos)), k)
    clip = np.tile(np.arange(k), len(videos))
    num, den = rn[owner], rd[owner]
    if cfg.sampling == "uniform":
        if k == 1:
            return owner, clip, num, den * 2
        return owner, clip, num * _obj(clip), den * (k - 1)
    g = uniform01(seed, epoch, videos[owner], clip, TAG_CLIPS) * _float_of(num, den)
    gn, gd = _dyadic(g)
    return owner, clip, np.where(num > 0, gn, 0), np.where(num > 0, gd, 1)


def time_clips(
    cols: VideoColumns, videos: np.ndarray, cfg: SamplingConfig, *, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Target-fps clips of ``videos`` (dataset indices of constant-rate videos, in order).

    Returns:
        (position in ``videos``, clip index, frame indices [clips, frames_per_clip], padded frames per clip),
        video by video: the same clips ``video_clips`` gives (``short_video`` "pad" or "loop"; the caller
        applies "skip" and "error").
    """
    first = np.asarray(cols.array("first_frame"), np.int64)[videos]
    num = np.asarray(cols.array("num_frames"), np.int64)[videos]
    step = _obj(np.asarray(cols.array("pts_step"), np.int64)[videos])
    a = _obj(np.asarray(cols.array("time_base_num"), np.int64)[videos])
    b = _obj(np.asarray(cols.array("time_base_den"), np.int64)[videos])
    p = period(cfg)
    span = _obj(num - 1) * step  # ticks from the first frame to the last
    # The room a start has, in seconds: span * a / b - (frames_per_clip - 1) * p, at least 0.
    rn = span * a * p.denominator - (cfg.frames_per_clip - 1) * p.numerator * b
    rn = np.where(rn > 0, rn, 0)
    rd = b * p.denominator
    owner, clip, sn, sd = _starts(videos, rn, rd, cfg, seed=seed, epoch=epoch)
    # Frame j of a clip sits start + j * p after the first frame: (sn * pd + j * pn * sd) / (sd * pd) s,
    # that is floor(t * b / (a * step)) frames after it.
    j = _obj(np.arange(cfg.frames_per_clip))[None, :]
    t_num = (sn * p.denominator)[:, None] + j * (p.numerator * sd)[:, None]
    t_den = (sd * p.denominator)[:, None]
    ab, o = (a * step)[owner][:, None], owner
    after = (t_num * b[o][:, None]) // (t_den * ab)
    n = num[o][:, None]
    if cfg.short_video == "loop":
        # Played again from the first frame: one loop lasts n frames at this rate.
        offset, padded = np.asarray(after % n, np.int64), np.zeros(len(o), np.int64)
    else:
        offset = np.minimum(np.asarray(after, np.int64), n - 1)
        # Padding: the times past the last frame's.
        past = t_num * b[o][:, None] > (span * a)[o][:, None] * t_den
        padded = np.asarray(past, bool).sum(axis=1)
    return o, clip, first[o][:, None] + offset, padded


def time_plan(
    videos: Sequence[VideoInfo], mine: np.ndarray, cfg: SamplingConfig, *, seed: int, epoch: int
) -> ClipPlan:
    """The target-fps clips of ``mine`` (dataset indices, in order): constant-rate videos on arrays,
    variable-rate ones video by video (``video_clips``)."""
    cols = columns_of(videos)
    cfr = np.asarray(cols.array("pts_step"))[mine] > 0
    at = np.flatnonzero(cfr)
    owner, clip, frames, padded = time_clips(cols, mine[at], cfg, seed=seed, epoch=epoch)
    owners, parts = [at[owner]], [ClipPlan(mine[at[owner]], clip, frames, padded)]
    for i in np.flatnonzero(~cfr).tolist():
        v = int(mine[i])
        specs = video_clips(videos[v], v, cfg, seed=seed, epoch=epoch)
        owners.append(np.full(len(specs), i, np.int64))
        parts.append(ClipPlan.from_specs(specs, cfg.frames_per_clip))
    # Each video's clips where its position in ``mine`` puts them.
    return ClipPlan.concat(parts).take(np.argsort(np.concatenate(owners), kind="stable"))
