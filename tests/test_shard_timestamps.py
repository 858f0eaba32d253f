"""Shard manifests store a constant-rate stream's frame timestamps as the index does (start, step, count)
and every pts only for a variable-rate stream; ``from_manifest`` rebuilds the same VideoInfo from either."""

from __future__ import annotations

import json
from dataclasses import replace

import vidloader as vl
from media import (
    MediaLibrary,
    media_fixture,  # noqa: F401  (fixture `media`)
    probe_cache_env,  # noqa: F401  (autouse fixture)
)
from vidloader.dataset import write_shards


def test_constant_rate_rows_are_three_numbers_and_read_back_exactly(media: MediaLibrary, tmp_path) -> None:
    paths = [media.path(n) for n in ("vfr", "audio", "rotated")]
    ds = vl.VideoDataset.from_paths(paths, labels=[0, 1, 2])
    report = write_shards(ds, tmp_path / "shards", shard_bytes=10**9)
    lines = (tmp_path / "shards" / "manifest.jsonl").read_text().splitlines()
    infos = [json.loads(line)["info"] for line in lines]
    assert len(infos[0]["frame_pts"]) == ds[0].num_frames and "pts_step" not in infos[0]  # VFR: every pts
    for info, v in zip(infos[1:], ds[1:], strict=True):
        assert info["frame_pts"] == [] and info["total_frames"] == len(v.frame_pts) > 2
        assert info["pts_start"] == v.frame_pts[0] and info["pts_step"] == v.frame_pts[1] - v.frame_pts[0]
    # A constant-rate row costs the same whatever its length: no number per frame.
    assert max(len(line) for line in lines[1:]) < 700 < len(lines[0])
    back = vl.VideoDataset.from_manifest(report.manifest, use_cache=False)
    assert [replace(b, path=v.path) for b, v in zip(back, ds, strict=True)] == list(ds)
