"""Writing the portable index (see ``_index_schema``): VideoInfo as columns, paths relative to the index."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from ._file_check import content_hash
from ._index_schema import (
    INDEX_SUFFIX,
    INDEX_VERSION,
    INFO_COLUMNS,
    INFO_LISTS,
    INFO_SCALARS,
    META_KEY,
    IndexMeta,
    index_schema,
    pyarrow_module,
)
from ._info import VideoInfo
from ._location import is_remote

_BATCH_ROWS = 8192


def stored_path(path: str, index_dir: str) -> str:
    """A URL as it is; a local path relative to the index's folder, so it travels with the data."""
    if is_remote(path):
        return path
    return os.path.relpath(os.path.abspath(path), index_dir)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns if not is_remote(path) else 0
    except OSError:
        return 0


def constant_step(pts: Sequence[int]) -> int:
    """The step of an arithmetic sequence of two or more timestamps, else 0."""
    if len(pts) < 2:
        return 0
    step = pts[1] - pts[0]
    return step if step > 0 and all(b - a == step for a, b in itertools.pairwise(pts)) else 0


def info_columns(videos: Sequence[VideoInfo]) -> dict[str, Any]:
    """Column data of VideoInfos, in the index's order of columns (path kept as given).

    Constant-rate streams store their frame timestamps as (pts_start, pts_step, total_frames) with an empty
    ``frame_pts``: 300 frames cost 24 bytes instead of 2.4 KB in the memory-mapped copy."""
    cols: dict[str, list[Any]] = {name: [] for name in INFO_COLUMNS}
    for v in videos:
        cols["path"].append(v.path)
        for name in (*INFO_SCALARS, *INFO_LISTS):
            value = getattr(v, name)
            cols[name].append(list(value) if name in INFO_LISTS else value)
        step = constant_step(v.frame_pts)
        if step:
            cols["frame_pts"][-1] = []
        cols["pts_start"].append(v.frame_pts[0] if v.frame_pts else 0)
        cols["pts_step"].append(step)
        cols["total_frames"].append(len(v.frame_pts))
    return cols


def _batch(pa: Any, videos: Sequence[VideoInfo], index_dir: str, video_stream: int | None) -> Any:
    cols = info_columns(videos)
    cols["mtime_ns"] = [_mtime_ns(p) for p in cols["path"]]
    cols["content_hash"] = [None if is_remote(p) else content_hash(p) for p in cols["path"]]
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
    path = Path(path)
    if path.suffix != INDEX_SUFFIX:
        raise ConfigError(f"index path {path} must end in {INDEX_SUFFIX!r}")
    index_dir = os.path.abspath(path.parent)
    unusable = tuple((stored_path(p, index_dir), r) for p, r in skipped)
    # The root is stored like the paths, relative to the index, so a copied dataset names its new folder.
    meta = IndexMeta(INDEX_VERSION, tuple(classes), unusable, root and stored_path(root, index_dir), True)
    schema = index_schema().with_metadata({META_KEY: meta.to_bytes()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_parquet(tmp, schema, videos, index_dir, video_stream)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the index {path}: {exc}; choose another place with --out") from None
    return path


def _write_parquet(
    path: Path, schema: Any, videos: Iterable[VideoInfo], index_dir: str, video_stream: int | None
) -> None:
    """The rows, _BATCH_ROWS to a row group (memory stays one row group's VideoInfo)."""
    pa = pyarrow_module()
    import pyarrow.parquet as pq

    with pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        # Frame timestamps step by a constant at a constant frame rate: delta encoding stores them in
        # a few bits each before compression even starts.
        use_dictionary=["codec", "pix_fmt"],
        column_encoding={"frame_pts": "DELTA_BINARY_PACKED", "keyframe_pts": "DELTA_BINARY_PACKED"},
    ) as writer:
        it = iter(videos)
        while chunk := list(itertools.islice(it, _BATCH_ROWS)):
            writer.write_batch(_batch(pa, chunk, index_dir, video_stream), row_group_size=_BATCH_ROWS)
