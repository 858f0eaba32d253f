"""Indexing: VideoInfo, probing, manifests, the probe cache, and synthetic media."""

from ._cache import ProbeCache, default_cache_dir
from ._dataset import VIDEO_EXTENSIONS, SkippedFile, VideoDataset
from ._index import CHECK_FILES_CHOICES as CHECK_FILES
from ._index import DEFAULT_INDEX_NAME, INDEX_VERSION, index_schema, write_index
from ._info import VideoInfo
from ._manifest import ManifestRow, labels_to_ints, read_manifest
from ._probe import enable_ffmpeg_log, probe_video
from ._probing import ENGINES, probe_many
from ._synthetic import DEMO_CLASSES, make_demo_dataset, textured_frames, write_video
from ._table import IndexRows

__all__ = [
    "CHECK_FILES",
    "DEFAULT_INDEX_NAME",
    "DEMO_CLASSES",
    "ENGINES",
    "INDEX_VERSION",
    "VIDEO_EXTENSIONS",
    "IndexRows",
    "ManifestRow",
    "ProbeCache",
    "SkippedFile",
    "VideoDataset",
    "VideoInfo",
    "default_cache_dir",
    "enable_ffmpeg_log",
    "index_schema",
    "labels_to_ints",
    "make_demo_dataset",
    "probe_many",
    "probe_video",
    "read_manifest",
    "textured_frames",
    "write_index",
    "write_video",
]
