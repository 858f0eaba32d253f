"""Clip plans: which frames of which videos an epoch yields on a rank. Pure functions of
(dataset, config, seed, epoch, rank, world_size); no decoder is involved."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .._errors import ConfigError
from ..dataset import VideoDataset, VideoInfo
from ._clipplan import ClipPlan, ClipSpec
from ._config import SamplingConfig
from ._vector import TAG_CLIPS, stride_clips, uniform01, window_counts

_TAG_ORDER, _TAG_CLIP_SHUFFLE = 2, 3


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def clip_seed(seed: int, epoch: int, video_index: int, clip_index: int) -> int:
    """A 63-bit seed for per-clip randomness downstream (crops, flips), independent of rank and order."""
    state = np.random.SeedSequence([seed, epoch, video_index, clip_index, 7]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


def _index_clip(info: VideoInfo, start: int, cfg: SamplingConfig) -> tuple[int, ...]:
    last = info.first_frame + info.num_frames - 1
    # Past the end a clip repeats the last frame (padding for videos shorter than a clip).
    return tuple(min(start + k * cfg.frame_stride, last) for k in range(cfg.frames_per_clip))


def _period(cfg: SamplingConfig) -> Fraction:
    assert cfg.target_fps is not None
    # Exact rationals: in floats t0 + k / fps lands a hair before a frame sitting exactly at that time (0.6 s
    # is 0.59999... s), and "last frame with pts <= t" then takes the frame before it.
    return 1 / Fraction(cfg.target_fps).limit_denominator(1_000_000)


def _time_clip(info: VideoInfo, t0: Fraction, cfg: SamplingConfig) -> tuple[int, ...]:
    period = _period(cfg)
    return tuple(info.frame_at_time(t0 + k * period) for k in range(cfg.frames_per_clip))


def _starts(info: VideoInfo, cfg: SamplingConfig, key: tuple[int, int, int] | None) -> list[Fraction]:
    """Clip starts in target-fps mode, seconds (exact); ``key`` is (seed, epoch, video) for random starts."""
    timed = cfg.target_fps is not None
    lo: Fraction
    if timed:
        lo = info.frame_pts[info.first_frame] * info.time_base
        hi = info.frame_pts[info.first_frame + info.num_frames - 1] * info.time_base
        unit = _period(cfg)
        room = hi - lo - (cfg.frames_per_clip - 1) * unit
    else:
        lo = Fraction(info.first_frame)
        room = Fraction(info.num_frames - ((cfg.frames_per_clip - 1) * cfg.frame_stride + 1))
        unit = Fraction(1)
    room = max(room, Fraction(0))
    k = cfg.clips_per_video
    if cfg.sampling == "random":
        assert key is not None
        u = uniform01(*key, np.arange(k), TAG_CLIPS)
        if timed:
            return [lo + Fraction(float(x) * float(room)) if room > 0 else lo for x in u]
        return [lo + min(int(x * (int(room) + 1)), int(room)) for x in u]
    if cfg.sampling in ("uniform", "multiview"):
        offsets = [room / 2] if k == 1 else [room * i / (k - 1) for i in range(k)]
        return [lo + (o if timed else round(o)) for o in offsets]
    # sliding
    step = cfg.step * unit
    n = int(room // step) + 1
    return [lo + i * step for i in range(n)]


def video_clips(
    info: VideoInfo, video_index: int, cfg: SamplingConfig, *, seed: int, epoch: int
) -> list[ClipSpec]:
    """The clips of one video for one epoch; depends on (seed, epoch, video_index) only."""
    if cfg.target_fps is None:
        arrays = (np.array([video_index]), np.array([info.first_frame]), np.array([info.num_frames]))
        return list(ClipPlan(*stride_clips(*arrays, cfg, seed=seed, epoch=epoch)))
    key = (seed, epoch, video_index)
    return [
        ClipSpec(video_index=video_index, clip_index=ci, frame_indices=_time_clip(info, s, cfg))
        for ci, s in enumerate(_starts(info, cfg, key))
    ]


def _frame_ranges(videos: Sequence[VideoInfo]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(videos, VideoDataset):
        first, num = videos.frame_ranges()
        return np.asarray(first, np.int64), np.asarray(num, np.int64)
    n = len(videos)
    return (
        np.fromiter((v.first_frame for v in videos), np.int64, n),
        np.fromiter((v.num_frames for v in videos), np.int64, n),
    )


def _check_rank(seed: int, epoch: int, rank: int, world_size: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(epoch, int) or epoch < 0:
        raise ConfigError(f"epoch must be a non-negative int, got {epoch!r}")
    if not isinstance(world_size, int) or world_size < 1:
        raise ConfigError(f"world_size must be an int >= 1, got {world_size!r}")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, {world_size}), got {rank!r}")


def _padded_order(num_videos: int, *, seed: int, epoch: int, world_size: int, shuffle: bool) -> np.ndarray:
    if num_videos < 1:
        raise ConfigError("cannot shard an empty dataset")
    order = _rng(seed, epoch, _TAG_ORDER).permutation(num_videos) if shuffle else np.arange(num_videos)
    per_rank = -(-num_videos // world_size)
    return np.resize(order, per_rank * world_size)  # np.resize repeats from the start: the wrap-round


def shard_videos(
    num_videos: int, *, seed: int, epoch: int, rank: int, world_size: int, shuffle: bool
) -> list[int]:
    """The epoch's (shuffled) video order, wrapped round to a multiple of world_size, rank's share."""
    _check_rank(seed, epoch, rank, world_size)
    padded = _padded_order(num_videos, seed=seed, epoch=epoch, world_size=world_size, shuffle=shuffle)
    return [int(v) for v in padded[rank::world_size]]


def plan_epoch(
    videos: Sequence[VideoInfo],
    cfg: SamplingConfig,
    *,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> ClipPlan:
    """Every clip rank yields in the epoch, in order. Ranks get equally many clips (hence batches).

    In stride mode the plan is computed on arrays of first frames and frame counts (a VideoDataset opened
    from an index gives them without building a VideoInfo per video); with ``target_fps`` every video of
    the shard is read for its timestamps.
    """
    _check_rank(seed, epoch, rank, world_size)
    padded = _padded_order(len(videos), seed=seed, epoch=epoch, world_size=world_size, shuffle=cfg.shuffle)
    mine = padded[rank::world_size]
    if cfg.target_fps is None:
        first, num = _frame_ranges(videos)
        vids, cidx, frames = stride_clips(mine, first[mine], num[mine], cfg, seed=seed, epoch=epoch)
        produced = n_clips = len(vids)
        if cfg.sampling == "sliding" and world_size > 1:
            counts = window_counts(num, cfg)[padded]
            n_clips = int(np.bincount(np.arange(len(padded)) % world_size, weights=counts).max())
    else:
        timed = [c for v in mine.tolist() for c in video_clips(videos[v], v, cfg, seed=seed, epoch=epoch)]
        produced = n_clips = len(timed)
        if cfg.sampling == "sliding" and world_size > 1:
            per_video = [len(_starts(videos[v], cfg, None)) for v in range(len(videos))]
            n_clips = max(sum(per_video[v] for v in padded[r::world_size]) for r in range(world_size))
    # Window counts vary with video length: sliding plans pad every rank to the longest (lockstep DDP).
    sel = np.arange(n_clips) % produced
    if cfg.shuffle and n_clips > 1 and (cfg.clips_per_video > 1 or cfg.sampling == "sliding"):
        sel = sel[_rng(seed, epoch, rank, world_size, _TAG_CLIP_SHUFFLE).permutation(n_clips)]
    if cfg.target_fps is None:
        return ClipPlan(vids, cidx, frames).take(sel)
    return ClipPlan.from_specs([timed[i] for i in sel.tolist()], cfg.frames_per_clip)
