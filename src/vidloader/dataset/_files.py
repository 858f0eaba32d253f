"""One file layer under every read of a video: probing, PyAV decode, audio and the DALI segment cut.

Local paths stay paths (FFmpeg opens them itself: the fast path). Any other fsspec URL (``s3://``,
``gs://``, ``https://``, ...) and any member of an uncompressed tar shard (``tar://<member>::<shard URL>``)
becomes a seekable file object whose reads are byte ranges through fsspec's block cache: the container
header and the GOPs a clip needs are fetched, never the whole file. A per-process table keeps opened files
(size, tar offsets and cached blocks), as many as their caches let fit in a memory budget, so the next clip
of the same file re-reads nothing it already has. Requests go through ``call_with_retries`` (backoff,
counted in ``store_stats``); a store that cannot be reached raises ``StoreUnavailableError`` from every
function here, never a file's error."""

from __future__ import annotations

import os
import tarfile
import threading
from collections import OrderedDict

from .._errors import ProbeError, StoreError
from .._redact import redact
from ._location import is_remote, tar_member
from ._range import RangeFile, _Source, _Target
from ._store import StoreConfig, filesystem, store_config
from ._store_health import reset_store_health
from ._store_retry import call_with_retries

_lock = threading.Lock()
_targets: OrderedDict[str, _Target] = OrderedDict()
_tar_members: dict[str, dict[str, tuple[int, int]]] = {}
_sources: OrderedDict[str, _Source] = OrderedDict()
_MAX_TARGETS = 4096
# open_files=None: open files together cache at most what this many full caches would.
_OPEN_CACHES = 8
_held = 0  # the most the open files' caches can hold together, in bytes
_WHOLE_BLOCKS = 4  # a file no larger than this many blocks is one block


def register_tar_members(shard: str, members: dict[str, tuple[int, int]]) -> None:
    """Record where members of a tar shard lie (from a shard manifest), so this process need not scan the
    shard's tar headers to find them.

    Args:
        shard: the tar file's path or URL.
        members: member name -> (data offset, size) in bytes.
    """
    with _lock:
        _tar_members.setdefault(shard, {}).update(members)


def _resolve(url: str) -> _Target:
    with _lock:
        hit = _targets.get(url)
        if hit is not None:
            _targets.move_to_end(url)
            return hit
    parts = tar_member(url)
    if parts is not None:
        member, shard_url = parts
        shard = _resolve(shard_url)
        with _lock:
            known = _tar_members.get(shard_url, {}).get(member)
        if known is None:
            known = _scan_tar(shard).get(member)
        if known is None:
            raise StoreError(url, f"the tar shard has no member {member!r}")
        offset, size = known
        if offset + size > shard.size:
            raise StoreError(url, f"member runs past the end of the shard ({shard.size} bytes)")
        target = _Target(url, shard.fs, shard.fs_path, shard.offset + offset, size, f"{shard.tag}:{offset}")
    else:
        fs, fs_path = filesystem(url)
        info = call_with_retries(lambda: fs.info(fs_path), url=url, what="stat")
        if info.get("type") == "directory":
            raise StoreError(url, "is a directory, not a file")
        if info.get("size") is None:
            raise StoreError(url, "the store reports no size for it; range reads need one")
        tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        target = _Target(url, fs, fs_path, 0, int(info["size"]), str(tag))
    with _lock:
        _targets[url] = target
        while len(_targets) > _MAX_TARGETS:
            _targets.popitem(last=False)
    return target


def _scan_tar(shard: _Target) -> dict[str, tuple[int, int]]:
    """Offsets of every regular member, read from the tar headers with small range reads."""
    src = _Source(shard, block=64 * 1024, max_blocks=4)
    members: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(fileobj=RangeFile(src), mode="r:") as tar:
            for ti in tar:
                if ti.isfile():
                    members[ti.name] = (ti.offset_data, ti.size)
    except tarfile.TarError as exc:
        raise StoreError(shard.url, f"not an uncompressed tar shard ({exc})") from exc
    with _lock:
        _tar_members.setdefault(shard.url, {}).update(members)
    return members


