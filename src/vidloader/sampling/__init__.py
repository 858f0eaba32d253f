"""Pure clip sampling: (dataset, config, seed, epoch, rank, world_size) -> the clips a rank yields."""

from ._clipplan import ClipPlan, ClipSpec
from ._config import SAMPLING_MODES, SamplingConfig, SamplingMode
from ._elastic import check_stages, deal, remaining, resume_plan
from ._plan import clip_seed, plan_epoch, shard_videos, video_clips

__all__ = [
    "SAMPLING_MODES",
    "ClipPlan",
    "ClipSpec",
    "SamplingConfig",
    "SamplingMode",
    "check_stages",
    "clip_seed",
    "deal",
    "plan_epoch",
    "remaining",
    "resume_plan",
    "shard_videos",
    "video_clips",
]
