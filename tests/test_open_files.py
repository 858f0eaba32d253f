"""The per-process table of open remote files is sized from the files: a dataset of small files is opened
once per process; files larger than the per-file cache keep the old bound of 8; ``open_files`` still fixes
a count. Remote files here live in fsspec's in-memory filesystem (no server needed)."""

from __future__ import annotations

from collections.abc import Iterator

import fsspec
import pytest

from vidloader.dataset import (
    clear_store_cache,
    configure_store,
    open_source,
    reset_store_stats,
    store_config,
    store_stats,
)


@pytest.fixture
def store() -> Iterator[list[str]]:
    fs = fsspec.filesystem("memory")
    urls = []
    for i in range(24):
        fs.pipe_file(f"/open-files/small-{i}.bin", bytes([i]) * 50_000)
        urls.append(f"memory://open-files/small-{i}.bin")
    for i in range(12):
        fs.pipe_file(f"/open-files/large-{i}.bin", bytes([i]) * 300_000)
    saved = store_config()
    clear_store_cache()
    reset_store_stats()
    yield urls
    configure_store(**{f: getattr(saved, f) for f in ("open_files", "cache_bytes", "block_size")})
    clear_store_cache()
    fs.rm("/open-files", recursive=True)


def read_all(urls: list[str], rounds: int = 3) -> None:
    for _ in range(rounds):
        for url in urls:
            f = open_source(url)
            assert not isinstance(f, str)
            f.seek(1000)
            f.read(10)


def test_small_files_stay_open_by_default(store: list[str]) -> None:
    assert store_config().open_files is None
    read_all(store)
    assert store_stats()["opens"] == 24  # each file once, not once per read


def test_open_files_still_fixes_a_count(store: list[str]) -> None:
    configure_store(open_files=8)
    read_all(store)
    assert store_stats()["opens"] == 3 * 24  # round-robin over 24 files through 8 slots: every read misses


def test_files_larger_than_their_cache_keep_eight_open(store: list[str]) -> None:
    configure_store(cache_bytes=64 * 1024, block_size=16 * 1024)  # 4 blocks: 64 KiB per file at most
    large = [u.replace("small", "large") for u in store[:12]]
    read_all(large[:8])
    assert store_stats()["opens"] == 8  # eight fit the budget of 8 x cache_bytes
    reset_store_stats()
    read_all(large, rounds=1)
    read_all(large[:4], rounds=1)
    # The ninth to twelfth pushed the first four out: reading those again opens them again.
    assert store_stats()["opens"] == 4 + 4


def test_a_small_file_is_read_whole_by_its_first_read(store: list[str]) -> None:
    f = open_source(store[0])
    assert not isinstance(f, str)
    f.seek(1000)
    assert f.read(10) == bytes([0]) * 10
    f.seek(45_000)
    assert f.read(10) == bytes([0]) * 10
    assert store_stats()["requests"] == 1 and store_stats()["bytes"] == 50_000
