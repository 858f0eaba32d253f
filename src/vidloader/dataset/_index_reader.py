"""Opening an index file: its Parquet converted once into a local Arrow copy that every later open, in any
process, memory-maps; and the check of its rows against the files they describe."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError
from .._validate import check_bool, check_choice
from ._file_check import CHECK_FILES_CHOICES, CheckFiles, changed_rows, row_reasons
from ._index_rows import IndexRows
from ._index_schema import (
    ADDED_COLUMNS,
    INDEX_VERSION,
    INFO_COLUMNS,
    IndexMeta,
    pyarrow_module,
    with_added_columns,
)
from ._location import folder_of, is_remote, resolve
from ._probe_cache import default_cache_dir

log = logging.getLogger("vidloader")


def index_base(path: str | Path) -> str:
    """The folder an index's relative paths resolve against: its own (a URL's "folder" for a URL)."""
    text = str(path)
    return folder_of(text if is_remote(text) else os.path.abspath(text))


def _source(path: str) -> tuple[Callable[[], Any], str]:
    """An opener of the index file and what identifies this version of it (path, size, mtime or ETag)."""
    if is_remote(path):
        try:
            import fsspec

            fs, inner = fsspec.core.url_to_fs(path)
            info = fs.info(inner)
        except ImportError:
            raise ConfigError(f"index {path}: URLs need fsspec (pip install 'vidloader[store]')") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"index {path} cannot be read ({exc})") from None
        version = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created")
        return (lambda: fs.open(inner, "rb")), f"{path}\0{info.get('size')}\0{version}"
    if not os.path.isfile(path):
        raise ConfigError(f"index {path} does not exist; build it with `vidloader index`")
    st = os.stat(path)
    return (lambda: open(path, "rb")), f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}"


def _convert(pa: Any, pf: Any, dst: Path) -> None:
    """Parquet -> uncompressed Arrow IPC, one row group at a time (memory stays one row group); an index of
    an older version gains the columns added since, so every copy has them all."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    schema = with_added_columns(pf.schema_arrow.empty_table()).schema
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for g in range(pf.num_row_groups):
                writer.write_table(with_added_columns(pf.read_row_group(g)))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        # The allocator keeps freed row groups for reuse; this process will not convert again.
        pa.default_memory_pool().release_unused()


def read_index_table(
    path: str | Path, *, cache_dir: str | Path | None = None
) -> tuple[Any, IndexMeta, str | None]:
    """The index's table, memory-mapped from the local Arrow copy (made on first open), its meta, and the
    copy's path (None when the table had to be read into memory instead). ``path`` may be a URL (fsspec).

    Raises:
        ConfigError: the file is missing, not an index, or of another schema version.
    """
    pa = pyarrow_module()
    import pyarrow.parquet as pq

    path = str(path)
    opener, version = _source(path)
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha1(version.encode()).hexdigest()[:24]
    arrow = base / "index" / f"{key}-v{INDEX_VERSION}.arrow"
    with opener() as f:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"{path} is not a readable Parquet index ({exc})") from None
        meta = IndexMeta.from_schema(pf.schema_arrow, path)
        missing = [c for c in INFO_COLUMNS if c not in pf.schema_arrow.names and c not in ADDED_COLUMNS]
        if missing:
            raise ConfigError(f"{path}: index lacks columns {missing}")
        try:
            if not arrow.is_file():
                _convert(pa, pf, arrow)
            table = pa.ipc.open_file(pa.memory_map(str(arrow), "r")).read_all()
        except OSError as exc:
            # No writable cache: the table is decompressed into memory instead of mapped; it still works.
            log.warning("vidloader: cannot map the index through %s (%s); reading it into memory", arrow, exc)
            return with_added_columns(pf.read()), meta, None
    return table, meta, str(arrow)


def open_index(
    path: str | Path, *, check_files: CheckFiles, strict: bool, cache_dir: str | Path | None
) -> tuple[IndexRows, IndexMeta, list[tuple[str, str]]]:
    """An index's rows, less those whose file changed since indexing; its meta; and (path, reason) of every
    file left out, at indexing or now (see ``VideoDataset.from_index``).

    Raises:
        ConfigError: a bad option; the index is missing, unreadable or of another schema version; or
            (with ``strict``) it does not match the files.
    """
    check_choice("check_files", check_files, CHECK_FILES_CHOICES)
    check_bool("strict", strict)
    table, meta, source = read_index_table(path, cache_dir=cache_dir)
    rows = IndexRows(table, base_dir=index_base(path), source=source)
    meta = replace(meta, root=_root(meta, rows.base_dir), root_relative=False)
    bad = changed_rows(rows, check_files)
    pyarrow_module().default_memory_pool().release_unused()  # the check's resolved paths, freed
    left_out = [(rows.resolve(p), r) for p, r in meta.skipped]
    if bad:
        first = f"{rows.paths_of(np.array([bad[0][0]]))[0]}: {bad[0][1]}"
        msg = (
            f"index {path} does not match {len(bad)} of its {len(rows)} files, read under {rows.base_dir} "
            f"(first: {first})"
        )
        if strict:
            raise ConfigError(f"{msg}; rebuild it with `vidloader index`")
        log.warning("vidloader: %s; leaving them out (rebuild the index to use them)", msg)
        left_out += row_reasons(rows, bad)
        rows = rows.without([i for i, _ in bad])
    return rows, meta, left_out


def _root(meta: IndexMeta, base_dir: str) -> str:
    """The dataset's folder where the index is now: its recorded root resolved against the index's folder
    (an index written before roots were stored relative to it: that root while it exists, else the index's
    own folder)."""
    if meta.root is not None and meta.root_relative:
        return resolve(base_dir, meta.root)
    if meta.root is not None and (is_remote(meta.root) or os.path.exists(meta.root)):
        return meta.root
    return base_dir
