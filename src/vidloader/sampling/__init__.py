"""Pure clip sampling: (dataset, config, seed, epoch, rank, world_size) -> the clips a rank yields."""

from ._config import CLIPS_PER_VIDEO_MODES, SAMPLING_MODES, ClipsPerVideoMode, SamplingConfig, SamplingMode
from ._plan import ClipSpec, clip_seed, plan_epoch, shard_videos, video_clips

__all__ = [
    "CLIPS_PER_VIDEO_MODES",
    "SAMPLING_MODES",
    "ClipSpec",
    "ClipsPerVideoMode",
    "SamplingConfig",
    "SamplingMode",
    "clip_seed",
    "plan_epoch",
    "shard_videos",
    "video_clips",
]
