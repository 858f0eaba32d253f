"""File checks that survive copies: a dataset copied without its modification times opens with every file
(the content hash decides), a file changed in place at the same size is still caught, an index without
content hashes says what to do, and messages name the folder the index is read from now."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import vidloader as vl
import vidloader.dataset._file_check as file_check
from vidloader.dataset import textured_frames, write_video


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i, n in enumerate([14, 18, 23, 16]):
        write_video(
            root / ("cat" if i % 2 else "dog") / f"v{i}.mp4", textured_frames(n, 32, 48, seed=i), gop=6
        )
    ds = vl.VideoDataset.from_folder(root, progress=False, use_cache=False)
    ds.to_index(root / "vidloader-index.parquet")
    return root


def retime(folder: Path) -> None:
    """New modification times on the same bytes (an hour on, so no clock granularity can hide them)."""
    for p in folder.rglob("*.mp4"):
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))


def copy_without_times(src: Path, dst: Path) -> Path:
    """``cp -r``: the bytes, not the times."""
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    retime(dst)
    return dst


def test_a_copy_without_times_opens_whole_and_names_its_own_folder(folder: Path, tmp_path: Path) -> None:
    moved = copy_without_times(folder, tmp_path / "copy" / "data")
    shutil.rmtree(folder)
    ds = vl.VideoDataset.from_index(moved / "vidloader-index.parquet", strict=True)
    assert len(ds) == 4 and not ds.skipped
    assert ds.root == str(moved) and all(v.path.startswith(str(moved) + "/") for v in ds)


def test_a_same_size_change_with_a_new_time_is_caught(folder: Path) -> None:
    changed = folder / "cat" / "v1.mp4"
    data = bytearray(changed.read_bytes())
    data[:8] = b"\xff" * 8  # the first block differs, the size does not
    changed.write_bytes(bytes(data))
    ds = vl.VideoDataset.from_index(folder / "vidloader-index.parquet")
    assert [Path(v.path).name for v in ds] == ["v3.mp4", "v0.mp4", "v2.mp4"]
    (skipped,) = ds.skipped
    assert skipped.path == str(changed) and "same size, but its first or last 4 KiB differ" in skipped.reason
    assert len(vl.VideoDataset.from_index(folder / "vidloader-index.parquet", check_files="size")) == 4


def test_an_index_without_content_hashes_falls_back_to_the_time(folder: Path, tmp_path: Path) -> None:
    index = folder / "vidloader-index.parquet"
    table = pq.read_table(index)
    old = table.drop_columns(["content_hash"])  # as an index written before the column existed
    meta = json.loads(table.schema.metadata[b"vidloader.index"])
    meta.pop("root_relative")
    meta["root"] = str(folder)  # stored as given, absolute
    pq.write_table(old.replace_schema_metadata({b"vidloader.index": json.dumps(meta).encode()}), index)
    moved = copy_without_times(folder, tmp_path / "copy")
    with pytest.raises(
        vl.ConfigError, match=f"read under {moved} .*records no content hash.*check_files='size'"
    ):
        vl.VideoDataset.from_index(moved / "vidloader-index.parquet", strict=True)
    assert len(vl.VideoDataset.from_index(moved / "vidloader-index.parquet", check_files="size")) == 4
    shutil.rmtree(folder)  # the recorded root is gone: the dataset's folder is where the index is now
    assert vl.VideoDataset.from_index(moved / "vidloader-index.parquet", check_files="size").root == str(
        moved
    )


def test_when_every_file_is_gone_the_error_names_the_copy(folder: Path, tmp_path: Path) -> None:
    moved = tmp_path / "copy"
    moved.mkdir()
    shutil.copy(folder / "vidloader-index.parquet", moved)
    with pytest.raises(vl.ConfigError, match=f"dataset at {moved} has no usable video; 4 file"):
        vl.VideoDataset.from_index(moved / "vidloader-index.parquet")


def test_files_are_checked_once_each_on_threads(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Segments of one file: eight rows, four files.
    lines = ["path,label,start_sec,end_sec"]
    lines += [f"{p},{p.parent.name},{s},{s + 0.2}" for p in sorted(folder.rglob("*.mp4")) for s in (0.0, 0.2)]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(lines) + "\n")
    index = vl.VideoDataset.from_manifest(manifest, progress=False).to_index(tmp_path / "m.parquet")
    retime(folder)
    stat_calls: list[list[str]] = []
    real_stats = file_check._stats

    def stats(paths: list[str]) -> list[tuple[int, int]]:
        stat_calls.append(paths)
        return real_stats(paths)

    monkeypatch.setattr(file_check, "_stats", stats)
    monkeypatch.setattr(file_check, "_CHUNK", 1)  # every file its own task: the thread pool runs
    ds = vl.VideoDataset.from_index(index, strict=True)
    assert len(ds) == 8 and sorted(p for c in stat_calls for p in c) == sorted(
        map(str, folder.rglob("*.mp4"))
    )
    assert len(stat_calls) == 4
    (folder / "dog" / "v0.mp4").write_bytes(b"short now")
    ds = vl.VideoDataset.from_index(index)
    assert len(ds) == 6 and [Path(s.path).name for s in ds.skipped] == ["v0.mp4", "v0.mp4"]
    assert all(
        s.reason.startswith("changed since indexed (size") and s.reason.endswith("-> 9 bytes)")
        for s in ds.skipped
    )