def open_source(path: str, *, gop_bytes: int | None = None, cached: bool = True) -> str | RangeFile:
    """What to hand ``av.open``: the path itself when local, else a RangeFile on the remote file.

    Args:
        path: a local path or an fsspec URL (``tar://member::shard`` for a tar member).
        gop_bytes: the file's average bytes per GOP, which sizes its range reads (``StoreConfig``).
        cached: share the file's block cache with later opens in this process (decode); False for a
            one-off sequential read (probing), which would only push useful blocks out.

    Raises:
        StoreError: the object is missing, denied, or failing past the retries.
        StoreUnavailableError: the store cannot be reached.
        ConfigError: the URL's protocol needs a package that is not installed.
    """
    if not is_remote(path):
        return path
    cfg = store_config()
    if not cached:
        return RangeFile(_Source(_resolve(path), block=cfg.block_for(gop_bytes) * 4, max_blocks=2))
    with _lock:
        src = _sources.get(path)
        if src is not None:
            _sources.move_to_end(path)
    if src is None:
        target = _resolve(path)
        block = cfg.block_for(gop_bytes)
        if cfg.block_size is None and target.size <= _WHOLE_BLOCKS * block:
            # A file of a few blocks is read whole by its first read: one request instead of several.
            block = max(target.size, 1)
        src = _Source(target, block=block, max_blocks=max(4, cfg.cache_bytes // block))
        with _lock:
            _keep_open(path, src, cfg)
    return RangeFile(src)


def _keep_open(path: str, src: _Source, cfg: StoreConfig) -> None:
    """Add ``src`` to the table of open files, dropping the least recently used ones past its size (a count
    with ``open_files``; by default, what their caches can hold). Called with ``_lock`` held."""
    global _held
    earlier = _sources.pop(path, None)  # another thread opened the same file meanwhile
    _held += src.most_bytes - (earlier.most_bytes if earlier is not None else 0)
    _sources[path] = src
    while len(_sources) > 1 and (
        len(_sources) > cfg.open_files
        if cfg.open_files is not None
        else _held > _OPEN_CACHES * cfg.cache_bytes or len(_sources) > _MAX_TARGETS
    ):
        # Dropped, not closed: a container still reading it keeps it alive until it is done.
        _held -= _sources.popitem(last=False)[1].most_bytes


def clear_store_cache() -> None:
    """Forget this process's open remote files, their cached blocks, sizes and tar offsets (the next read
    of each starts cold: benchmarks, or objects replaced in place), and which stores it found unreachable."""
    global _held
    with _lock:
        _sources.clear()
        _held = 0
        _targets.clear()
        _tar_members.clear()
    reset_store_health()


def source_size(path: str) -> int:
    """Size in bytes of a file that can be probed.

    Args:
        path: a local path or URL.

    Returns:
        The size (> 0).

    Raises:
        ProbeError: missing, a directory, empty, denied or failing (with the store's reason).
        StoreUnavailableError: the store cannot be reached.
    """
    if not is_remote(path):
        if not os.path.exists(path):
            raise ProbeError(path, "file does not exist")
        if os.path.isdir(path):
            raise ProbeError(path, "is a directory, not a video file")
        size = os.path.getsize(path)
    else:
        try:
            size = _resolve(path).size
        except StoreError as exc:
            raise ProbeError(path, exc.reason) from exc
    if size == 0:
        raise ProbeError(path, "file is empty (0 bytes)")
    return size


def source_key(path: str) -> list | None:
    """What identifies a file's current content for the probe cache: [location, size, mtime or ETag]; None
    when it cannot be read (the probe then reports why)."""
    if not is_remote(path):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return [os.path.abspath(path), st.st_size, st.st_mtime_ns]
    try:
        t = _resolve(path)
    except StoreError:
        return None
    # Redacted: a re-signed URL of the same object is the same entry, and no signature lands on disk.
    return [redact(path), t.size, t.tag]


def read_bytes(path: str) -> bytes:
    """The whole file (a manifest, or a video being packed into a shard), local or remote.

    Args:
        path: a local path or URL.

    Returns:
        Its bytes.

    Raises:
        StoreError: a remote file is missing, denied or failing after retries.
        StoreUnavailableError: the store cannot be reached.
        OSError: a local file cannot be read.
    """
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    return RangeFile(_Source(_resolve(path), block=8 << 20, max_blocks=1)).readall()
