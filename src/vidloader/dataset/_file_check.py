"""Whether the files an index describes are still the files it was made from, checked once per distinct
file (segments share theirs), the stat calls spread over threads.

The size decides; the modification time is only a hint: a copy that did not keep times (``cp -r``, most
uploads and downloads) has new ones on unchanged bytes. Where the size matches and the time does not, the
file's content hash (its size and its first and last ``HASH_BLOCK`` bytes, recorded at indexing) is read
again and compared; an index written before that hash existed falls back to the time. Objects named by
URL are checked for existence and size by ``_url_check``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from ._index_rows import IndexRows
from ._location import URL_PATTERN
from ._url_check import MISSING, url_sizes

CheckFiles = Literal["all", "size", "none"]
CHECK_FILES_CHOICES: tuple[str, ...] = ("all", "size", "none")
HASH_BLOCK = 4096
# Files per thread task: large enough that the pool's overhead is small against the stat calls.
_CHUNK = 4096
_THREADS = 8


def content_hash(path: str) -> int | None:
    """A 64-bit hash of a local file's size and its first and last ``HASH_BLOCK`` bytes.

    Args:
        path: a local file.

    Returns:
        The hash as a signed int64, or None when the file cannot be read.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HASH_BLOCK)
            tail = b""
            if size > HASH_BLOCK:
                f.seek(max(size - HASH_BLOCK, HASH_BLOCK))
                tail = f.read(HASH_BLOCK)
    except OSError:
        return None
    h = hashlib.blake2b(size.to_bytes(8, "little") + head + tail, digest_size=8)
    return int.from_bytes(h.digest(), "little", signed=True)


def _in_threads(fn: Callable[[list[str]], list[Any]], paths: list[str]) -> list[Any]:
    """``fn`` over ``paths`` in chunks, on threads when there are many (stat and read release the GIL, and
    on a network file system each call waits for a round trip)."""
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if len(chunks) <= 1:
        return fn(paths)
    with ThreadPoolExecutor(min(_THREADS, len(chunks)), thread_name_prefix="vidloader-check") as pool:
        return [x for part in pool.map(fn, chunks) for x in part]


def _stats(paths: list[str]) -> list[tuple[int, int]]:
    """(size, mtime_ns) of each file; (MISSING, 0) for one that cannot be stat'ed."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append((MISSING, 0))
            continue
        out.append((st.st_size, st.st_mtime_ns))
    return out


def _hashes(paths: list[str]) -> list[int | None]:
    return [content_hash(p) for p in paths]


def changed_rows(rows: IndexRows, mode: CheckFiles) -> list[tuple[int, str]]:
    """Rows whose file is gone or differs from what was indexed (see the module's docstring; "size"
    compares sizes only); objects named by URL are checked for existence and size (``_url_check``).

    Args:
        rows: the index's rows.
        mode: "all", "size" or "none".

    Returns:
        (row, reason) of every row left out, in row order.
    """
    if mode == "none" or not len(rows):
        return []
    import pyarrow.compute as pc

    files, inverse = rows.unique_paths()
    remote = pc.match_substring_regex(files, URL_PATTERN).to_numpy(zero_copy_only=False)
    stat = np.zeros((len(files), 2), np.int64)
    local = np.flatnonzero(~remote)
    if len(local):
        stat[local] = np.array(_in_threads(_stats, files.take(local).to_pylist()), np.int64).reshape(-1, 2)
    if remote.any():  # objects: existence and size (sizes below 0 other than MISSING: not compared)
        urls = np.flatnonzero(remote)
        stat[urls, 0] = url_sizes(files.take(urls).to_pylist())
    size, mtime = stat[inverse, 0], stat[inverse, 1]
    indexed = rows.array("size_bytes")
    bad = {int(i): "file no longer exists" for i in np.flatnonzero(size == MISSING)}
    for i in np.flatnonzero((size >= 0) & (size != indexed)).tolist():
        bad[i] = f"changed since indexed (size {int(indexed[i])} -> {int(size[i])} bytes)"
    if mode == "all":
        stamped = rows.array("mtime_ns")
        # Objects have no modification time to compare (their rows may carry the time of the local files
        # they were indexed from): existence and size decide for them.
        timed = (size == indexed) & (stamped != 0) & ~remote[inverse]
        retimed = np.flatnonzero(timed & (mtime != stamped))
        bad.update(_retimed(rows, retimed, files, inverse))
    return sorted(bad.items())


def _retimed(rows: IndexRows, retimed: np.ndarray, files: Any, inverse: np.ndarray) -> dict[int, str]:
    """Of the rows whose file kept its size but not its time, those whose content hash says it changed
    (or, without a recorded hash, all of them)."""
    if not len(retimed):
        return {}
    known = rows.array("content_hash")[retimed]
    has = rows.array_valid("content_hash")[retimed]
    bad = {
        int(i): "changed since indexed (modification time differs, same size; this index records no content "
        "hash to tell a copy from a change: rebuild it, or open with check_files='size')"
        for i in retimed[~has]
    }
    check = retimed[has]
    distinct, where = np.unique(inverse[check], return_inverse=True)
    now = _in_threads(_hashes, files.take(distinct).to_pylist())
    now_rows = np.array([h if h is not None else 0 for h in now], np.int64)[where]
    unread = np.array([h is None for h in now], bool)[where]
    for i in check[(now_rows != known[has]) | unread].tolist():
        bad[i] = f"changed since indexed (same size, but its first or last {HASH_BLOCK // 1024} KiB differ)"
    return bad


def row_reasons(rows: IndexRows, bad: Sequence[tuple[int, str]]) -> list[tuple[str, str]]:
    """(path, reason) of rows left out, paths resolved in bulk."""
    paths = rows.paths_of(np.array([i for i, _ in bad], np.int64))
    return [(p, reason) for p, (_, reason) in zip(paths, bad, strict=True)]
