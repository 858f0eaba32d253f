"""Clip plans: which frames of which videos an epoch yields on a rank. Pure functions of
(dataset, config, seed, epoch, rank, world_size); no decoder is involved."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import ConfigError
from ..dataset import VideoDataset, VideoInfo
from ._clipplan import ClipPlan
from ._config import SamplingConfig
from ._vector import stride_clips, window_counts
from ._video import clip_count, rng, video_clips

_TAG_ORDER, _TAG_CLIP_SHUFFLE = 2, 3


def clip_seed(seed: int, epoch: int, video_index: int, clip_index: int) -> int:
    """A 63-bit seed for per-clip randomness downstream (crops, flips), independent of rank and order.

    Args:
        seed: the loader's seed.
        epoch: the epoch.
        video_index: the clip's video.
        clip_index: the clip's index within its video's clips this epoch.

    Returns:
        An int in [0, 2**63).
    """
    state = np.random.SeedSequence([seed, epoch, video_index, clip_index, 7]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


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
    order = rng(seed, epoch, _TAG_ORDER).permutation(num_videos) if shuffle else np.arange(num_videos)
    per_rank = -(-num_videos // world_size)
    return np.resize(order, per_rank * world_size)  # np.resize repeats from the start: the wrap-round


def shard_videos(
    num_videos: int, *, seed: int, epoch: int, rank: int, world_size: int, shuffle: bool
) -> list[int]:
    """The epoch's (shuffled) video order, wrapped round to a multiple of world_size, rank's share.

    Args:
        num_videos: videos in the dataset.
        seed: the loader's seed.
        epoch: the epoch.
        rank: this rank.
        world_size: the number of ranks.
        shuffle: shuffle the order per epoch.

    Returns:
        The video indices this rank reads, in order.

    Raises:
        ConfigError: a bad seed, epoch, rank or world_size.
    """
    _check_rank(seed, epoch, rank, world_size)
    if num_videos < 1:
        raise ConfigError("cannot shard an empty dataset")
    order = rng(seed, epoch, _TAG_ORDER).permutation(num_videos) if shuffle else np.arange(num_videos)
    per_rank = -(-num_videos // world_size)
    padded = np.resize(order, per_rank * world_size)  # np.resize repeats from the start: the wrap-round
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
    """Every clip ``rank`` yields in the epoch, in order. Ranks get equally many clips (hence batches).

    Args:
        videos: the dataset's videos.
        cfg: the sampling plan.
        seed, epoch: the random key (video order, clip starts, clip order).
        rank, world_size: the shard.

    Returns:
        The rank's clips: its share of the epoch's (shuffled) videos, wrapped round to a multiple of
        ``world_size``, each video's clips, shuffled across the epoch when there are several per video. Plans
        whose clip count varies per video ("sliding", "without_replacement") repeat clips to pad every rank to
        the longest. Stride-mode plans with exact clip counts and padded short videos are computed on
        arrays of first frames and frame counts (a VideoDataset opened from an index gives them without
        building a VideoInfo per video); the others read each video of the shard.

    Raises:
        ConfigError: a bad seed, epoch, rank or world size, or an empty dataset.
    """
    _check_rank(seed, epoch, rank, world_size)
    order = _padded_order(len(videos), seed=seed, epoch=epoch, world_size=world_size, shuffle=cfg.shuffle)
    mine = order[rank::world_size]
    if cfg.target_fps is None and cfg.clips_per_video_mode == "exact" and cfg.short_video == "pad":
        first, num = _frame_ranges(videos)
        plan = ClipPlan(*stride_clips(mine, first[mine], num[mine], cfg, seed=seed, epoch=epoch))
        n_clips = len(plan)
        if cfg.sampling == "sliding" and world_size > 1:
            counts = window_counts(num, cfg)[order]
            n_clips = int(np.bincount(np.arange(len(order)) % world_size, weights=counts).max())
    else:
        specs = [c for v in mine.tolist() for c in video_clips(videos[v], v, cfg, seed=seed, epoch=epoch)]
        n_clips = len(specs)
        if (cfg.windowed or cfg.short_video == "skip") and world_size > 1:
            counts = {v: clip_count(videos[v], cfg) for v in set(order.tolist())}
            n_clips = max(sum(counts[v] for v in order[r::world_size].tolist()) for r in range(world_size))
            if n_clips > 0 and not specs:
                raise ConfigError(
                    f"rank {rank} has no clips: every video it got is shorter than a clip and "
                    "short_video='skip'; use short_video='pad' or 'loop', or fewer ranks"
                )
        plan = ClipPlan.from_specs(specs, cfg.frames_per_clip)
    if not len(plan):
        return plan
    # Window counts vary with video length (and skipped short videos give none): plans pad every rank to
    # the longest with clips from their start, so DDP steps stay in lockstep.
    sel = np.arange(n_clips) % len(plan)
    if cfg.shuffle and n_clips > 1 and (cfg.clips_per_video > 1 or cfg.windowed):
        sel = sel[rng(seed, epoch, rank, world_size, _TAG_CLIP_SHUFFLE).permutation(n_clips)]
    return plan.take(sel)
