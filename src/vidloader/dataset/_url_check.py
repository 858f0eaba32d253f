"""Whether the objects an index names by URL still exist, and their sizes, checked when the index is opened:
a folder holding several of them is listed once (a listing request covers up to a thousand objects on S3),
any other object is asked for alone, on threads.

Listings are used only on stores whose listing is exact (object stores, memory and local file URLs); an
HTTP server's "folder" is not a listing, so there each object is asked for (one HEAD request each). A tar
member is checked through its shard (that the shard exists; the member's size is not checked). When the
store cannot be asked (denied, unreachable), the check stops and says so once: those objects are checked
when read, as before.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from .._errors import StoreError
from .._redact import redact
from ._location import tar_member
from ._store import filesystem
from ._store_retry import call_with_retries, classify

log = logging.getLogger("vidloader")
MISSING, UNKNOWN, SHARD_FOUND = -1, -2, -3
# Stores whose listing of a folder is every object in it.
_LISTED = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory", "file", "local"})
_LIST_FROM = 4  # wanted objects in one folder from which a listing is cheaper than asking for each
_THREADS = 16
_BATCH = 64  # objects asked for by one thread task


class _Check:
    """One open's check: sizes found so far, and whether the store stopped answering."""

    def __init__(self, n: int) -> None:
        self.sizes = np.full(n, UNKNOWN, np.int64)
        self.failed: str | None = None
        self._lock = threading.Lock()

    def ask(self, url: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` through the store's retries; None when the object is missing; raises _GiveUp otherwise."""
        if self.failed is not None:
            raise _GiveUp
        try:
            return call_with_retries(fn, url=url, what="existence check")
        except StoreError as exc:
            if exc.__cause__ is not None and classify(exc.__cause__) == "missing":
                return None
            with self._lock:
                self.failed = self.failed or f"{redact(url)}: {exc.reason}"
            raise _GiveUp from None


class _GiveUp(Exception):
    """The store stopped answering: the rest is left to be checked when read."""


def _listed(check: _Check, fs: Any, folder: str, wanted: list[tuple[int, str, str]]) -> None:
    listing = check.ask(wanted[0][1], lambda: (fs.invalidate_cache(folder), fs.ls(folder, detail=True))[1])
    found = {e["name"].rstrip("/"): e.get("size") for e in listing or [] if e.get("type") != "directory"}
    for i, _, name in wanted:
        size = found.get(f"{folder}/{name}")
        check.sizes[i] = MISSING if size is None else int(size)


def _each(check: _Check, wanted: list[tuple[int, str, str]], shard: bool) -> None:
    for i, url, _ in wanted:
        fs, path = filesystem(url)
        info = check.ask(url, partial(fs.info, path))
        check.sizes[i] = MISSING if info is None else SHARD_FOUND if shard else int(info.get("size") or 0)


def _tasks(check: _Check, urls: list[str]) -> list[Callable[[], None]]:
    """One listing per folder that holds several objects of a listable store; batches of single asks."""
    folders: defaultdict[tuple[str, bool], list[tuple[int, str, str]]] = defaultdict(list)
    for i, url in enumerate(urls):
        member = tar_member(url)
        target = member[1] if member is not None else url
        head, _, name = target.rpartition("/")
        folders[(head, member is not None)].append((i, target, name))
    tasks: list[Callable[[], None]] = []
    for (head, shard), wanted in folders.items():
        fs, child = filesystem(f"{head}/x")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if not shard and protocol in _LISTED and len(wanted) >= _LIST_FROM:
            folder = posixpath.dirname(child)
            tasks.append(partial(_listed, check, fs, folder, wanted))
            continue
        for s in range(0, len(wanted), _BATCH):
            tasks.append(partial(_each, check, wanted[s : s + _BATCH], shard))
    return tasks


def url_sizes(urls: list[str]) -> np.ndarray:
    """The size of each object now: ``MISSING``, ``UNKNOWN`` (not checked: the store did not answer), or for a
    tar member ``SHARD_FOUND``.

    Args:
        urls: object URLs (``tar://member::shard`` for tar members).

    Returns:
        int64 ``[len(urls)]``.

    Raises:
        ConfigError: a URL's protocol needs a package that is not installed.
    """
    check = _Check(len(urls))
    tasks = _tasks(check, urls)
    with ThreadPoolExecutor(min(_THREADS, max(len(tasks), 1)), thread_name_prefix="vidloader-urls") as pool:
        for future in [pool.submit(task) for task in tasks]:
            with contextlib.suppress(_GiveUp):
                future.result()
    if check.failed is not None:
        left = int(np.sum(check.sizes == UNKNOWN))
        log.warning(
            "vidloader: could not check %d of the index's %d objects at open (%s); they are checked when read",
            left,
            len(urls),
            check.failed,
        )
    return check.sizes
