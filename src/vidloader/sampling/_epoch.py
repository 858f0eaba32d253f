"""Clip plans: which frames of which videos an epoch yields on a rank. Pure functions of
(dataset, config, seed, epoch, rank, world_size); no decoder is involved."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import ConfigError
from .._validate import check_index, check_int, check_non_negative_int
from ..dataset import VideoInfo
from ._clips import ClipPlan
from ._config import SamplingConfig
from ._random import TAG_CLIP_SEED, TAG_CLIP_SHUFFLE, TAG_ORDER, rng
from ._stride_clips import stride_clips
from ._time_clips import time_plan
from ._video_clips import video_clips
from ._video_columns import clip_counts, columns_of, short_mask


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
    key = [seed, epoch, video_index, clip_index, TAG_CLIP_SEED]
    state = np.random.SeedSequence(key).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


def _frame_ranges(videos: Sequence[VideoInfo]) -> tuple[np.ndarray, np.ndarray]:
    cols = columns_of(videos)
    return np.asarray(cols.array("first_frame"), np.int64), np.asarray(cols.array("num_frames"), np.int64)


def _check_rank(seed: int, epoch: int, rank: int, world_size: int) -> None:
    check_non_negative_int("seed", seed)
    check_non_negative_int("epoch", epoch)
    check_int("world_size", world_size, minimum=1)
    check_index("rank", rank, world_size)


def _padded_order(num_videos: int, *, seed: int, epoch: int, world_size: int, shuffle: bool) -> np.ndarray:
    """The epoch's (shuffled) video order, wrapped round to a multiple of ``world_size``."""
    if num_videos < 1:
        raise ConfigError("cannot shard an empty dataset")
    order = rng(seed, epoch, TAG_ORDER).permutation(num_videos) if shuffle else np.arange(num_videos)
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
    """Every clip ``rank`` yields in the epoch, in order. Ranks get equally many clips (hence batches).

    Args:
        videos: the dataset's videos.
        cfg: the sampling plan.
        seed, epoch: the random key (video order, clip starts, clip order).
        rank, world_size: the shard.

    Returns:
        The rank's clips: its share of the epoch's (shuffled) videos, wrapped round to a multiple of
        ``world_size``, each video's clips, shuffled across the epoch when there are several per video. Plans
        whose clip count varies per video ("sliding", "without_replacement", skipped short videos) repeat
        clips to pad every rank to the longest. Plans are computed on arrays of the videos' columns (a
        VideoDataset opened from an index gives them without building a VideoInfo per video); only
        target-fps plans read each variable-rate video of the shard as a VideoInfo.

    Raises:
        ConfigError: a bad seed, epoch, rank or world size, or an empty dataset.
    """
    _check_rank(seed, epoch, rank, world_size)
    order = _padded_order(len(videos), seed=seed, epoch=epoch, world_size=world_size, shuffle=cfg.shuffle)
    mine = order[rank::world_size]
    # Clips per video of the epoch's order, where ranks' clip counts can differ.
    counts = clip_counts(videos, cfg)[order] if world_size > 1 and _varies(cfg) else None
    mine = _playable(videos, mine, cfg, seed=seed, epoch=epoch)
    if cfg.target_fps is None:
        first, num = _frame_ranges(videos)
        plan = ClipPlan(*stride_clips(mine, first[mine], num[mine], cfg, seed=seed, epoch=epoch))
    else:
        plan = time_plan(videos, mine, cfg, seed=seed, epoch=epoch)
    n_clips = len(plan) if counts is None else _longest_rank(counts, world_size)
    if not len(plan):
        if n_clips > 0:
            raise ConfigError(
                f"rank {rank} has no clips: every video it got is shorter than a clip and "
                "short_video='skip'; use short_video='pad' or 'loop', or fewer ranks"
            )
        return plan
    # Window counts vary with video length (and skipped short videos give none): plans pad every rank to
    # the longest with clips from their start, so DDP steps stay in lockstep.
    sel = np.arange(n_clips) % len(plan)
    if cfg.shuffle and n_clips > 1 and (cfg.clips_per_video > 1 or cfg.windowed):
        sel = sel[rng(seed, epoch, rank, world_size, TAG_CLIP_SHUFFLE).permutation(n_clips)]
    return plan.take(sel)


def _varies(cfg: SamplingConfig) -> bool:
    """Whether videos give different numbers of clips (windows, or none for a skipped short video)."""
    return cfg.windowed or cfg.short_video == "skip"


def _playable(
    videos: Sequence[VideoInfo], mine: np.ndarray, cfg: SamplingConfig, *, seed: int, epoch: int
) -> np.ndarray:
    """``mine`` less the videos shorter than a clip under ``short_video="skip"``; under "error" the first
    of them raises, named."""
    if cfg.short_video not in ("skip", "error"):
        return mine
    short = short_mask(videos, cfg)[mine]
    if cfg.short_video == "error" and short.any():
        v = int(mine[np.argmax(short)])
        video_clips(videos[v], v, cfg, seed=seed, epoch=epoch)  # raises, naming the video
    return mine[~short]


def _longest_rank(counts: np.ndarray, world_size: int) -> int:
    """Clips of the rank that gets the most, ranks taking every ``world_size``-th video of the order."""
    return int(np.bincount(np.arange(len(counts)) % world_size, weights=counts, minlength=world_size).max())
