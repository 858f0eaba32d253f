"""Pure clip sampling: (dataset, config, seed, epoch, rank, world_size) -> the clips a rank yields."""

from ._config import (
    CLIPS_PER_VIDEO_MODES,
    SAMPLING_MODES,
    SHORT_VIDEO,
    ClipsPerVideoMode,
    SamplingConfig,
    SamplingMode,
    ShortVideo,
)
from ._plan import ClipSpec, clip_seed, is_short, plan_epoch, shard_videos, video_clips

__all__ = [
    "CLIPS_PER_VIDEO_MODES",
    "SAMPLING_MODES",
    "SHORT_VIDEO",
    "ClipSpec",
    "ClipsPerVideoMode",
    "SamplingConfig",
    "SamplingMode",
    "ShortVideo",
    "clip_seed",
    "is_short",
    "plan_epoch",
    "shard_videos",
    "video_clips",
]
