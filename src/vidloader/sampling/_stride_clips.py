"""Stride-mode clip plans computed on arrays: a million videos plan in seconds.

Clips of a video in stride mode depend only on its first frame and frame count, so a whole shard is planned
with numpy from two int64 columns (which an index provides without building a VideoInfo per video). Random
starts come from the counter-based hash of (seed, epoch, video, clip) (``_random.uniform01``) rather than a
generator per video: the same numbers whichever videos are planned together, at a few nanoseconds a clip.
"""

from __future__ import annotations

import numpy as np

from ._config import SamplingConfig
from ._random import TAG_CLIPS, choose_windows, uniform01


def _round_half_even(num: np.ndarray, den: int) -> np.ndarray:
    """round(num / den) as Python rounds a Fraction (ties to even), exactly, in integers."""
    q, r = np.divmod(num, den)
    up = (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
    return q + up


def stride_clips(
    videos: np.ndarray,
    first: np.ndarray,
    num: np.ndarray,
    cfg: SamplingConfig,
    *,
    seed: int,
    epoch: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clips of ``videos`` (dataset indices, in order; ``first``/``num`` are their frame ranges).

    Returns:
        (video index, clip index, frame indices [clips, frames_per_clip], padded frames per clip) of every
        clip, video by video; frames past a short video's end repeat its last one (``short_video="pad"``),
        or the video again from its first frame (``"loop"``; any other policy is applied by the caller).
    """
    room = np.maximum(num - ((cfg.frames_per_clip - 1) * cfg.frame_stride + 1), 0)
    k = cfg.clips_per_video
    if cfg.sampling == "sliding":
        counts = room // cfg.step + 1
        owner = np.repeat(np.arange(len(videos)), counts)
        clip = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        offset = clip * cfg.step
    elif cfg.clips_per_video_mode == "without_replacement":
        owner, window = choose_windows(seed, epoch, videos, room // cfg.step + 1, k)
        taken = np.bincount(owner, minlength=len(videos))
        clip = np.arange(len(owner)) - np.repeat(np.cumsum(taken) - taken, taken)
        offset = window * cfg.step
    else:
        owner = np.repeat(np.arange(len(videos)), k)
        clip = np.tile(np.arange(k), len(videos))
        r = room[owner]
        if cfg.sampling == "random":
            u = uniform01(seed, epoch, videos[owner], clip, TAG_CLIPS)
            offset = np.minimum(np.floor(u * (r + 1)).astype(np.int64), r)
        elif k == 1:
            offset = _round_half_even(r, 2)
        else:
            offset = _round_half_even(r * clip, k - 1)
    start = first[owner] + offset
    wanted = start[:, None] + np.arange(cfg.frames_per_clip) * cfg.frame_stride
    if cfg.short_video == "loop":
        # The video played again from its first frame: the stride between frames is kept.
        base = first[owner][:, None]
        frames = base + (wanted - base) % num[owner][:, None]
        return videos[owner], clip, frames, np.zeros(len(owner), np.int64)
    last = (first + num - 1)[owner]
    frames = np.minimum(wanted, last[:, None])
    return videos[owner], clip, frames, (wanted > last[:, None]).sum(axis=1)
