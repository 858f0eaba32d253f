"""IndexRows: the videos of an index file as a memory-mapped Arrow table, read row by row on demand.

Every process that opens the same index maps the same file pages, so the dataset costs each of them only the
pages it touches (the OS shares them), not a Python object per video and per frame.
"""

from __future__ import annotations

import itertools
import os
import posixpath
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._info import VideoInfo

# Scalar columns copied into VideoInfo as they are (name in the table == VideoInfo field).
_SCALARS = (
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
)
_LISTS = ("frame_pts", "keyframe_pts", "audio_streams")


def is_url(path: str) -> bool:
    return "://" in path


def join(base: str, rel: str) -> str:
    """``rel`` resolved against ``base``, a local folder or a URL (``..`` climbs a URL's path too)."""
    if is_url(base):
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join('/' + rest, rel)).lstrip('/')}"
    return os.path.normpath(os.path.join(base, rel))


class _Column:
    """One column of a chunked table, addressed by global row (chunks stay zero-copy views of the map)."""

    def __init__(self, chunked: Any, starts: np.ndarray) -> None:
        self._chunks = chunked.chunks
        self._starts = starts
        self._numpy: list[np.ndarray] | None = None
        self._lists: list[tuple[np.ndarray, np.ndarray]] | None = None
        t = chunked.type
        import pyarrow as pa

        if pa.types.is_list(t) or pa.types.is_large_list(t):
            self._lists = [
                (c.offsets.to_numpy(zero_copy_only=False), c.values.to_numpy(zero_copy_only=False))
                for c in self._chunks
            ]
        elif (pa.types.is_integer(t) or pa.types.is_floating(t)) and chunked.null_count == 0:
            self._numpy = [c.to_numpy(zero_copy_only=False) for c in self._chunks]

    def _locate(self, i: int) -> tuple[int, int]:
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return k, i - int(self._starts[k])

    def get(self, i: int) -> Any:
        k, j = self._locate(i)
        if self._numpy is not None:
            return self._numpy[k][j].item()
        if self._lists is not None:
            offsets, values = self._lists[k]
            return tuple(values[offsets[j] : offsets[j + 1]].tolist())
        return self._chunks[k][j].as_py()

    def numpy(self) -> np.ndarray:
        """The whole column as one array (a copy when the table has several chunks)."""
        if self._numpy is None:
            raise TypeError("only non-null numeric columns convert to one numpy array")
        return self._numpy[0] if len(self._numpy) == 1 else np.concatenate(self._numpy)


