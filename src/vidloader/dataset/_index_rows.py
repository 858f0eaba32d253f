"""IndexRows: the videos of an index file as a memory-mapped Arrow table, read row by row on demand.

Every process that opens the same index maps the same file pages, so the dataset costs each of them only the
pages it touches (the OS shares them), not a Python object per video and per frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._fingerprint import arrow_fingerprint
from ._index_schema import INFO_LISTS, INFO_SCALARS
from ._info import VideoInfo
from ._location import ABSOLUTE_PATTERN, UNNORMALISED_PATTERN, join_parts, resolve
from ._mapped_row import MappedRow, read_mapped


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

    @property
    def numeric(self) -> bool:
        """Whether the column is numeric without nulls (``numpy()`` works)."""
        return self._numpy is not None

    @property
    def lists(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per chunk, a list column's (offsets, values)."""
        if self._lists is None:
            raise TypeError("not a list column")
        return self._lists

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
        return resolve(self.base_dir, p)

    def paths(self) -> list[str]:
        """Every row's path, resolved (in bulk, in Arrow: a million rows' fingerprint needs them all)."""
        return self.path_array().to_pylist()

    def path_array(self) -> Any:
        """Every row's path, resolved, as an Arrow string array."""
        return self.resolved(self._stored("path"))

    def fingerprint(self) -> str:
        """``VideoColumns.fingerprint``, hashed in Arrow a chunk at a time (no Python string per row)."""
        return arrow_fingerprint(self.path_array(), self.array("first_frame"), self.array("num_frames"))

    def unique_paths(self) -> tuple[Any, np.ndarray]:
        """The distinct files of the rows, resolved (an Arrow string array), and each row's position in it
        (segments of one file share it): what a check of the files stats once per file."""
        import pyarrow.compute as pc

        col = self._stored("path")
        distinct = pc.unique(col)
        inverse = pc.index_in(col, value_set=distinct).to_numpy(zero_copy_only=False)
        return self.resolved(distinct), np.asarray(inverse, np.int64)

    def resolved(self, col: Any) -> Any:
        """Stored paths (an Arrow string array) resolved against the index's folder, in Arrow; the few
        that the writer would not have stored (``./a``, ``a//b``) one by one."""
        import pyarrow as pa
        import pyarrow.compute as pc

        absolute = pc.starts_with(col, "/")
        # A URL or a drive path holds a colon: the regex, the slowest test, runs only when some path has one.
        if pc.any(pc.match_substring(col, ":")).as_py():
            absolute = pc.match_substring_regex(col, ABSOLUTE_PATTERN)
        rest, depth = col, None
        if pc.any(pc.starts_with(col, "../")).as_py():
            # An index written outside its data folder stores every path as "../..": each depth of climbing
            # is resolved once, and the rest of each path joined to it.
            rest = pc.replace_substring_regex(col, r"^(?:\.\./)+", "")
            depth = pc.divide(pc.subtract(pc.utf8_length(col), pc.utf8_length(rest)), 3)
        out = pc.if_else(absolute, col, _joined(self.base_dir, rest, depth))
        # What is left: relative paths the writer would not have stored ("./a", "a//b", "a/../b").
        odd = np.flatnonzero(
            pc.and_not(pc.match_substring_regex(rest, UNNORMALISED_PATTERN), absolute).to_numpy(
                zero_copy_only=False
            )
        )
        if not len(odd):
            return out
        values = out.to_pylist()
        for i in odd.tolist():
            values[i] = self.resolve(col[i].as_py())
        return pa.array(values, pa.string())

    def _stored(self, name: str) -> Any:
        """A column as stored, in this sequence's order (a chunked Arrow array)."""
        import pyarrow as pa

        col = self.table.column(name)
        return col if self._keep is None else col.take(pa.array(self._keep))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for an index of {n} videos")
        return self.at_row(self._row(i % n))

    def at_row(self, r: int) -> VideoInfo:
        """The VideoInfo of table row ``r``; it pickles as (Arrow file, row) when the table is mapped."""
        values = {name: self._cols[name].get(r) for name in (*INFO_SCALARS, *INFO_LISTS)}
        step = self._cols["pts_step"].get(r)
        if step:  # a constant frame rate: the timestamps are start + k * step, stored as those two numbers
            start = self._cols["pts_start"].get(r)
            values["frame_pts"] = tuple(range(start, start + step * self._cols["total_frames"].get(r), step))
        values["path"] = self.resolve(self._cols["path"].get(r))
        if self.source is None:
            return VideoInfo(**values)
        return VideoInfo.from_index_row(MappedRow(self.source, self.base_dir, r, mapped_row), **values)

    def __iter__(self) -> Iterator[VideoInfo]:
        for i in range(len(self)):
            yield self[i]

    def column(self, name: str) -> np.ndarray:
        """A numeric column as numpy (``num_frames``, ``first_frame``, ``label`` ...)."""
        col = self._cols[name].numpy()
        return col if self._keep is None else col[self._keep]

    def where_set(self, name: str) -> list[int]:
        """Positions in this sequence whose string column ``name`` is neither empty nor null (found in
        Arrow: no VideoInfo is built for the others)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        col = self.table.column(name)
        if self._keep is not None:
            col = col.take(pa.array(self._keep))
        is_set = pc.fill_null(pc.not_equal(col, ""), False)
        return np.flatnonzero(is_set.to_numpy(zero_copy_only=False)).tolist()

    def array(self, name: str) -> np.ndarray:
        """Any numeric or boolean column as numpy, in this sequence's order (nulls, as in ``start`` or an
        older index's missing column, read as 0)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if name not in self._cols:
            return np.zeros(len(self), np.int64)
        if self._cols[name].numeric:  # zero-copy chunks joined by numpy, no Arrow allocation
            return self.column(name)
        col = self._stored(name)
        if col.null_count:
            col = pc.fill_null(col, pa.scalar(0, col.type))
        return np.asarray(col.to_numpy(), np.bool_ if pa.types.is_boolean(col.type) else None)

    def array_valid(self, name: str) -> np.ndarray:
        """Where a column holds a value (not null), in this sequence's order; all False when it is absent."""
        import pyarrow.compute as pc

        if name not in self._cols:
            return np.zeros(len(self), bool)
        return np.asarray(pc.is_valid(self._stored(name)).to_numpy(zero_copy_only=False), bool)

    def pts_at(self, videos: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The pts of frame ``frames[i]`` (of the whole stream) of video ``videos[i]``, as int64, read from the
        columns: start + frame x step at a constant rate, the stored list otherwise.

        Raises:
            IndexError: a video has no timestamp for that frame.
        """
        rows = np.asarray(videos, np.int64) if self._keep is None else self._keep[videos]
        frames = np.asarray(frames, np.int64)
        total = self._cols["total_frames"].numpy()[rows]
        if np.any((frames < 0) | (frames >= total)):
            bad = int(np.flatnonzero((frames < 0) | (frames >= total))[0])
            raise IndexError(f"{self.path(int(videos[bad]))}: no timestamp for frame {int(frames[bad])}")
        step = self._cols["pts_step"].numpy()[rows]
        out = self._cols["pts_start"].numpy()[rows] + frames * step
        listed = np.flatnonzero(step == 0)
        chunk = np.searchsorted(self._starts, rows[listed], side="right") - 1
        for k in np.unique(chunk).tolist():
            sel = listed[chunk == k]
            offsets, values = self._cols["frame_pts"].lists[k]
            out[sel] = values[offsets[rows[sel] - self._starts[k]] + frames[sel]]
        return out

    def paths_of(self, videos: np.ndarray) -> list[str]:
        """The resolved paths of some videos (positions in this sequence), without a VideoInfo each."""
        import pyarrow as pa

        rows = np.asarray(videos, np.int64) if self._keep is None else self._keep[videos]
        return self.resolved(self.table.column("path").take(pa.array(rows))).to_pylist()

    def values(self, name: str) -> list[Any]:
        """Any column as Python values, in this sequence's order."""
        col = self.table.column(name).to_pylist()
        return col if self._keep is None else [col[int(k)] for k in self._keep]


def _joined(folder: str, rest: Any, depth: Any) -> Any:
    """Each ``rest`` joined to ``folder`` climbed ``depth`` folders up (None: no climbing), in Arrow; right
    for every path that is neither absolute nor matches ``UNNORMALISED_PATTERN``."""
    import pyarrow.compute as pc

    out = None
    for d in [0] if depth is None else pc.unique(depth).to_pylist():
        prefix, suffix = join_parts(resolve(folder, "/".join([".."] * d)) if d else folder)
        if prefix.endswith("/") and not suffix:  # the separator form is Arrow's fastest join
            part = pc.binary_join_element_wise(prefix[:-1], rest, "/")
        else:
            part = pc.binary_join_element_wise(prefix, rest, suffix, "")
        out = part if out is None else pc.if_else(pc.equal(depth, d), part, out)
    return out


def mapped_row(source: str, base_dir: str, row: int) -> VideoInfo:
    """Unpickle a VideoInfo read from a memory-mapped index (``MappedRow``): its row, read from this
    process's own map of the Arrow file."""
    return read_mapped(
        source, base_dir, row, lambda table, base, src: IndexRows(table, base_dir=base, source=src)
    )
