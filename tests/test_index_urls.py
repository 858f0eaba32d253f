"""An index of objects named by URL is checked at open: a folder holding several of them is listed once, a
lone object asked for, a tar member checked through its shard; deleted or resized objects are left out (or
an error with ``strict``); a store that cannot be asked leaves them to be checked when read, and says so."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import vidloader as vl
from vidloader.dataset import tar_member_url, write_index


def info(url: str, size: int) -> vl.VideoInfo:
    return vl.VideoInfo(
        path=url,
        label=0,
        num_frames=10,
        fps=25.0,
        duration=0.4,
        width=64,
        height=48,
        codec="h264",
        pix_fmt="yuv420p",
        rotation=0,
        has_audio=False,
        size_bytes=size,
    )


class DeniedFileSystem(MemoryFileSystem):
    """A store that refuses every request (``denied://``)."""

    protocol = "denied"

    def info(self, path, **kwargs):
        raise PermissionError(f"access denied: {path}")

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"access denied: {path}")


@pytest.fixture
def objects() -> Iterator[list[vl.VideoInfo]]:
    fs = fsspec.filesystem("memory")
    videos = []
    for i in range(6):  # one folder of six: listed once
        fs.pipe_file(f"/bucket/train/v{i}.mp4", b"x" * (100 + i))
        videos.append(info(f"memory://bucket/train/v{i}.mp4", 100 + i))
    fs.pipe_file("/bucket/other/lone.mp4", b"y" * 50)  # alone in its folder: asked for
    videos.append(info("memory://bucket/other/lone.mp4", 50))
    fs.pipe_file("/bucket/shards/s.tar", b"z" * 4096)
    videos.append(info(tar_member_url("memory://bucket/shards/s.tar", "videos/m.mp4"), 700))
    fsspec.register_implementation("denied", DeniedFileSystem, clobber=True)
    yield videos
    fs.rm("/bucket", recursive=True)


def test_deleted_and_resized_objects_are_reported_at_open(
    objects: list[vl.VideoInfo], tmp_path: Path
) -> None:
    index = write_index(objects, tmp_path / "urls.parquet")
    assert len(vl.VideoDataset.from_index(index, strict=True)) == 8
    fs = fsspec.filesystem("memory")
    fs.rm("/bucket/train/v2.mp4")
    fs.pipe_file("/bucket/train/v4.mp4", b"x" * 7)
    fs.rm("/bucket/other/lone.mp4")
    ds = vl.VideoDataset.from_index(index)
    reasons = {s.path.rsplit("/", 1)[1]: s.reason for s in ds.skipped}
    assert reasons == {
        "v2.mp4": "file no longer exists",
        "v4.mp4": "changed since indexed (size 104 -> 7 bytes)",
        "lone.mp4": "file no longer exists",
    }
    assert len(ds) == 5
    fs.rm("/bucket/shards/s.tar")
    with pytest.raises(vl.ConfigError, match=r"does not match 4 of its 8 files"):
        vl.VideoDataset.from_index(index, strict=True)
    assert len(vl.VideoDataset.from_index(index, check_files="none")) == 8


def test_a_store_that_cannot_be_asked_is_said_once_and_not_a_skip(
    objects: list[vl.VideoInfo], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    denied = [info(f"denied://bucket/d/v{i}.mp4", 10) for i in range(5)]
    index = write_index(objects + denied, tmp_path / "urls.parquet")
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        ds = vl.VideoDataset.from_index(index, strict=True)
    assert len(ds) == 13
    (warning,) = [r.getMessage() for r in caplog.records if "could not check" in r.getMessage()]
    # How many others were asked before the refusal stopped the check depends on the threads' order.
    assert re.search(r"could not check ([5-9]|1[0-3]) of the index's 13 objects at open", warning)
    assert "read denied" in warning and warning.endswith("they are checked when read")


def test_an_s3_folder_is_listed_once(tmp_path: Path) -> None:
    from stores import s3_server

    with s3_server() as server:
        fs = fsspec.filesystem("s3")
        fs.mkdir("listed")
        videos = []
        for i in range(5):
            fs.pipe_file(f"listed/train/v{i}.mp4", b"x" * (10 + i))
            videos.append(info(f"s3://listed/train/v{i}.mp4", 10 + i))
        index = write_index(videos, tmp_path / "s3.parquet")
        fs.rm("listed/train/v3.mp4")
        before = server.requests
        ds = vl.VideoDataset.from_index(index)
        assert [Path(s.path).name for s in ds.skipped] == ["v3.mp4"] and len(ds) == 4
        assert server.requests - before == 1  # one listing for the five objects


def test_an_uploaded_local_index_is_checked_by_size(tmp_path: Path) -> None:
    # Rows written from local files carry their modification times; uploaded with the files, the index
    # names objects, which have no such time: existence and size decide (no local content hash is read).
    fs = fsspec.filesystem("memory")
    videos = []
    for i in range(5):
        (tmp_path / f"v{i}.mp4").write_bytes(b"x" * (20 + i))
        fs.pipe_file(f"/up/data/v{i}.mp4", b"x" * (20 + i))
        videos.append(info(str(tmp_path / f"v{i}.mp4"), 20 + i))
    index = write_index(videos, tmp_path / "vidloader-index.parquet")
    fs.pipe_file("/up/data/vidloader-index.parquet", index.read_bytes())
    try:
        url = "memory://up/data/vidloader-index.parquet"
        assert len(vl.VideoDataset.from_index(url, strict=True, cache_dir=tmp_path / "cache")) == 5
        fs.pipe_file("/up/data/v1.mp4", b"x" * 3)
        ds = vl.VideoDataset.from_index(url, cache_dir=tmp_path / "cache")
        assert [(Path(s.path).name, s.reason) for s in ds.skipped] == [
            ("v1.mp4", "changed since indexed (size 21 -> 3 bytes)")
        ]
    finally:
        fs.rm("/up", recursive=True)
