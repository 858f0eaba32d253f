"""Benchmark peers that need FFmpeg's shared libraries: the shim made from PyAV's wheel, and peers run in
a child process (checked with our own PyAV peer, so no assertion depends on a peer's release)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import vidloader as vl
from vidloader.cli._check import reference, worst_check
from vidloader.cli._ffmpeg_shim import (
    LIBRARIES,
    bundled_ffmpeg_dir,
    ffmpeg_env,
    ffmpeg_shim_dir,
    ffmpeg_version,
    standard_names,
)
from vidloader.cli._isolated import run_isolated
from vidloader.cli._peer_run import PeerJob, run_peer
from vidloader.cli._peers import PEERS, PyAVSeek
from vidloader.dataset import textured_frames, write_video
from vidloader.sampling import ClipSpec

needs_bundled = pytest.mark.skipif(bundled_ffmpeg_dir() is None, reason="PyAV links a system FFmpeg here")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("peers")
    for i in range(2):
        write_video(root / "c" / f"v{i}.mp4", textured_frames(40, 48, 64, seed=i), gop=12)
    return vl.VideoDataset.from_folder(root)


def _job(plan: list[ClipSpec]) -> PeerJob:
    return PeerJob(
        check_clips=tuple(plan[:2]),
        plan=tuple(plan),
        batch_size=2,
        n_batches=2,
        resize=None,
        workers=2,
        threads=1,
        frames=len(plan[0].frame_indices),
        repeats=1,
        seconds=None,
        progress=False,
    )


PLAN = [
    ClipSpec(0, 0, (13, 15, 17)),
    ClipSpec(1, 0, (0, 5, 39)),
    ClipSpec(0, 1, (30, 31, 32)),
    ClipSpec(1, 1, (2, 2, 3)),
]


@needs_bundled
def test_shim_links_every_library_under_its_standard_soname(tmp_path: Path) -> None:
    libs = bundled_ffmpeg_dir()
    assert libs is not None
    names = standard_names(libs)
    assert {n.split(".so.")[0][3:] for n in names} == set(LIBRARIES)
    shim = ffmpeg_shim_dir(tmp_path)
    assert shim is not None and shim.is_relative_to(tmp_path) and ffmpeg_version() in shim.name
    for std, target in names.items():
        link = shim / std
        assert link.is_symlink() and link.resolve() == target.resolve()
        assert std.startswith("libav") or std.startswith("libsw")
    assert ffmpeg_shim_dir(tmp_path) == shim  # reused, not rebuilt
    env = ffmpeg_env(tmp_path)
    first = env["LD_LIBRARY_PATH"].split(os.pathsep)[:2]
    assert first == [str(shim), str(libs)]


def test_isolated_child_runs_a_peer_like_the_parent(dataset: vl.VideoDataset) -> None:
    job = _job(PLAN)
    got, row = run_isolated(PyAVSeek, dataset, job, timeout=300)
    assert "error" not in row and "skipped" not in row, row
    assert row["clips_per_s"] > 0 and row["peak_rss_mb"] > 0 and row["threads"] == 1
    import av

    assert row["version"] == av.__version__
    for g, c in zip(got, PLAN[:2], strict=True):
        np.testing.assert_array_equal(g, reference(dataset[c.video_index], c.frame_indices))
    here, _ = run_peer(PyAVSeek(), dataset, job)
    for a, b in zip(here, got, strict=True):
        np.testing.assert_array_equal(a, b)


class _Missing:
    """A factory the child cannot import: the row says so, nothing raises."""

    __module__ = "vidloader.cli._peers"
    __qualname__ = "NoSuchPeer"


def test_isolated_failures_are_rows(dataset: vl.VideoDataset) -> None:
    got, row = run_isolated(_Missing, dataset, _job(PLAN), timeout=300)
    assert got == [] and "AttributeError" in row["error"] and "NoSuchPeer" in row["error"]
    got, row = run_isolated(PyAVSeek, dataset, _job(PLAN), timeout=0.01)
    assert got == [] and "ran past" in row["error"]


@pytest.mark.parametrize("name", ["torchcodec", "torchcodec-approx", "spdl"])
def test_ffmpeg_peers_are_isolated_and_exact_when_they_run(dataset: vl.VideoDataset, name: str) -> None:
    factory = PEERS[name]
    assert getattr(factory, "isolated", False)
    got, row = run_isolated(factory, dataset, _job(PLAN), timeout=300)
    if "skipped" in row or "error" in row:  # their release's business; the reason must be given
        assert row.get("skipped") or row.get("error")
        return
    assert row["version"] and row["threads"] == 1
    refs = [reference(dataset[c.video_index], c.frame_indices) for c in PLAN[:2]]
    assert worst_check(got, refs)["check"] in ("exact", "close")


def test_bench_checks_mixed_resolution_folders_clip_by_clip(tmp_path: Path) -> None:
    """Full-size check clips of files with different sizes make no single batch: checked one by one, and
    the timed runs all deliver the fixed --resize."""
    import json

    from vidloader.cli import main

    for i, (h, w) in enumerate([(48, 64), (40, 40), (64, 36)]):
        write_video(tmp_path / "d" / "c" / f"v{i}.mp4", textured_frames(30, h, w, seed=i), gop=15)
    out = tmp_path / "r.json"
    rc = main(
        ["bench", "--data", str(tmp_path / "d"), "--backends", "vidloader-pyav,pyav-seek", "--resize",
         "24x32", "--clips", "8", "--batch-size", "4", "--frames", "4", "--repeats", "1", "--json", str(out)]
    )  # fmt: skip
    assert rc == 0
    rows = json.loads(out.read_text())["backends"]
    for name in ("vidloader-pyav", "pyav-seek"):
        assert rows[name]["check"] == "exact" and rows[name]["clips_per_s"] > 0, rows[name]
