"""The portable index: one Parquet file per dataset, a row per video, opened memory-mapped.

Parquet is the file that travels with the data (compressed, readable by any Arrow tool, local paths stored
relative to the index's folder so a copied or mounted dataset still resolves). Parquet pages are compressed,
so they cannot be mapped as they are: the first open on a machine converts the file, row group by row group,
into an uncompressed Arrow IPC file in the local cache (keyed by the index's path, size and mtime), and every
later open, in any process, memory-maps that file. The OS then shares its pages between the main process
and every worker.

This module holds the format and its writer; opening and checking an index is ``_index_read``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._errors import ConfigError
from ._info import VideoInfo
from ._table import is_url, rows_of

INDEX_VERSION = 1
INDEX_SUFFIX = ".parquet"
DEFAULT_INDEX_NAME = "vidloader-index.parquet"
_META_KEY = b"vidloader.index"
_BATCH_ROWS = 8192
CheckFiles = Literal["all", "size", "none"]
CHECK_FILES_CHOICES: tuple[str, ...] = ("all", "size", "none")


def pyarrow_module() -> Any:
    """pyarrow, or a ConfigError saying how to get it (it is the optional ``index`` extra)."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is the `index` extra
        raise ConfigError("index files need pyarrow: pip install 'vidloader[index]'") from None
    return pa


def index_schema() -> Any:
    """Version 1 of the index schema (``vidloader.index`` metadata holds the version, classes, skips)."""
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
        ]
    )


@dataclass(frozen=True)
class IndexMeta:
    """What an index file says about itself besides its rows."""

    version: int
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    root: str | None

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "version": self.version,
                "classes": list(self.classes),
                "skipped": [list(s) for s in self.skipped],
                "root": self.root,
            }
        ).encode()

    @classmethod
    def from_schema(cls, schema: Any, where: str) -> IndexMeta:
        raw = (schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise ConfigError(f"{where} is not a vidloader index (no {_META_KEY.decode()!r} metadata)")
        d = json.loads(raw)
        if d.get("version") != INDEX_VERSION:
            raise ConfigError(
                f"{where}: index schema version {d.get('version')!r} is not supported (this vidloader "
                f"reads version {INDEX_VERSION}); rebuild it with `vidloader index`"
            )
        return cls(
            version=INDEX_VERSION,
            classes=tuple(d.get("classes", ())),
            skipped=tuple((str(p), str(r)) for p, r in d.get("skipped", ())),
            root=d.get("root"),
        )


def stored_path(path: str, index_dir: str) -> str:
    """A URL as it is; a local path relative to the index's folder, so it travels with the data."""
    if is_url(path):
        return path
    return os.path.relpath(os.path.abspath(path), index_dir)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns if not is_url(path) else 0
    except OSError:
        return 0


def _batch(pa: Any, videos: Sequence[VideoInfo], index_dir: str, video_stream: int | None) -> Any:
    cols = rows_of(videos)
    cols["mtime_ns"] = [_mtime_ns(p) for p in cols["path"]]
    cols["path"] = [stored_path(p, index_dir) for p in cols["path"]]
    cols["video_stream"] = [video_stream] * len(videos)
    schema = index_schema()
    return pa.record_batch([pa.array(cols[f.name], type=f.type) for f in schema], schema=schema)


def write_index(
    videos: Iterable[VideoInfo],
    path: str | Path,
    *,
    classes: Sequence[str] = (),
    skipped: Sequence[tuple[str, str]] = (),
    root: str | None = None,
    video_stream: int | None = None,
) -> Path:
    """Write ``videos`` as an index file (written to a temporary name, then renamed into place).

    Args:
        videos: the probed videos, with labels.
        path: where to write (``.parquet``).
        classes: class names, label ``i`` being ``classes[i]``.
        skipped: (path, reason) of files left out, recorded in the file's metadata.
        root: the folder the dataset came from.
        video_stream: the stream choice the videos were probed with.

    Returns:
        The path written.

    Raises:
        ConfigError: the path does not end in ``.parquet`` or its folder cannot be written.
    """
    pa = pyarrow_module()
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix != INDEX_SUFFIX:
        raise ConfigError(f"index path {path} must end in {INDEX_SUFFIX!r}")
    index_dir = os.path.abspath(path.parent)
    unusable = tuple((stored_path(p, index_dir), r) for p, r in skipped)
    meta = IndexMeta(INDEX_VERSION, tuple(classes), unusable, root)
    schema = index_schema().with_metadata({_META_KEY: meta.to_bytes()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(
            tmp,
            schema,
            compression="zstd",
            # Frame timestamps step by a constant at a constant frame rate: delta encoding stores them in
            # a few bits each before compression even starts.
            use_dictionary=["codec", "pix_fmt"],
            column_encoding={"frame_pts": "DELTA_BINARY_PACKED", "keyframe_pts": "DELTA_BINARY_PACKED"},
        ) as writer:
            chunk: list[VideoInfo] = []
            for v in videos:
                chunk.append(v)
                if len(chunk) == _BATCH_ROWS:
                    writer.write_batch(_batch(pa, chunk, index_dir, video_stream), row_group_size=_BATCH_ROWS)
                    chunk = []
            if chunk:
                writer.write_batch(_batch(pa, chunk, index_dir, video_stream), row_group_size=_BATCH_ROWS)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the index {path}: {exc}; choose another place with --out") from None
    return path
