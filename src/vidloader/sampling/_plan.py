"""Clip plans: which frames of which videos an epoch yields on a rank. Pure functions of
(dataset, config, seed, epoch, rank, world_size); no decoder is involved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .._errors import ConfigError
from ..dataset import VideoInfo
from ._config import SamplingConfig

_TAG_CLIPS, _TAG_ORDER, _TAG_CLIP_SHUFFLE = 1, 2, 3


@dataclass(frozen=True)
class ClipSpec:
    """One clip: ``frame_indices`` index the decoded frames of the video's stream (presentation order).

    ``padded``: how many trailing frames only repeat the video's last frame because the video is shorter
    than the clip (``short_video="pad"``); the loader turns it into ``ClipBatch.frame_mask``.
    """

    video_index: int
    clip_index: int
    frame_indices: tuple[int, ...]
    padded: int = 0

    def __post_init__(self) -> None:
        if not self.frame_indices:
            raise ConfigError("a clip needs at least one frame index")
        if not 0 <= self.padded < len(self.frame_indices):
            raise ConfigError(
                f"padded={self.padded} must be in [0, {len(self.frame_indices)}) (at least one real frame)"
            )


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


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


def _period(cfg: SamplingConfig) -> Fraction:
    assert cfg.target_fps is not None
    # Exact rationals: in floats t0 + k / fps lands a hair before a frame sitting exactly at that time (0.6 s
    # is 0.59999... s), and "last frame with pts <= t" then takes the frame before it.
    return 1 / Fraction(cfg.target_fps).limit_denominator(1_000_000)


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
    if cfg.target_fps is not None:
        lo, hi = _time_span(info)
        return hi - lo < (cfg.frames_per_clip - 1) * _period(cfg)
    return info.num_frames < (cfg.frames_per_clip - 1) * cfg.frame_stride + 1


def _starts(info: VideoInfo, cfg: SamplingConfig, rng: np.random.Generator | None) -> list[Fraction]:
    """Clip starts: frame indices in stride mode, seconds (exact) in target-fps mode. ``rng`` is None for
    the fixed plans, and for "without_replacement" when only its candidate windows are wanted."""
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
        if rng is None:  # the candidates, for counting
            return windows
        chosen = rng.choice(len(windows), size=min(k, len(windows)), replace=False)
        return [windows[int(i)] for i in sorted(chosen)]
    if cfg.sampling == "random":
        assert rng is not None
        if timed:
            return [lo + Fraction(float(rng.uniform(0.0, float(room)))) if room > 0 else lo for _ in range(k)]
        return [lo + int(rng.integers(0, int(room) + 1)) for _ in range(k)]
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
    rng = _rng(seed, epoch, video_index, _TAG_CLIPS) if cfg.sampling == "random" else None
    clips = []
    for ci, s in enumerate(_starts(info, cfg, rng)):
        if cfg.target_fps is not None:
            idx, padded = _time_clip(info, s, cfg)
        else:
            idx, padded = _index_clip(info, int(s), cfg)
        clips.append(ClipSpec(video_index=video_index, clip_index=ci, frame_indices=idx, padded=padded))
    return clips


def _clip_count(info: VideoInfo, cfg: SamplingConfig) -> int:
    """How many clips ``video_clips`` gives for ``info`` (the same for every seed and epoch)."""
    if cfg.short_video == "skip" and is_short(info, cfg):
        return 0
    if not cfg.windowed:
        return cfg.clips_per_video
    n = len(_starts(info, cfg, None))
    return n if cfg.sampling == "sliding" else min(n, cfg.clips_per_video)


def _check_rank(seed: int, epoch: int, rank: int, world_size: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(epoch, int) or epoch < 0:
        raise ConfigError(f"epoch must be a non-negative int, got {epoch!r}")
    if not isinstance(world_size, int) or world_size < 1:
        raise ConfigError(f"world_size must be an int >= 1, got {world_size!r}")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, {world_size}), got {rank!r}")


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
    order = _rng(seed, epoch, _TAG_ORDER).permutation(num_videos) if shuffle else np.arange(num_videos)
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
) -> list[ClipSpec]:
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
        the longest.

    Raises:
        ConfigError: a bad seed, epoch, rank or world size, or an empty dataset.
    """
    mine = shard_videos(
        len(videos), seed=seed, epoch=epoch, rank=rank, world_size=world_size, shuffle=cfg.shuffle
    )
    clips = [c for v in mine for c in video_clips(videos[v], v, cfg, seed=seed, epoch=epoch)]
    if (cfg.windowed or cfg.short_video == "skip") and world_size > 1:
        # Window counts vary with video length (and skipped short videos give none); pad every rank to the
        # longest so DDP steps stay in lockstep.
        target = max(
            sum(
                _clip_count(videos[v], cfg)
                for v in shard_videos(
                    len(videos), seed=seed, epoch=epoch, rank=r, world_size=world_size, shuffle=cfg.shuffle
                )
            )
            for r in range(world_size)
        )
        if target > 0 and not clips:
            raise ConfigError(
                f"rank {rank} has no clips: every video it got is shorter than a clip and "
                "short_video='skip'; use short_video='pad' or 'loop', or fewer ranks"
            )
        clips = [clips[i % len(clips)] for i in range(target)]
    if cfg.shuffle and len(clips) > 1 and (cfg.clips_per_video > 1 or cfg.windowed):
        perm = _rng(seed, epoch, rank, world_size, _TAG_CLIP_SHUFFLE).permutation(len(clips))
        clips = [clips[i] for i in perm]
    return clips
