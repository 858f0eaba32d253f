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
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._info import VideoInfo


class RowSource(Protocol):
    """What a mapped index is read through (``IndexRows``)."""

    def at_row(self, r: int) -> VideoInfo: ...


@dataclass(frozen=True)
class MappedRow:
    """Row ``row`` of the memory-mapped Arrow index file ``source`` (paths resolving against ``base_dir``):
    what a VideoInfo read from it pickles as; ``reader(source, base_dir, row)`` (a module-level function,
    ``IndexRows``' own) reads it back in the receiving process."""

    source: str
    base_dir: str
    row: int
    reader: Callable[[str, str, int], VideoInfo]

    def reduce(self) -> tuple[Callable[..., VideoInfo], tuple[Any, ...]]:
        return (self.reader, (self.source, self.base_dir, self.row))


_MAPPED: dict[tuple[str, str], tuple[RowSource, mmap.mmap]] = {}
_lock = threading.Lock()


def _map(source: str) -> tuple[Any, mmap.mmap]:
    import pyarrow as pa

    with open(source, "rb") as f:
        pages = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    # Arrow reads the IPC file straight from this map (zero-copy), so this process can drop its pages.
    return pa.ipc.open_file(pa.BufferReader(pa.py_buffer(pages))).read_all(), pages


def read_mapped(
    source: str, base_dir: str, row: int, rows_of: Callable[[Any, str, str], RowSource]
) -> VideoInfo:
    """A row-backed VideoInfo, read where it was unpickled: map the Arrow file once per process (its table
    read through ``rows_of(table, base_dir, source)``), read the row, and unmap the pages it touched (see
    the module's docstring)."""
    with _lock:  # one map per process, made by the first caller
        entry = _MAPPED.get((source, base_dir))
        if entry is None:
            table, pages = _map(source)
            entry = _MAPPED[(source, base_dir)] = (rows_of(table, base_dir, source), pages)
        rows, pages = entry
        info = rows.at_row(row)
        if hasattr(mmap, "MADV_DONTNEED"):  # POSIX; elsewhere the pages stay mapped
            pages.madvise(mmap.MADV_DONTNEED)
    return info
