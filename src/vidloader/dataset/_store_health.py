"""Whether a store can be reached at all, per process: a circuit breaker per store.

A request that fails because the store cannot be reached (connection refused, DNS, connect timeouts) after
its retries, one that failed transiently (5xx, timeouts) when a request for the store's root fails too, or
a third request in a row that fails transiently with no success in between, opens the store's breaker: the failure becomes a ``StoreUnavailableError`` naming the endpoint,
and every request to that store in this process fails the same way at once, without retries, for
``COOLDOWN_S``. After that requests reach the store again: the first answer closes the breaker, the first
failure opens it again.

A store is a scheme and a bucket or host (``s3://bucket``, ``https://host:port``; a tar member's store is
its shard's), so a file's failure and its store's health are looked up from the file's URL alone."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .._errors import StoreUnavailableError
from .._redact import redact
from ._location import is_remote, tar_member

# Requests in a row that failed transiently (each after its own retries) before the store counts as down.
TRIP_AFTER = 3
# How long an open breaker fails requests at once before one is let through to try the store again.
COOLDOWN_S = 10.0


@dataclass
class _Health:
    failed_in_row: int = 0
    open_until: float = 0.0
    down: tuple[str, str] | None = None  # (endpoint, reason) of the failure that opened the breaker


_lock = threading.Lock()
_stores: dict[str, _Health] = {}


def store_key(url: str) -> str:
    """The store a URL reads from: its scheme and bucket or host (``s3://bucket``, ``http://host:port``)."""
    parts = tar_member(url)
    while parts is not None:
        url = parts[1]
        parts = tar_member(url)
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    return f"{scheme}://{netloc.rsplit('@', 1)[-1]}"


def check(url: str, *, now: float | None = None) -> None:
    """Fail at once while ``url``'s store is known to be unreachable.

    Raises:
        StoreUnavailableError: the store's breaker is open.
    """
    err = store_outage(url, now=now)
    if err is not None:
        raise err


def store_outage(url: str, *, now: float | None = None) -> StoreUnavailableError | None:
    """The StoreUnavailableError this process holds for ``url``'s store while its breaker is open, else None
    (always None for a local path)."""
    if not is_remote(url):
        return None
    now = time.monotonic() if now is None else now
    with _lock:
        h = _stores.get(store_key(url))
        if h is None or h.down is None or now >= h.open_until:
            return None
        # A new error each time: threads raising one instance together would share its traceback.
        return StoreUnavailableError(*h.down)


def succeeded(url: str) -> None:
    """A request to ``url``'s store was answered: the store is up."""
    with _lock:
        h = _stores.get(store_key(url))
        if h is not None:
            h.failed_in_row, h.open_until, h.down = 0, 0.0, None


def failed(
    url: str, *, endpoint: str, reason: str, down: bool, now: float | None = None
) -> StoreUnavailableError | None:
    """A request to ``url``'s store failed for good (its retries spent) with a transient fault. Returns the
    StoreUnavailableError to raise when this opens the store's breaker, else None (the failure stays the
    file's own).

    Args:
        url: the URL read.
        endpoint: the store's endpoint, for the message.
        reason: what failed.
        down: the store itself is down (it could not be reached at all: refused, DNS, connect timeout; or
            its root failed as well); else only the streak of failed requests counts.
        now: the ``time.monotonic()`` of the failure (tests give their own).
    """
    now = time.monotonic() if now is None else now
    with _lock:
        h = _stores.setdefault(store_key(url), _Health())
        h.failed_in_row += 1
        if not down and h.failed_in_row < TRIP_AFTER:
            return None
        why = reason if down else f"{h.failed_in_row} requests in a row failed; the last: {reason}"
        h.down = (endpoint, f"{why} (while reading {redact(url)})")
        h.open_until = now + COOLDOWN_S
        return StoreUnavailableError(*h.down)


def reset_store_health() -> None:
    """Forget every store's failures (``clear_store_cache`` does this too)."""
    with _lock:
        _stores.clear()
