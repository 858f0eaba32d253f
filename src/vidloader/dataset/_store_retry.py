"""Requests to a store: what a failure means (``classify``), retries with backoff within
``StoreConfig.request_timeout``, and the error a request that failed for good raises: a ``StoreError`` for
the file, or a ``StoreUnavailableError`` when the store itself is down (``_store_health``)."""

from __future__ import annotations

import errno
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from .._errors import StoreError, StoreUnavailableError
from .._redact import redact
from . import _store_health as health
from ._store import count, endpoint, filesystem, store_config

log = logging.getLogger("vidloader")
_T = TypeVar("_T")
Failure = Literal["missing", "denied", "transient", "unreachable", "fatal"]


def _store_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        import aiohttp

        errors.append(aiohttp.ClientError)
    except ImportError:
        pass
    try:
        import botocore.exceptions

        errors += [botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError]
    except ImportError:
        pass
    return tuple(errors)


_TRANSIENT_ERRNO = frozenset(
    {errno.EIO, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EAGAIN, errno.EPIPE, errno.EBUSY}
)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)  # aiohttp.ClientResponseError
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # botocore.exceptions.ClientError
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code if isinstance(code, int) else None
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 8:
        chain.append(chain[-1].__cause__)
    return chain


# A connection that could not be made at all: botocore's, aiohttp's (also DNS), and their causes.
_UNREACHABLE_TYPES = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionTimeoutError"}
)


def _unreachable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, (ConnectionRefusedError, socket.gaierror)):
            return True
        if _UNREACHABLE_TYPES.intersection(t.__name__ for t in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(exc: BaseException) -> Failure:
    """What a store error means: a missing object, a denied read, a transient fault worth retrying, a store
    that cannot be reached (connection refused, DNS, connect timeout: retried too), or anything else
    (fatal: retrying would not help)."""
    # fsspec's HTTP filesystem reports any failed stat as FileNotFoundError (a refused connection too); s3fs
    # wraps botocore's error. The HTTP status or connection error underneath says what really happened.
    status = next((s for s in map(_status, _causes(exc)) if s is not None), None)
    if status is not None:
        if status == 404:
            return "missing"
        if status in (401, 403):
            return "denied"
        return "transient" if status >= 500 or status in (408, 429) else "fatal"
    if _unreachable(exc):
        return "unreachable"
    if isinstance(exc, FileNotFoundError):
        # fsspec's HTTP stat says FileNotFoundError for any failure (a read timeout too); the cause tells.
        return "missing" if exc.__cause__ is None else classify(exc.__cause__)
    if isinstance(exc, PermissionError):
        return "denied"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "transient"
    kind = type(exc).__name__
    # aiohttp's connection and payload errors; botocore's endpoint, read-timeout and incomplete reads.
    if any(w in kind for w in ("Connection", "Timeout", "Payload", "IncompleteRead", "Disconnected")):
        return "transient"
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
        # s3fs turns S3 errors it has no mapping for (5xx after botocore's own retries, SlowDown) into EIO.
        return "transient"
    return "fatal"


def call_with_retries(fn: Callable[[], _T], *, url: str, what: str) -> _T:
    """``fn()``, retried with backoff while it fails transiently and ``request_timeout`` allows; a
    StoreError naming the URL otherwise, or a StoreUnavailableError when the store cannot be reached.

    Raises:
        StoreError: the object is missing, the read is denied, a fatal error, or retries ran out.
        StoreUnavailableError: the store is unreachable (refused, DNS, connect timeouts; transient
            failures that its root shares, or several requests in a row failing): now, or already known
            in this process (then at once).
    """
    errors = _store_errors()
    cfg = store_config()
    health.check(url)
    start, attempt = time.monotonic(), 0
    while True:
        try:
            result = fn()
        except StoreError:
            raise
        except errors as exc:
            kind = classify(exc)
            wait = min(cfg.backoff * 2**attempt, 5.0) * random.uniform(0.5, 1.0)
            in_time = time.monotonic() - start + wait < cfg.request_timeout
            if kind in ("transient", "unreachable") and attempt < cfg.retries and in_time:
                health.check(url)  # another request may have found the store down meanwhile
                count("retries")
                log.debug(
                    "vidloader: retrying %s of %s in %.2fs: %s", what, redact(url), wait, redact(str(exc))
                )
                time.sleep(wait)
                attempt += 1
                continue
            count("failures")
            raise _failure(exc, kind, url=url, what=what, attempts=attempt + 1, start=start) from exc
        health.succeeded(url)
        return result


def _failure(
    exc: BaseException, kind: Failure, *, url: str, what: str, attempts: int, start: float
) -> StoreError | StoreUnavailableError:
    """The error for a request that failed for good: a StoreUnavailableError when that shows the store is
    down (``_store_health``), else a StoreError for the file."""
    detail = _detail(exc)
    if kind in ("transient", "unreachable"):
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        reason = f"{what} failed after {tries} in {time.monotonic() - start:.1f}s ({detail})"
        if kind == "transient":
            # A file that keeps failing, or a store that fails everything? Ask the store itself.
            root = _root_failure(url)
            if root is not None:
                kind = "unreachable"
                reason += f"; a request for {health.store_key(url)} itself failed too ({root})"
        down = health.failed(url, endpoint=endpoint(url), reason=reason, down=kind == "unreachable")
        return StoreError(url, reason) if down is None else down
    health.succeeded(url)  # the store answered (a missing or denied object, an error of its own)
    reason = {
        "missing": f"object not found ({detail})",
        "denied": f"read denied ({detail})",
        "fatal": f"{what} failed ({detail})",
    }[kind]
    return StoreError(url, reason)


def _detail(exc: BaseException) -> str:
    return "; ".join(f"{type(e).__name__}: {e}" for e in _causes(exc)[:2])


def _root_failure(url: str) -> str | None:
    """One request (no retries) for the root of ``url``'s store (its bucket, or its host's ``/``): None when
    the store answers (anything but a transient fault: a listing, a missing or denied root), else what
    failed."""
    fs, path = filesystem(health.store_key(url))
    try:
        fs.info(path)
    except _store_errors() as exc:
        if classify(exc) in ("transient", "unreachable"):
            return _detail(exc)
    return None
