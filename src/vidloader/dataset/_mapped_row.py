"""A VideoInfo read from a memory-mapped index, as it travels to another process: (Arrow file, folder,
row), a few hundred bytes, which the receiving process reads from its own map of the same file.

A decode worker reads rows scattered over the whole file, and each page fault maps up to 64 KiB of the
file around the page (the kernel's fault-around), so a worker holding its map as it is would count more
and more of the index in its RSS as it reads (about 90 MB over 160 rows of a 1M-row index; all of it,
over an epoch). Those pages are page cache, shared and reclaimable, but they look like the worker's
memory. The worker maps the file itself and, once a row is read (copied into Python objects), drops the
pages from its map (``MADV_DONTNEED``): they stay in the page cache, and its RSS stays flat.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._index_rows import IndexRows
    from ._info import VideoInfo


@dataclass(frozen=True)
class MappedRow:
    """Row ``row`` of the memory-mapped Arrow index file ``source`` (paths resolving against ``base_dir``):
    what a VideoInfo read from it pickles as."""

    source: str
    base_dir: str
    row: int

    def reduce(self) -> tuple[Callable[..., VideoInfo], tuple[Any, ...]]:
        return (mapped_row, (self.source, self.base_dir, self.row))


_MAPPED: dict[tuple[str, str], tuple[IndexRows, mmap.mmap]] = {}
_lock = threading.Lock()


def _open(source: str, base_dir: str) -> tuple[IndexRows, mmap.mmap]:
    import pyarrow as pa

    from ._index_rows import IndexRows

    with open(source, "rb") as f:
        pages = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    # Arrow reads the IPC file straight from this map (zero-copy), so this process can drop its pages.
    table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(pages))).read_all()
    return IndexRows(table, base_dir=base_dir, source=source), pages


def mapped_row(source: str, base_dir: str, row: int) -> VideoInfo:
    """Unpickle a row-backed VideoInfo: map the Arrow file once per process, read the row from it, and
    unmap the pages it touched (see the module's docstring)."""
    with _lock:  # one map per process, made by the first caller
        entry = _MAPPED.get((source, base_dir))
        if entry is None:
            entry = _MAPPED[(source, base_dir)] = _open(source, base_dir)
        rows, pages = entry
        info = rows.at_row(row)
        if hasattr(mmap, "MADV_DONTNEED"):  # POSIX; elsewhere the pages stay mapped
            pages.madvise(mmap.MADV_DONTNEED)
    return info
