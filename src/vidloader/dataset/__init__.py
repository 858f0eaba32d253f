"""Indexing: VideoInfo, probing, manifests, the probe cache, and synthetic media."""

from ._building import SkippedFile
from ._columns import InfoColumns, VideoColumns
from ._damaged import DamagedFile
from ._dataset import VideoDataset
from ._ffmpeg_log import enable_ffmpeg_log, ffmpeg_errors, ffmpeg_reason, forward_ffmpeg_log
from ._files import RangeFile, clear_store_cache, open_source, read_bytes, register_tar_members, source_size
from ._folder import VIDEO_EXTENSIONS
from ._index_reader import CHECK_FILES_CHOICES as CHECK_FILES
from ._index_rows import IndexRows
from ._index_schema import DEFAULT_INDEX_NAME, INDEX_VERSION, index_schema
from ._index_writer import write_index
from ._info import VideoInfo
from ._location import is_remote, join_location, tar_member_url
from ._manifest import ManifestRow, labels_to_ints, read_manifest
from ._probe_cache import ProbeCache, default_cache_dir
from ._probe_file import probe_video
from ._probe_many import ENGINES, ProbeOptions, probe_many
from ._shards import ShardReport, write_shards
from ._store import StoreConfig, configure_store, reset_store_stats, store_config, store_stats
from ._store_health import store_outage
from ._synthetic import DEMO_CLASSES, make_demo_dataset, textured_frames, write_video

__all__ = [
    "CHECK_FILES",
    "DEFAULT_INDEX_NAME",
    "DEMO_CLASSES",
    "ENGINES",
    "INDEX_VERSION",
    "VIDEO_EXTENSIONS",
    "DamagedFile",
    "IndexRows",
    "InfoColumns",
    "ManifestRow",
    "ProbeCache",
    "ProbeOptions",
    "RangeFile",
    "ShardReport",
    "SkippedFile",
    "StoreConfig",
    "VideoColumns",
    "VideoDataset",
    "VideoInfo",
    "clear_store_cache",
    "configure_store",
    "default_cache_dir",
    "enable_ffmpeg_log",
    "ffmpeg_errors",
    "ffmpeg_reason",
    "forward_ffmpeg_log",
    "index_schema",
    "is_remote",
    "join_location",
    "labels_to_ints",
    "make_demo_dataset",
    "open_source",
    "probe_many",
    "probe_video",
    "read_bytes",
    "read_manifest",
    "register_tar_members",
    "reset_store_stats",
    "source_size",
    "store_config",
    "store_outage",
    "store_stats",
    "tar_member_url",
    "textured_frames",
    "write_index",
    "write_shards",
    "write_video",
]
