"""Talking to stores through fsspec: how this process reads them (``StoreConfig``), which filesystem a
URL names, where its store is, and per-process counters of what was read. Requests and their retries:
``_store_retry``.

One retry budget per request: vidloader's. The S3 filesystem is opened with botocore's and s3fs's own
retries switched off (they stacked: 35 attempts and 188 s before a dead endpoint was reported), and its
connect and read timeouts inside ``request_timeout``; fsspec's HTTP filesystem does not retry.

Credentials and endpoints come only from each store's own standard configuration (for S3: the AWS_*
variables and ~/.aws files, AWS_ENDPOINT_URL for an on-premises store); nothing here takes them."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields, replace
from typing import Any

from .._errors import ConfigError
from .._redact import redact
from .._validate import check_int, check_opt_int, check_positive_float
from ._store_health import store_key

_KiB, _MiB = 1 << 10, 1 << 20


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
        retries: retries of a request that failed transiently (5xx, 429, timeout, reset, refused) before
            it fails; the only retries: the S3 library's own are switched off.
        backoff: seconds before the first retry; doubles each retry (random jitter), capped at 5 s.
        request_timeout: seconds one request may take in all, its attempts and the waits between them:
            no retry starts that would end past it (and S3's connect and read timeouts lie inside it).
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
    request_timeout: float = 30.0
    open_files: int | None = None

    def __post_init__(self) -> None:
        if self.block_size is not None:
            check_int("StoreConfig.block_size", self.block_size, minimum=4 * _KiB)
        check_int("StoreConfig.min_block", self.min_block, minimum=4 * _KiB)
        check_int("StoreConfig.max_block", self.max_block, minimum=self.min_block)
        check_int("StoreConfig.cache_bytes", self.cache_bytes, minimum=0)
        check_int("StoreConfig.retries", self.retries, minimum=0)
        check_positive_float("StoreConfig.backoff", self.backoff)
        check_positive_float("StoreConfig.request_timeout", self.request_timeout)
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
    """(fsspec filesystem, path inside it) for a URL; a missing package or unknown protocol is a ConfigError.
    S3 and HTTP filesystems come with vidloader's retry budget only and timeouts inside ``request_timeout``
    (``_s3_options``, ``_http_options``)."""
    protocol = url.split("://", 1)[0]
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"reading {redact(url)} needs fsspec; install vidloader's store extra: pip install 'vidloader[store]'"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **_library_options(protocol, _config))
    except ImportError as exc:
        # fsspec says which package: "Install gcsfs to access Google Storage".
        raise ConfigError(f"{protocol}:// URLs need an extra package ({exc}): {redact(url)}") from None
    except ValueError as exc:
        raise ConfigError(f"cannot read {redact(url)}: {exc}") from None
    if protocol in _S3:
        # s3fs calls the client again after its own errors, up to ``retries`` calls; a constructor keyword
        # cannot set it. This instance is vidloader's own (fsspec caches instances by their options).
        fs.retries = 1
    return fs, path


_S3 = frozenset({"s3", "s3a"})
_HTTP = frozenset({"http", "https"})


def _library_options(protocol: str, cfg: StoreConfig) -> dict[str, Any]:
    """Options of a filesystem whose library would retry or wait on its own: vidloader's retries only, and
    each attempt inside ``request_timeout``."""
    if protocol in _S3:
        return _s3_options(cfg)
    if protocol in _HTTP:
        return _http_options(cfg)
    return {}


def _s3_options(cfg: StoreConfig) -> dict[str, Any]:
    """botocore makes one attempt per call (vidloader retries), and an attempt's connect and read timeouts
    lie inside ``request_timeout``; other settings of the user's fsspec configuration are kept."""
    import fsspec.config

    user = dict(fsspec.config.conf.get("s3", {}).get("config_kwargs", {}))
    limit = cfg.request_timeout
    return {
        "config_kwargs": {
            **user,
            "retries": {"total_max_attempts": 1},
            "connect_timeout": min(user.get("connect_timeout", 10.0), limit),
            "read_timeout": min(user.get("read_timeout", limit), limit),
        }
    }


def _http_options(cfg: StoreConfig) -> dict[str, Any]:
    """aiohttp gives a request 5 minutes by default: here an attempt's connect and each socket read lie
    inside ``request_timeout`` (a timeout in the user's fsspec configuration stands)."""
    import aiohttp
    import fsspec.config

    user = dict(fsspec.config.conf.get("http", {}).get("client_kwargs", {}))
    if "timeout" in user:
        return {}
    limit = cfg.request_timeout
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, limit), sock_read=limit)
    return {"client_kwargs": {**user, "timeout": timeout}}


def endpoint(url: str) -> str:
    """Where ``url``'s store is reached, for messages: an S3 bucket with its endpoint URL, else the scheme
    and host (``https://host:port``)."""
    key = store_key(url)
    if key.split("://", 1)[0] not in _S3:
        return key
    try:
        fs, _ = filesystem(key)
    except ConfigError:
        return key
    url_of = (
        getattr(fs, "endpoint_url", None)
        or getattr(fs, "client_kwargs", {}).get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    return f"{url_of} ({key})" if url_of else f"{key} (AWS's endpoint)"
