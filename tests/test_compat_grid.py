"""The port's clips are torchvision's, clip for clip: its grid (frame rates as torchcodec reports them, frames
kept at ``frame_rate`` with torchvision's float32 rounding, windows), ``UniformClipSampler``'s choice over
dataset-wide window numbers, and ``DistributedSampler``'s lengths and padding. Expected values come from
torchvision 0.26's own code (``VideoClips.compute_clips_for_video``, a ``VideoClips`` built from known frame
counts and rates, its samplers), which needs no decoder."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import samplers as tv
from torchvision.datasets.video_utils import VideoClips as TvVideoClips

import vidloader as vl
from vidloader.compat._grid import ClipGrid, torchcodec_fps, torchcodec_fps_of
from vidloader.compat.torchvision import (
    DataLoader,
    DistributedSampler,
    Kinetics,
    RandomClipSampler,
    UniformClipSampler,
)
from vidloader.dataset import textured_frames, write_video

# Each video's frames and the rate PyAV writes it at, and the average_fps torchcodec 0.11 reports for that
# file (measured once; torchvision 0.26 takes its rate from there). c2/v2 is too short for a clip at 15 fps.
TREE = {
    "c0/v0.mp4": (65, 30, 30.000000000000004),
    "c0/v1.mp4": (55, 25, 24.999999999999996),
    "c1/v0.mp4": (45, Fraction(30000, 1001), 29.97002997002997),
    "c1/v1.mkv": (50, 30, 30.01200480192077),
    "c2/v0.mp4": (60, 30, 30.0),
    "c2/v1.mp4": (37, 25, 25.0),
    "c2/v2.mp4": (6, 25, 25.0),
}
CLIP, RATE, PER_VIDEO = 4, 15, 2
ROUNDED_RATES = [25.0, 30.0, 30.000000000000004, 29.999999999999996, 24.999999999999996, 30000 / 1001]


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Kinetics:
    root = tmp_path_factory.mktemp("grid")
    for i, (rel, (n, fps, _)) in enumerate(TREE.items()):
        write_video(root / "val" / rel, textured_frames(n, 32, 48, seed=i), fps=fps, gop=10)
    return Kinetics(
        root, CLIP, split="val", frame_rate=RATE, extensions=("mp4", "mkv"), cache_dir=root / ".cache"
    )


def names(port: Kinetics) -> list[str]:
    return [Path(p).relative_to(port.split_folder).as_posix() for p in port.video_clips.video_paths]


@pytest.fixture(scope="module")
def tv_clips(port: Kinetics) -> TvVideoClips:
    """torchvision's VideoClips of the same files: its own arithmetic over the frame counts and rates
    torchcodec gives it (in torchvision 0.26 a video's pts are its frame indices)."""
    meta = {
        "video_paths": port.video_clips.video_paths,
        "video_pts": [torch.arange(TREE[n][0]) for n in names(port)],
        "video_fps": [TREE[n][2] for n in names(port)],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision warns about the video without a clip
        return TvVideoClips(meta["video_paths"], CLIP, 1, RATE, _precomputed_metadata=meta)


def tv_frames(clips: TvVideoClips, indices: list[int]) -> list[tuple[int, list[int]]]:
    """(video, decoded-frame indices) of torchvision's clips ``indices``."""
    located = [clips.get_clip_location(i) for i in indices]
    return [(v, clips.clips[v][c].tolist()) for v, c in located]


def port_frames(loader: DataLoader) -> list[tuple[int, list[int]]]:
    return [(c.video_index, list(c.frame_indices)) for c in loader.clip_plan()]


def test_frame_rates_are_the_ones_torchcodec_reports(port: Kinetics) -> None:
    assert port.video_clips.video_fps == [TREE[n][2] for n in names(port)]


def test_frame_rates_read_from_an_index_s_columns_are_the_per_video_ones(
    port: Kinetics, tmp_path: Path
) -> None:
    videos = port.video_clips.videos
    indexed = vl.VideoDataset.from_index(videos.to_index(tmp_path / "i.parquet"))
    assert indexed.rows is not None  # read from the index's columns, not from VideoInfo objects
    per_video = [torchcodec_fps(v) for v in videos]
    assert per_video == [TREE[n][2] for n in names(port)]
    assert torchcodec_fps_of(indexed).tolist() == per_video
    # Videos made by hand without timestamps take their header rate, as one at a time.
    bare = vl.VideoDataset(videos=[dataclasses.replace(v, frame_pts=(), keyframe_pts=()) for v in videos])
    assert torchcodec_fps_of(bare).tolist() == [float(v.fps) for v in videos]


@pytest.mark.parametrize(
    ("fps", "frame_rate"), list(itertools.product(ROUNDED_RATES, [None, 15, 10, 8.5, 60]))
)
def test_kept_frames_and_windows_are_compute_clips_for_video(fps: float, frame_rate: float | None) -> None:
    lengths = [*range(1, 90, 7), 1001]
    for clip, step in itertools.product((1, 4, 16), (1, 3)):
        grid = ClipGrid(lengths, [fps] * len(lengths), clip, step, frame_rate)
        for v, n in enumerate(lengths):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a video without a clip
                want, _ = TvVideoClips.compute_clips_for_video(torch.arange(n), clip, step, fps, frame_rate)
            assert grid.counts[v] == len(want), (n, clip, step)
            got = grid.frames(np.full(len(want), v), np.arange(len(want)))
            assert got.tolist() == want.tolist(), (n, clip, step)


def test_uniform_choice_is_uniform_clip_samplers_at_large_window_numbers() -> None:
    # 4000 videos of ~5000 windows: window numbers reach 2e7, where float32 holds steps of 2, and
    # torchvision's floor(linspace(offset, ...)) picks other windows than a per-video linspace would.
    lengths = np.random.default_rng(1).integers(4000, 6000, 4000)
    lengths[::97] = 0  # videos without a window: skipped
    grid = ClipGrid(lengths.tolist(), [25.0] * len(lengths), 1, 1, None)
    clips = TvVideoClips.__new__(TvVideoClips)  # UniformClipSampler reads only the window counts
    clips.clips = [torch.empty(int(n), 1) for n in lengths]
    for k in (3, 10):
        numbers = grid.uniform(k)
        assert numbers.tolist() == list(tv.UniformClipSampler(clips, k))
        video, window = grid.locate(numbers)
        local = np.concatenate([np.floor(np.linspace(0, n - 1, k)) for n in lengths if n])
        assert (window != local).sum() > 1000, "the dataset-wide offsets matter at this size"
        assert (window < lengths[video]).all()


def test_val_pass_yields_torchvisions_clips(port: Kinetics, tv_clips: TvVideoClips) -> None:
    assert len(port) == tv_clips.num_clips() and [len(c) for c in tv_clips.clips][-1] == 0
    sampler = UniformClipSampler(port.video_clips, PER_VIDEO)
    want = tv_frames(tv_clips, list(tv.UniformClipSampler(tv_clips, PER_VIDEO)))
    assert len(sampler) == len(tv.UniformClipSampler(tv_clips, PER_VIDEO)) == len(want) == 12
    loader = DataLoader(port, batch_size=5, sampler=sampler, num_workers=1)
    decoded = [
        (v, f)
        for batch in loader
        for v, f in zip(batch.video_index.tolist(), batch.frame_index.tolist(), strict=True)
    ]
    assert decoded == want
    # Each video's last clip sits on the grid, not at the video's end (65 frames at 30 fps: 32 kept).
    assert want[1] == (0, [56, 58, 60, 62])


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_lengths_and_padding_are_torchvisions(
    port: Kinetics, tv_clips: TvVideoClips, world_size: int, shuffle: bool
) -> None:
    total = 0
    for rank in range(world_size):
        inner = UniformClipSampler(port.video_clips, PER_VIDEO)
        sampler = DistributedSampler(inner, num_replicas=world_size, rank=rank, shuffle=shuffle)
        ref = tv.DistributedSampler(
            tv.UniformClipSampler(tv_clips, PER_VIDEO), num_replicas=world_size, rank=rank, shuffle=shuffle
        )
        loader = DataLoader(port, batch_size=4, sampler=sampler)
        for epoch in (0, 3):
            sampler.set_epoch(epoch)
            ref.set_epoch(epoch)
            assert port_frames(loader) == tv_frames(tv_clips, list(ref))
        assert len(sampler.dataset) == len(ref.dataset) == 12
        assert len(sampler) == len(ref) == loader.num_clips == -(-12 // world_size)
        total += loader.num_clips
    assert total == world_size * -(-12 // world_size)  # 5 ranks: 15, three clips twice (not 30)


def test_random_choice_is_a_uniform_subset_of_each_video_s_windows() -> None:
    # Videos of 0, 1, 3, 5 and 9 windows, 3 picked from each: every 3-subset of 5 windows (10 of them)
    # about equally often, and each window of the 9-window video in about a third of the draws.
    grid = ClipGrid([4, 1, 3, 5, 9, 1], [25.0] * 6, 1, 1, None)  # windows: 4, 1, 3, 5, 9, 1
    grid.counts[0] = 0  # and one without a window (as torchvision drops it)
    grid.cumulative = np.cumsum(grid.counts)
    rng = np.random.default_rng(0)
    subsets: dict[tuple[int, ...], int] = {}
    hits = np.zeros(9)
    for _ in range(4000):
        numbers = grid.random(3, rng)
        video, window = grid.locate(numbers)
        assert sorted(video.tolist()) == [1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5]
        assert len(set(numbers.tolist())) == len(numbers), "distinct windows"
        mine = tuple(sorted(window[video == 3].tolist()))
        subsets[mine] = subsets.get(mine, 0) + 1
        hits[window[video == 4]] += 1
    assert len(subsets) == 10 and min(subsets.values()) > 300 and max(subsets.values()) < 500  # mean 400
    assert np.all(np.abs(hits / 4000 - 1 / 3) < 0.04)


def test_random_sampler_lengths_are_torchvisions(port: Kinetics, tv_clips: TvVideoClips) -> None:
    for k in (1, 3, 40):
        sampler = RandomClipSampler(port.video_clips, k)
        assert len(sampler) == len(tv.RandomClipSampler(tv_clips, k))
        loader = DataLoader(port, batch_size=4, sampler=sampler, seed=1)
        picked = port_frames(loader)
        assert len(picked) == len(sampler) and len(set(map(str, picked))) == len(picked), "distinct windows"
        grid = {(v, tuple(c.tolist())) for v, clips in enumerate(tv_clips.clips) for c in clips}
        assert {(v, tuple(f)) for v, f in picked} <= grid, "windows of torchvision's grid"
    ref = tv.DistributedSampler(tv.RandomClipSampler(tv_clips, 3), num_replicas=4, rank=1)
    sampler = DistributedSampler(RandomClipSampler(port.video_clips, 3), num_replicas=4, rank=1)
    assert (len(sampler), len(sampler.dataset)) == (len(ref), len(ref.dataset))


def test_without_a_sampler_every_window_in_torchvisions_order(port: Kinetics, tv_clips: TvVideoClips) -> None:
    loader = DataLoader(port, batch_size=8)
    assert port_frames(loader) == tv_frames(tv_clips, list(range(tv_clips.num_clips())))
    assert port.video_clips.get_clip_location(30) == tv_clips.get_clip_location(30)
