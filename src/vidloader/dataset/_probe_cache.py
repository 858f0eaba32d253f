"""Probe cache: VideoInfo records keyed by (absolute path or URL, size, mtime or ETag, stream choice) in one
SQLite file.

The cache lives outside the data folder (default ~/.cache/vidloader, or $VIDLOADER_CACHE_DIR) so read-only
datasets index once; a changed file (size or mtime) is simply a miss.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from ._files import source_key
from ._info import VideoInfo

# 3: records carry what is known of damage (entries of 2 would read a truncated file as healthy).
_SCHEMA_VERSION = 3


def default_cache_dir() -> Path:
    """Where the probe cache lives by default.

    Returns:
        ``$VIDLOADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/vidloader``, else ``~/.cache/vidloader``.
    """
    env = os.environ.get("VIDLOADER_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidloader"


class ProbeCache:
    """Thread-safe get/put of probe results; a cache that cannot be opened degrades to no cache.

    Args:
        directory: the cache folder (default: ``default_cache_dir()``).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        directory = Path(directory) if directory is not None else default_cache_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                directory / f"probe-v{_SCHEMA_VERSION}.sqlite", check_same_thread=False
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS probe (key TEXT PRIMARY KEY, info TEXT NOT NULL)")
            self._db.commit()
        except (OSError, sqlite3.Error):
            # A read-only home or a locked file must not stop indexing; it only costs speed.
            self._db = None

    @staticmethod
    def key(path: str, video_stream: int | None) -> str | None:
        found = source_key(path)
        return None if found is None else json.dumps([*found, video_stream])

    def get_many(self, keys: list[str]) -> dict[str, VideoInfo]:
        if self._db is None or not keys:
            return {}
        found: dict[str, VideoInfo] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = self._db.execute(
                    f"SELECT key, info FROM probe WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                for k, blob in rows:
                    found[k] = VideoInfo.from_json(json.loads(blob))
        return found

    def put_many(self, items: dict[str, VideoInfo]) -> None:
        if self._db is None or not items:
            return
        with self._lock:
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO probe (key, info) VALUES (?, ?)",
                    [(k, json.dumps(v.to_json())) for k, v in items.items()],
                )
                self._db.commit()
            except sqlite3.Error:
                pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