class IndexRows(Sequence[VideoInfo]):
    """``rows[i]`` builds the VideoInfo of row ``i``; relative paths resolve against ``base_dir``.

    Args:
        table: the index as a (memory-mapped) ``pyarrow.Table``.
        base_dir: the folder relative paths in the index are relative to.
        keep: the table rows to expose (default: all), e.g. without files that changed since indexing.
        source: the memory-mapped Arrow file behind ``table``, so rows pickle as (file, row id).
    """

    def __init__(
        self, table: Any, *, base_dir: str, keep: np.ndarray | None = None, source: str | None = None
    ) -> None:
        self.table = table
        self.base_dir = base_dir
        # The memory-mapped Arrow file behind the table: rows pickle as (source, row) when it is known.
        self.source = source
        lengths = [len(b) for b in table.column(0).chunks] if table.num_columns else []
        self._starts = np.cumsum([0, *lengths[:-1]]).astype(np.int64) if lengths else np.zeros(1, np.int64)
        self._cols = {name: _Column(table.column(name), self._starts) for name in table.column_names}
        # Rows left out (files changed since indexing) are skipped through this map, not copied away:
        # the table stays one mapping of the file.
        self._keep = keep

    def without(self, rows: Sequence[int]) -> IndexRows:
        """The same table minus ``rows`` (positions in this sequence)."""
        keep = np.arange(len(self)) if self._keep is None else self._keep
        keep = np.delete(keep, np.asarray(rows, np.int64))
        return IndexRows(self.table, base_dir=self.base_dir, keep=keep, source=self.source)

    def __len__(self) -> int:
        return int(self.table.num_rows) if self._keep is None else len(self._keep)

    def _row(self, i: int) -> int:
        return i if self._keep is None else int(self._keep[i])

    def path(self, i: int) -> str:
        return self.resolve(self._cols["path"].get(self._row(i)))

    def resolve(self, p: str) -> str:
        """A path as stored in the index, resolved against the index's folder."""
        return p if is_url(p) or os.path.isabs(p) else join(self.base_dir, p)

    def paths(self) -> list[str]:
        """Every row's path, resolved (in bulk, in Arrow: a million rows' fingerprint needs them all)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        col = self.table.column("path")
        if self._keep is not None:
            col = col.take(pa.array(self._keep))
        absolute = pc.or_(pc.starts_with(col, "/"), pc.match_substring(col, "://"))
        sep = "/" if is_url(self.base_dir) else os.sep
        joined = pc.binary_join_element_wise(self.base_dir.rstrip(sep), col, sep)
        out = pc.if_else(absolute, col, joined).to_pylist()
        # relpath wrote relative paths normalised; only those climbing out of the index's folder need it.
        for i in np.flatnonzero(pc.starts_with(col, "..").to_numpy(zero_copy_only=False)).tolist():
            out[i] = join(self.base_dir, col[i].as_py())
        return out

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for an index of {n} videos")
        return self.at_row(self._row(i % n))

    def at_row(self, r: int) -> VideoInfo:
        """The VideoInfo of table row ``r``; it pickles as (Arrow file, row) when the table is mapped."""
        fields = {name: self._cols[name].get(r) for name in (*_SCALARS, *_LISTS)}
        step = self._cols["pts_step"].get(r)
        if step:  # a constant frame rate: the timestamps are start + k * step, stored as those two numbers
            start = self._cols["pts_start"].get(r)
            fields["frame_pts"] = tuple(range(start, start + step * self._cols["total_frames"].get(r), step))
        info = VideoInfo(path=self.resolve(self._cols["path"].get(r)), **fields)
        if self.source is not None:
            object.__setattr__(info, "_row_ref", (self.source, self.base_dir, r))
        return info

    def __iter__(self) -> Iterator[VideoInfo]:
        for i in range(len(self)):
            yield self[i]

    def column(self, name: str) -> np.ndarray:
        """A numeric column as numpy (``num_frames``, ``first_frame``, ``label`` ...)."""
        col = self._cols[name].numpy()
        return col if self._keep is None else col[self._keep]

    def values(self, name: str) -> list[Any]:
        """Any column as Python values, in this sequence's order."""
        col = self.table.column(name).to_pylist()
        return col if self._keep is None else [col[int(k)] for k in self._keep]


def _constant_step(pts: Sequence[int]) -> int:
    """The step of an arithmetic sequence of two or more timestamps, else 0."""
    if len(pts) < 2:
        return 0
    step = pts[1] - pts[0]
    return step if step > 0 and all(b - a == step for a, b in itertools.pairwise(pts)) else 0


def rows_of(videos: Sequence[VideoInfo]) -> dict[str, Any]:
    """Column data of VideoInfos, in the index's order of columns (path kept as given).

    Constant-rate streams store their frame timestamps as (pts_start, pts_step, total_frames) with an empty
    ``frame_pts``: 300 frames cost 24 bytes instead of 2.4 KB in the memory-mapped copy."""
    names = ("path", *_SCALARS, *_LISTS, "pts_start", "pts_step", "total_frames")
    cols: dict[str, list[Any]] = {name: [] for name in names}
    for v in videos:
        cols["path"].append(v.path)
        for name in (*_SCALARS, *_LISTS):
            value = getattr(v, name)
            cols[name].append(list(value) if name in _LISTS else value)
        step = _constant_step(v.frame_pts)
        if step:
            cols["frame_pts"][-1] = []
        cols["pts_start"].append(v.frame_pts[0] if v.frame_pts else 0)
        cols["pts_step"].append(step)
        cols["total_frames"].append(len(v.frame_pts))
    return cols


def table_columns() -> tuple[str, ...]:
    return ("path", *_SCALARS, *_LISTS, "pts_start", "pts_step", "total_frames")


_MAPPED: dict[tuple[str, str], IndexRows] = {}


def row_from_ref(source: str, base_dir: str, row: int) -> VideoInfo:
    """Unpickle a row-backed VideoInfo: map the Arrow file once per process, read the row from it."""
    rows = _MAPPED.get((source, base_dir))
    if rows is None:
        import pyarrow as pa

        table = pa.ipc.open_file(pa.memory_map(source, "r")).read_all()
        rows = _MAPPED[(source, base_dir)] = IndexRows(table, base_dir=base_dir, source=source)
    return rows.at_row(row)
