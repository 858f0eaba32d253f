"""Range reads of one resolved remote file through fsspec's block cache, and the seekable file object
PyAV (and tarfile) read them through."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from .._redact import redact
from ._store import count
from ._store_retry import call_with_retries


@dataclass(frozen=True)
class _Target:
    """A remote file resolved once: where its bytes lie and what identifies its content."""

    url: str  # as the user spelled it (may hold a signature: never printed unredacted)
    fs: Any
    fs_path: str
    offset: int  # where the file starts inside the object (a tar member's data)
    size: int
    tag: str  # ETag or mtime: a changed object is a different probe-cache key


class _Source:
    """One remote file's range reads through fsspec's BlockCache (shared by every RangeFile on it)."""

    def __init__(self, target: _Target, *, block: int, max_blocks: int) -> None:
        import fsspec.caching

        self.target = target
        self.cache = fsspec.caching.BlockCache(block, self._fetch, target.size, max_blocks)
        count("opens")

    @property
    def most_bytes(self) -> int:
        """The most this file's cache can hold: the whole file, or all its blocks."""
        return min(self.target.size, self.cache.blocksize * self.cache.maxblocks)

    def _fetch(self, start: int, end: int) -> bytes:
        t = self.target
        start, end = max(start, 0), min(end, t.size)
        if start >= end:
            return b""

        def get() -> bytes:
            data = t.fs.cat_file(t.fs_path, start=t.offset + start, end=t.offset + end)
            if len(data) != end - start:
                # A dropped connection can end a body early; it is worth another try.
                raise ConnectionError(f"range read returned {len(data)} of {end - start} bytes")
            return data

        data = call_with_retries(get, url=t.url, what=f"range read of bytes {start}-{end}")
        count("requests")
        count("bytes", len(data))
        return data


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file; reads are served by its source's block cache.

    Args:
        source: the resolved remote file and its block cache (made by ``open_source``).
    """

    def __init__(self, source: _Source) -> None:
        super().__init__()
        self._src = source
        self._pos = 0
        self.name = redact(source.target.url)

    @property
    def size(self) -> int:
        return self._src.target.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self._pos + n, self.size)
        data = self._src.cache._fetch(self._pos, end) if end > self._pos else b""
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
