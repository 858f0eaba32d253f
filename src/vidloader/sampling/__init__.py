"""Pure clip sampling: (dataset, config, seed, epoch, rank, world_size) -> the clips a rank yields."""

from ._clips import ClipPlan, ClipSpec
from ._config import (
    CLIPS_PER_VIDEO_MODES,
    SAMPLING_MODES,
    SHORT_VIDEO,
    ClipsPerVideoMode,
    SamplingConfig,
    SamplingMode,
    ShortVideo,
)
from ._elastic import check_stages, deal, remaining, resume_plan
from ._epoch import clip_seed, plan_epoch, shard_videos
from ._video_clips import is_short, video_clips
from ._video_columns import clip_counts, short_mask

__all__ = [
    "CLIPS_PER_VIDEO_MODES",
    "SAMPLING_MODES",
    "SHORT_VIDEO",
    "ClipPlan",
    "ClipSpec",
    "ClipsPerVideoMode",
    "SamplingConfig",
    "SamplingMode",
    "ShortVideo",
    "check_stages",
    "clip_counts",
    "clip_seed",
    "deal",
    "is_short",
    "plan_epoch",
    "remaining",
    "resume_plan",
    "shard_videos",
    "short_mask",
    "video_clips",
]
