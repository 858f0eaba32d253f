"""Clips of one video decoded in one pass (multiview, sliding, several clips per video): when it pays, and
that it changes no frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vidloader as vl
from vidloader.backends import PyAVBackend, shared_decode_groups
from vidloader.dataset import textured_frames, write_video


@pytest.fixture(scope="module")
def gop25(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoInfo:
    root = tmp_path_factory.mktemp("shared")
    path = write_video(root / "gop25.mp4", textured_frames(100, 36, 52), gop=25, bframes=2)
    info = vl.probe_video(path)
    assert [info.frame_pts.index(k) for k in info.keyframe_pts] == [0, 25, 50, 75]
    return info


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("shared_long")
    return [
        write_video(root / f"v{i}.mp4", textured_frames(90, 36, 52, seed=i), gop=90, bframes=2)
        for i in range(3)
    ]


@pytest.mark.parametrize(
    ("clips", "groups"),
    [
        ([[0, 2, 4], [10, 12]], [[0, 1]]),  # both start from keyframe 0
        ([[30, 32], [0, 2]], [[1], [0]]),  # keyframe 25 lies past the first clip's end: seek instead
        ([[20, 22, 24], [24, 26]], [[0, 1]]),  # overlapping
        ([[20, 22], [26, 28], [27, 40], [80, 81]], [[0], [1, 2], [3]]),
        ([[5]], [[0]]),
    ],
)
def test_groups_follow_keyframes(
    gop25: vl.VideoInfo, clips: list[list[int]], groups: list[list[int]]
) -> None:
    assert shared_decode_groups(gop25, clips) == groups


def test_decode_clips_equals_decode_clip(gop25: vl.VideoInfo) -> None:
    clips = [[3, 5, 7, 7], [30, 28, 26], [6, 8]]  # repeats, reversed order, overlap
    backend = PyAVBackend()
    outs = [np.zeros((len(c), 36, 52, 3), np.uint8) for c in clips]
    shared = backend.decode_clips(gop25, clips, outs=outs)
    for c, got, out in zip(clips, shared, outs, strict=True):
        want = backend.decode_clip(gop25, c)
        assert got.frames is out and np.array_equal(out, want.frames)
        assert got.pts == want.pts and got.timestamps == want.timestamps


@pytest.mark.parametrize(
    ("num_workers", "worker_type"),
    [(0, "thread"), (2, "thread"), pytest.param(2, "process", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("sampling", ["multiview", "sliding"])
def test_loader_frames_unchanged(
    long_gop: list[Path], num_workers: int, worker_type: str, sampling: str
) -> None:
    ds = vl.VideoDataset.from_paths(long_gop)
    loader = vl.VideoLoader(
        ds,
        batch_size=4,
        frames_per_clip=5,
        frame_stride=3,
        sampling=sampling,
        clips_per_video=4 if sampling != "sliding" else 1,  # sliding gives every window (more is refused)
        shuffle=False,
        num_workers=num_workers,
        worker_type=worker_type,
        output_layout="NTHWC",
    )
    seen = 0
    for batch in loader:
        for r in range(len(batch)):
            info = ds[int(batch.video_index[r])]
            want = PyAVBackend().decode_clip(info, batch.frame_index[r].tolist())
            assert np.array_equal(batch.video[r].numpy(), want.frames)
            seen += 1
    assert seen == len(loader.clip_plan(0))
    # GOP 90 on 90-frame files: every clip of a video starts from the one keyframe, so all share.
    assert loader.stats["shared_decode_clips"] == seen


def test_random_clips_of_different_videos_do_not_share(long_gop: list[Path]) -> None:
    ds = vl.VideoDataset.from_paths(long_gop)
    loader = vl.VideoLoader(ds, batch_size=3, frames_per_clip=4, num_workers=0)
    assert len(list(loader)) == 1 and loader.stats["shared_decode_clips"] == 0


def test_shared_decode_off_gives_the_same_batches(long_gop: list[Path]) -> None:
    ds = vl.VideoDataset.from_paths(long_gop)
    kw = dict(batch_size=4, frames_per_clip=5, sampling="multiview", clips_per_video=4, shuffle=False)
    on = vl.VideoLoader(ds, num_workers=2, **kw)
    off = vl.VideoLoader(ds, num_workers=2, shared_decode=False, **kw)
    for a, b in zip(on, off, strict=True):
        assert torch.equal(a.video, b.video) and torch.equal(a.frame_index, b.frame_index)
    assert on.stats["shared_decode_clips"] == 12 and off.stats["shared_decode_clips"] == 0
    with pytest.raises(vl.ConfigError, match="shared_decode"):
        vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, shared_decode="yes")  # type: ignore[arg-type]
