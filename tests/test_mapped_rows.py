"""A VideoInfo read from a memory-mapped index travels as (file, folder, row); the process that receives it
reads the row from its own map of the file and drops the pages it touched, so reading rows all over a large
index does not make that process's RSS grow with the index."""

from __future__ import annotations

import pickle
import random
import sys
from pathlib import Path

import pytest

import vidloader as vl
from vidloader.dataset import write_index
from vidloader.dataset._index_rows import mapped_row
from vidloader.dataset._mapped_row import _MAPPED


def vfr_info(i: int, frames: int = 300) -> vl.VideoInfo:
    return vl.VideoInfo(
        path=f"/videos/v{i}.mp4",
        label=i % 5,
        num_frames=frames,
        fps=25.0,
        duration=frames / 25,
        width=64,
        height=48,
        codec="h264",
        pix_fmt="yuv420p",
        rotation=0,
        has_audio=False,
        time_base_num=1,
        time_base_den=12800,
        frame_pts=tuple(k * 512 + (k % 2) * 7 for k in range(frames)),  # irregular: every pts stored
        keyframe_pts=(0, 512 * 50),
    )


def mapped_kb(path: str) -> int:
    """Resident kB of this process's maps of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            inside = line.endswith(path)
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_rows_read_from_another_processs_map_leave_no_pages_mapped(tmp_path: Path) -> None:
    videos = [vfr_info(i) for i in range(3000)]  # ~7 MB of pts in the Arrow copy
    ds = vl.VideoDataset.from_index(
        write_index(videos, tmp_path / "i.parquet"), check_files="none", cache_dir=tmp_path / "cache"
    )
    rows = ds.rows
    assert rows is not None and rows.source is not None
    source = rows.source
    wire = pickle.dumps(ds[7])
    assert len(wire) < 1000 and pickle.loads(wire) == videos[7]  # the reference, not 300 pts
    rng = random.Random(0)
    picked = [rng.randrange(len(ds)) for _ in range(200)]
    _MAPPED.clear()
    try:
        before = mapped_kb(source)  # this process's own map (the dataset's), untouched from here on
        # What a worker does with each task's VideoInfo: read the row from its map of the file.
        received = [mapped_row(source, rows.base_dir, i) for i in picked]
        assert received == [videos[i] for i in picked]
        assert list(_MAPPED) == [(source, rows.base_dir)]
        # 200 rows x 26 columns, each fault mapping up to 64 KiB around its page: megabytes if kept.
        assert mapped_kb(source) - before <= 64
    finally:
        _MAPPED.clear()
