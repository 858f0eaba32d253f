"""The portable index's format: one Parquet file per dataset, a row per video, its columns and metadata.

Parquet is the file that travels with the data (compressed, readable by any Arrow tool, local paths stored
relative to the index's folder so a copied or mounted dataset still resolves). Parquet pages are compressed,
so they cannot be mapped as they are: the first open on a machine converts the file, row group by row group,
into an uncompressed Arrow IPC file in the local cache (keyed by the index's path, size and mtime), and every
later open, in any process, memory-maps that file. The OS then shares its pages between the main process
and every worker.

Writing an index is ``_index_writer``; opening and checking one is ``_index_reader``; its rows as VideoInfo
are ``_index_rows``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError

# 2 added the damage columns (frames_in_container, frames_decoded, damage); version 1 files still open,
# their rows reading as nothing known of damage.
INDEX_VERSION = 2
READABLE_VERSIONS = (1, 2)
INDEX_SUFFIX = ".parquet"
DEFAULT_INDEX_NAME = "vidloader-index.parquet"
META_KEY = b"vidloader.index"

# VideoInfo fields stored as they are (name in the table == VideoInfo field), then the list columns.
INFO_SCALARS = (
    "label",
    "num_frames",
    "fps",
    "duration",
    "width",
    "height",
    "codec",
    "pix_fmt",
    "rotation",
    "has_audio",
    "start",
    "end",
    "stream_index",
    "time_base_num",
    "time_base_den",
    "first_frame",
    "size_bytes",
    "frames_in_container",
    "frames_decoded",
    "damage",
)
INFO_LISTS = ("frame_pts", "keyframe_pts", "audio_streams")
# The columns a VideoInfo is read from: the path, its fields, and a constant rate's timestamps.
INFO_COLUMNS = ("path", *INFO_SCALARS, *INFO_LISTS, "pts_start", "pts_step", "total_frames")
# Columns added since version 1, and what a row of an older index reads as (VideoInfo's defaults).
ADDED_COLUMNS: dict[str, Any] = {"frames_in_container": 0, "frames_decoded": -1, "damage": ""}


def pyarrow_module() -> Any:
    """pyarrow, or a ConfigError saying how to get it (it is the optional ``index`` extra)."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is the `index` extra
        raise ConfigError("index files need pyarrow: pip install 'vidloader[index]'") from None
    return pa


def index_schema() -> Any:
    """Version 2 of the index schema (``vidloader.index`` metadata holds the version, classes, skips)."""
    pa = pyarrow_module()
    return pa.schema(
        [
            ("path", pa.string()),
            ("label", pa.int64()),
            ("num_frames", pa.int64()),
            ("fps", pa.float64()),
            ("duration", pa.float64()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("codec", pa.string()),
            ("pix_fmt", pa.string()),
            ("rotation", pa.int32()),
            ("has_audio", pa.bool_()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("stream_index", pa.int32()),
            ("time_base_num", pa.int64()),
            ("time_base_den", pa.int64()),
            ("first_frame", pa.int64()),
            ("size_bytes", pa.int64()),
            # What indexing found of damage (see VideoInfo): frames listed, frames that decode (-1: no full
            # decode was made), FFmpeg's first error ("" when none).
            ("frames_in_container", pa.int64()),
            ("frames_decoded", pa.int64()),
            ("damage", pa.string()),
            # Every frame's pts, or empty when pts_step != 0: then frame k's pts is pts_start + k * pts_step.
            ("frame_pts", pa.list_(pa.int64())),
            ("keyframe_pts", pa.list_(pa.int64())),
            ("audio_streams", pa.list_(pa.int32())),
            ("pts_start", pa.int64()),
            ("pts_step", pa.int64()),
            ("total_frames", pa.int64()),
            # Not part of VideoInfo: what the file was when probed, and which video stream was asked for.
            ("mtime_ns", pa.int64()),
            ("video_stream", pa.int32()),
            # A hash of the file's size, first and last 4 KiB (null: a URL, or not recorded): tells a copy
            # with new modification times from a changed file. Optional when reading.
            ("content_hash", pa.int64()),
        ]
    )


@dataclass(frozen=True)
class IndexMeta:
    """What an index file says about itself besides its rows."""

    version: int
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    root: str | None
    # Whether ``root`` is stored relative to the index's folder (so it follows a copied dataset); indexes
    # written before it was recorded that way stored it as given.
    root_relative: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "version": self.version,
                "classes": list(self.classes),
                "skipped": [list(s) for s in self.skipped],
                "root": self.root,
                "root_relative": self.root_relative,
            }
        ).encode()

    @classmethod
    def from_schema(cls, schema: Any, where: str) -> IndexMeta:
        raw = (schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise ConfigError(f"{where} is not a vidloader index (no {META_KEY.decode()!r} metadata)")
        d = json.loads(raw)
        if d.get("version") not in READABLE_VERSIONS:
            raise ConfigError(
                f"{where}: index schema version {d.get('version')!r} is not supported (this vidloader "
                f"reads versions {', '.join(map(str, READABLE_VERSIONS))}); rebuild it with `vidloader index`"
            )
        return cls(
            version=int(d["version"]),
            classes=tuple(d.get("classes", ())),
            skipped=tuple((str(p), str(r)) for p, r in d.get("skipped", ())),
            root=d.get("root"),
            root_relative=bool(d.get("root_relative", False)),
        )


def with_added_columns(table: Any) -> Any:
    """``table`` (a row group of an index of an older version) with every column added since, at the
    value an older row reads as; the table itself when it has them all.

    Args:
        table: a ``pyarrow.Table``.

    Returns:
        The table with the columns of ``ADDED_COLUMNS`` it lacked appended.
    """
    pa = pyarrow_module()
    schema = index_schema()
    for name, value in ADDED_COLUMNS.items():
        if name not in table.column_names:
            field = schema.field(name)
            table = table.append_column(field, pa.array([value] * table.num_rows, type=field.type))
    return table
