"""Talking to stores through fsspec: which filesystem a URL names, retries with backoff for transient
errors, clear errors for missing or denied objects, and per-process counters of what was read.

Credentials and endpoints come only from each store's own standard configuration (for S3: the AWS_*
variables and ~/.aws files, AWS_ENDPOINT_URL for an on-premises store); nothing here takes them."""

from __future__ import annotations

import errno
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeVar

from .._errors import ConfigError, StoreError
from .._redact import redact
from .._validate import check_int, check_opt_int, check_positive_float

log = logging.getLogger("vidloader")
_T = TypeVar("_T")
_KiB, _MiB = 1 << 10, 1 << 20
Failure = Literal["missing", "denied", "transient", "fatal"]


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    """How remote files are read, per process (``configure_store`` changes it).

    Args:
        block_size: bytes per range request. None sizes it per file to an eighth of the file's average
            GOP (index bytes / keyframes) between ``min_block`` and ``max_block``; 1 MiB when unknown.
            (A clip then reads its GOP span in about 8 requests; a quarter GOP read 1.9-2.0x the bytes
            the clip needs from a cold file, an eighth 1.7x: docs/storage.md.)
        min_block: smallest block when sized from the GOP.
        max_block: largest block when sized from the GOP.
        cache_bytes: cached blocks per open file (LRU), at least 4 blocks: the container header and the
            GOPs a clip decodes stay in memory while the next clip of the file is read.
        retries: retries of a request that failed transiently (5xx, 429, timeout, reset) before it fails.
        backoff: seconds before the first retry; doubles each retry (random jitter), capped at 5 s.
        open_files: remote files kept open per process (size, tar offsets and cached blocks). None (the
            default) sizes the table from the files: every file stays open while the blocks all open files
            can cache (each at most its size or ``cache_bytes``) fit in 8 x ``cache_bytes``, so a dataset of
            small files is opened once per process, and files larger than ``cache_bytes`` keep 8 open.
    """

    block_size: int | None = None
    min_block: int = 128 * _KiB
    max_block: int = 8 * _MiB
    cache_bytes: int = 64 * _MiB
    retries: int = 5
    backoff: float = 0.2
    open_files: int | None = None

    def __post_init__(self) -> None:
        if self.block_size is not None:
            check_int("StoreConfig.block_size", self.block_size, minimum=4 * _KiB)
        check_int("StoreConfig.min_block", self.min_block, minimum=4 * _KiB)
        check_int("StoreConfig.max_block", self.max_block, minimum=self.min_block)
        check_int("StoreConfig.cache_bytes", self.cache_bytes, minimum=0)
        check_int("StoreConfig.retries", self.retries, minimum=0)
        check_positive_float("StoreConfig.backoff", self.backoff)
        check_opt_int("StoreConfig.open_files", self.open_files, minimum=1)

    def block_for(self, gop_bytes: int | None) -> int:
        if self.block_size is not None:
            return self.block_size
        if not gop_bytes:
            return _MiB
        return min(max(gop_bytes // 8, self.min_block), self.max_block)


_config = StoreConfig()
_STAT_KEYS = ("opens", "requests", "bytes", "retries", "failures")
_stats = dict.fromkeys(_STAT_KEYS, 0)
_stats_lock = threading.Lock()


def store_config() -> StoreConfig:
    """The StoreConfig this process reads with."""
    return _config


def configure_store(**changes: Any) -> StoreConfig:
    """Change this process's StoreConfig (fields as keywords); returns the new one.

    Args:
        **changes: StoreConfig fields and their new values.

    Returns:
        The StoreConfig now in force.

    Raises:
        ConfigError: an unknown field or a bad value.
    """
    global _config
    names = {f.name for f in fields(StoreConfig)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ConfigError(f"configure_store: unknown field(s) {unknown}; fields are {sorted(names)}")
    _config = replace(_config, **changes)
    return _config


def store_stats() -> dict[str, int]:
    """Counters of this process's remote reads: files opened, range requests, bytes, retries, failures.

    Decode workers in other processes (``worker_type="process"``) count in their own process."""
    with _stats_lock:
        return dict(_stats)


def reset_store_stats() -> None:
    """Zero this process's store counters (``store_stats``)."""
    with _stats_lock:
        for k in _STAT_KEYS:
            _stats[k] = 0


def count(key: str, n: int = 1) -> None:
    with _stats_lock:
        _stats[key] += n


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URL; a missing package or unknown protocol is a ConfigError."""
    protocol = url.split("://", 1)[0]
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"reading {redact(url)} needs fsspec; install vidloader's store extra: pip install 'vidloader[store]'"
        ) from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        # fsspec says which package: "Install gcsfs to access Google Storage".
        raise ConfigError(f"{protocol}:// URLs need an extra package ({exc}): {redact(url)}") from None
    except ValueError as exc:
        raise ConfigError(f"cannot read {redact(url)}: {exc}") from None


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


def classify(exc: BaseException) -> Failure:
    """What a store error means: a missing object, a denied read, a transient fault worth retrying, or
    anything else (fatal: retrying would not help)."""
    # fsspec's HTTP filesystem reports any failed stat as FileNotFoundError; s3fs wraps botocore's error.
    # The HTTP status underneath, where there is one, says what really happened.
    status = next((s for s in map(_status, _causes(exc)) if s is not None), None)
    if status is not None:
        if status == 404:
            return "missing"
        if status in (401, 403):
            return "denied"
        return "transient" if status >= 500 or status in (408, 429) else "fatal"
    if isinstance(exc, FileNotFoundError):
        return "missing"
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
    """``fn()``, retried with backoff while it fails transiently; a StoreError naming the URL otherwise.

    Raises:
        StoreError: the object is missing, the read is denied, a fatal error, or retries ran out.
    """
    errors = _store_errors()
    cfg = _config
    attempt = 0
    while True:
        try:
            return fn()
        except StoreError:
            raise
        except errors as exc:
            kind = classify(exc)
            if kind == "transient" and attempt < cfg.retries:
                count("retries")
                wait = min(cfg.backoff * 2**attempt, 5.0) * random.uniform(0.5, 1.0)
                log.debug(
                    "vidloader: retrying %s of %s in %.2fs: %s", what, redact(url), wait, redact(str(exc))
                )
                time.sleep(wait)
                attempt += 1
                continue
            count("failures")
            detail = "; ".join(f"{type(e).__name__}: {e}" for e in _causes(exc)[:2])
            reason = {
                "missing": f"object not found ({detail})",
                "denied": f"read denied ({detail})",
                "transient": f"{what} failed after {attempt + 1} attempts ({detail})",
                "fatal": f"{what} failed ({detail})",
            }[kind]
            raise StoreError(url, reason) from exc
