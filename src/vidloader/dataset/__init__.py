"""Indexing: VideoInfo, probing, manifests, the probe cache, and synthetic media."""

from ._cache import ProbeCache, default_cache_dir
from ._dataset import VIDEO_EXTENSIONS, SkippedFile, VideoDataset, probe_many
from ._ffmpeg_log import enable_ffmpeg_log, ffmpeg_errors, forward_ffmpeg_log
from ._info import VideoInfo
from ._manifest import ManifestRow, labels_to_ints, read_manifest
from ._probe import probe_video
from ._synthetic import DEMO_CLASSES, make_demo_dataset, textured_frames, write_video

__all__ = [
    "DEMO_CLASSES",
    "VIDEO_EXTENSIONS",
    "ManifestRow",
    "ProbeCache",
    "SkippedFile",
    "VideoDataset",
    "VideoInfo",
    "default_cache_dir",
    "enable_ffmpeg_log",
    "ffmpeg_errors",
    "forward_ffmpeg_log",
    "labels_to_ints",
    "make_demo_dataset",
    "probe_many",
    "probe_video",
    "read_manifest",
    "textured_frames",
    "write_video",
]
