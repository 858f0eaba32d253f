"""Clip sampling as pure functions: property tests over random dataset lengths and configs (indices in the
segment, stride, padding, determinism, sharding), and exact checks of uniform / sliding / target-fps
placement, including "last frame with pts <= t" on a variable-frame-rate file."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vidloader as vl
from media import (
    MediaLibrary,
    media_fixture,  # noqa: F401  (fixture `media`)
    probe_cache_env,  # noqa: F401  (autouse fixture)
)
from vidloader.sampling import SamplingConfig, clip_seed, plan_epoch, shard_videos, video_clips

MODES = ("random", "uniform", "sliding")
TB = 12800  # 25 fps in a 1/12800 time base: 512 ticks per frame


def fake_info(
    n: int, *, index: int = 0, segment: tuple[float | None, float | None] | None = None
) -> vl.VideoInfo:
    info = vl.VideoInfo(
        path=f"/videos/{index}.mp4",
        label=index % 3,
        num_frames=n,
        fps=25.0,
        duration=n / 25,
        width=64,
        height=48,
        codec="h264",
        pix_fmt="yuv420p",
        rotation=0,
        has_audio=False,
        time_base_num=1,
        time_base_den=TB,
        frame_pts=tuple(range(0, 512 * n, 512)),
        keyframe_pts=(0,),
    )
    if segment is not None:
        info = info.with_segment(label=info.label, start=segment[0], end=segment[1])
    return info


def span(cfg: SamplingConfig) -> int:
    return (cfg.frames_per_clip - 1) * cfg.frame_stride + 1


@st.composite
def datasets(draw: st.DrawFn, max_videos: int = 10) -> list[vl.VideoInfo]:
    lengths = draw(st.lists(st.integers(1, 150), min_size=1, max_size=max_videos))
    videos = []
    for i, n in enumerate(lengths):
        segment = None
        if n > 10 and draw(st.booleans()):
            # A manifest segment [start, end) in seconds, on the 25 fps grid or between frames.
            a = draw(st.integers(0, n - 5))
            b = draw(st.integers(a + 2, n))
            segment = (a / 25 + draw(st.sampled_from([0, 0.013])), b / 25)
        videos.append(fake_info(n, index=i, segment=segment))
    return videos


configs = st.builds(
    SamplingConfig,
    frames_per_clip=st.integers(1, 12),
    frame_stride=st.integers(1, 4),
    clip_step=st.none() | st.integers(1, 20),
    sampling=st.sampled_from(MODES),
    clips_per_video=st.integers(1, 4),
    shuffle=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(videos=datasets(), cfg=configs, seed=st.integers(0, 2**32), epoch=st.integers(0, 50))
def test_clips_stay_in_segment_with_stride_and_padding(
    videos: list[vl.VideoInfo], cfg: SamplingConfig, seed: int, epoch: int
) -> None:
    plan = plan_epoch(videos, cfg, seed=seed, epoch=epoch)
    per_video: dict[int, list[vl.ClipSpec]] = {}
    for clip in plan:
        per_video.setdefault(clip.video_index, []).append(clip)
        info = videos[clip.video_index]
        lo, hi = info.first_frame, info.first_frame + info.num_frames - 1
        idx = clip.frame_indices
        assert len(idx) == cfg.frames_per_clip
        assert all(lo <= i <= hi for i in idx), (idx, lo, hi)
        if info.num_frames >= span(cfg):
            # The clip fits: exactly `stride` apart, no padding.
            assert all(b - a == cfg.frame_stride for a, b in itertools.pairwise(idx))
        else:
            # Shorter than a clip: starts at the first frame, strides, then repeats the last frame.
            assert idx[0] == lo and idx[-1] == hi
            for a, b in itertools.pairwise(idx):
                assert b - a == cfg.frame_stride or b == hi
            first_pad = idx.index(hi)
            assert all(i == hi for i in idx[first_pad:])
    # Every video yields its clips: k per video, or every sliding window.
    assert set(per_video) == set(range(len(videos)))
    for v, clips in per_video.items():
        room = max(videos[v].num_frames - span(cfg), 0)
        expected = room // cfg.step + 1 if cfg.sampling == "sliding" else cfg.clips_per_video
        assert sorted(c.clip_index for c in clips) == list(range(expected))


@settings(max_examples=60, deadline=None)
@given(videos=datasets(), cfg=configs, seed=st.integers(0, 2**32), epoch=st.integers(0, 50))
def test_plans_are_deterministic(
    videos: list[vl.VideoInfo], cfg: SamplingConfig, seed: int, epoch: int
) -> None:
    a = plan_epoch(videos, cfg, seed=seed, epoch=epoch)
    b = plan_epoch(list(videos), cfg, seed=seed, epoch=epoch)
    assert a == b
    for clip in a[:3]:
        # Per-clip seeds for transforms depend on (seed, epoch, video, clip) only.
        s = clip_seed(seed, epoch, clip.video_index, clip.clip_index)
        assert s == clip_seed(seed, epoch, clip.video_index, clip.clip_index) and 0 <= s < 2**63


def test_random_plans_change_with_epoch_and_seed() -> None:
    videos = [fake_info(100, index=i) for i in range(12)]
    cfg = SamplingConfig(frames_per_clip=8, frame_stride=2, sampling="random", clips_per_video=2)
    e0 = plan_epoch(videos, cfg, seed=1, epoch=0)
    assert e0 != plan_epoch(videos, cfg, seed=1, epoch=1)
    assert e0 != plan_epoch(videos, cfg, seed=2, epoch=0)
    starts = lambda plan: sorted((c.video_index, c.frame_indices[0]) for c in plan)  # noqa: E731
    assert starts(e0) != starts(plan_epoch(videos, cfg, seed=1, epoch=1)), "new clips, not just a new order"
    # Deterministic modes keep their clips across epochs; only the order is reshuffled.
    u = SamplingConfig(frames_per_clip=8, sampling="uniform", clips_per_video=2)
    assert starts(plan_epoch(videos, u, seed=1, epoch=0)) == starts(plan_epoch(videos, u, seed=1, epoch=1))
    assert plan_epoch(videos, u, seed=1, epoch=0) != plan_epoch(videos, u, seed=1, epoch=1)


def test_unshuffled_order_is_video_then_clip_order() -> None:
    videos = [fake_info(n, index=i) for i, n in enumerate([40, 9, 77])]
    for mode in MODES:
        cfg = SamplingConfig(frames_per_clip=4, sampling=mode, clips_per_video=3, shuffle=False)
        plan = plan_epoch(videos, cfg, seed=0, epoch=3)
        keys = [(c.video_index, c.clip_index) for c in plan]
        assert keys == sorted(keys), mode


@settings(max_examples=100, deadline=None)
@given(
    videos=datasets(max_videos=13),
    cfg=configs,
    world_size=st.integers(1, 5),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 20),
)
def test_ranks_equal_length_cover_all_and_overlap_only_by_wrap_round(
    videos: list[vl.VideoInfo], cfg: SamplingConfig, world_size: int, seed: int, epoch: int
) -> None:
    n = len(videos)
    plans = [
        plan_epoch(videos, cfg, seed=seed, epoch=epoch, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    assert len({len(p) for p in plans}) == 1, [len(p) for p in plans]
    rank_videos = [{c.video_index for c in p} for p in plans]
    assert set().union(*rank_videos) == set(range(n))
    wrapped = math.ceil(n / world_size) * world_size - n
    assert sum(len(s) for s in rank_videos) - n <= wrapped
    shards = [
        shard_videos(n, seed=seed, epoch=epoch, rank=r, world_size=world_size, shuffle=cfg.shuffle)
        for r in range(world_size)
    ]
    flat = [v for s in shards for v in s]
    assert len(flat) == n + wrapped and set(flat) == set(range(n))
    if cfg.sampling != "sliding":
        assert all(len(p) == len(s) * cfg.clips_per_video for p, s in zip(plans, shards, strict=True))


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 200), fpc=st.integers(1, 10), stride=st.integers(1, 4), k=st.integers(1, 6))
def test_uniform_spacing(n: int, fpc: int, stride: int, k: int) -> None:
    info = fake_info(n)
    for mode in ("uniform",):
        cfg = SamplingConfig(frames_per_clip=fpc, frame_stride=stride, sampling=mode, clips_per_video=k)
        starts = [c.frame_indices[0] for c in video_clips(info, 0, cfg, seed=0, epoch=0)]
        room = max(n - span(cfg), 0)
        if k == 1:
            assert starts == [round(room / 2)]  # the single clip sits at the centre
        else:
            assert starts[0] == 0 and starts[-1] == room  # first clip at the start, last one at the end
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            assert all(abs(g - room / (k - 1)) <= 1 for g in gaps)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 200),
    fpc=st.integers(1, 10),
    stride=st.integers(1, 4),
    clip_step=st.none() | st.integers(1, 30),
)
def test_sliding_windows(n: int, fpc: int, stride: int, clip_step: int | None) -> None:
    cfg = SamplingConfig(frames_per_clip=fpc, frame_stride=stride, sampling="sliding", clip_step=clip_step)
    clips = video_clips(fake_info(n), 0, cfg, seed=0, epoch=0)
    step = clip_step if clip_step is not None else fpc * stride
    room = max(n - span(cfg), 0)
    assert [c.frame_indices[0] for c in clips] == list(range(0, room + 1, step))
    if clip_step is None and n >= span(cfg):
        # Default step is one clip: windows tile the video without overlap.
        assert len({i for c in clips for i in c.frame_indices}) == len(clips) * fpc


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(12, 200),
    a=st.floats(0, 0.4),
    b=st.floats(0.6, 1.0),
    cfg=configs,
    target_fps=st.none() | st.sampled_from([3.0, 7.5, 25.0, 29.97, 60.0]),
    seed=st.integers(0, 100),
)
def test_segments_keep_clips_inside(
    n: int, a: float, b: float, cfg: SamplingConfig, target_fps: float | None, seed: int
) -> None:
    duration = n / 25
    info = fake_info(n, segment=(a * duration, b * duration))
    if target_fps is not None:
        cfg = SamplingConfig(
            frames_per_clip=cfg.frames_per_clip,
            target_fps=target_fps,
            sampling=cfg.sampling,
            clips_per_video=cfg.clips_per_video,
        )
    lo, hi = info.first_frame, info.first_frame + info.num_frames - 1
    assert Fraction(info.frame_pts[lo], TB) >= Fraction(a * duration)
    assert Fraction(info.frame_pts[hi], TB) < Fraction(b * duration)
    for clip in plan_epoch([info], cfg, seed=seed, epoch=0):
        assert all(lo <= i <= hi for i in clip.frame_indices)


# ---- target_fps ---------------------------------------------------------------------------------------


def last_frame_at_or_before(seconds: list[Fraction], t: Fraction) -> int:
    """The oracle, by brute force."""
    return max((i for i, s in enumerate(seconds) if s <= t), default=0)


def test_target_fps_on_vfr_picks_last_frame_with_pts_at_or_before_t(media: MediaLibrary) -> None:
    info = vl.probe_video(media.path("vfr"))
    seconds = [p * info.time_base for p in info.frame_pts]
    for fps in (10.0, 12.5, 30.0):
        period = 1 / Fraction(fps)
        cfg = SamplingConfig(frames_per_clip=8, target_fps=fps, sampling="sliding", clip_step=3)
        clips = video_clips(info, 0, cfg, seed=0, epoch=0)
        assert len(clips) > 3
        for w, clip in enumerate(clips):
            t0 = seconds[0] + w * 3 * period
            expected = [last_frame_at_or_before(seconds, t0 + k * period) for k in range(8)]
            assert list(clip.frame_indices) == expected, (fps, w)
        cfg = SamplingConfig(frames_per_clip=8, target_fps=fps, sampling="uniform", clips_per_video=3)
        clips = video_clips(info, 0, cfg, seed=0, epoch=0)
        room = seconds[-1] - seconds[0] - 7 * period
        for c, clip in enumerate(clips):
            t0 = seconds[0] + room * c / 2
            expected = [last_frame_at_or_before(seconds, t0 + k * period) for k in range(8)]
            assert list(clip.frame_indices) == expected, (fps, c)
        assert clips[-1].frame_indices[-1] == info.num_frames - 1
        cfg = SamplingConfig(frames_per_clip=8, target_fps=fps, sampling="random", clips_per_video=4)
        for clip in plan_epoch([info], cfg, seed=5, epoch=2):
            idx = clip.frame_indices
            assert list(idx) == sorted(idx)
            # Consecutive picked frames are at most one period (plus one frame gap) apart in time.
            for i, j in itertools.pairwise(idx):
                assert seconds[j] - seconds[i] <= period + Fraction(60, 1000)


def test_target_fps_hits_frames_exactly_on_the_grid() -> None:
    # 25 fps sampled at 5 fps is every 5th frame; float time arithmetic used to land just before frames at
    # 0.6 s, 1.4 s, ... and pick the previous frame (0, 5, 10, 14, ...).
    info = fake_info(100)
    cfg = SamplingConfig(frames_per_clip=10, target_fps=5.0, sampling="sliding")
    assert [c.frame_indices for c in video_clips(info, 0, cfg, seed=0, epoch=0)] == [
        tuple(range(0, 50, 5)),
        tuple(range(50, 100, 5)),
    ]
    cfg = SamplingConfig(frames_per_clip=6, target_fps=50.0, sampling="sliding")
    assert video_clips(info, 0, cfg, seed=0, epoch=0)[0].frame_indices == (0, 0, 1, 1, 2, 2)
    cfg = SamplingConfig(frames_per_clip=20, target_fps=5.0, sampling="uniform")
    (clip,) = video_clips(info, 0, cfg, seed=0, epoch=0)
    assert clip.frame_indices == tuple(range(2, 100, 5))  # centred: 99 frames span, 95 used, 2 either side


def test_target_fps_pads_short_videos_with_the_last_frame() -> None:
    info = fake_info(4)
    cfg = SamplingConfig(frames_per_clip=6, target_fps=25.0, sampling="random")
    (clip,) = plan_epoch([info], cfg, seed=0, epoch=0)
    assert clip.frame_indices == (0, 1, 2, 3, 3, 3)


def test_manifest_segment_clips_stay_inside(media: MediaLibrary, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"path,label,start_sec,end_sec\n{media.path('h264')},a,1.0,2.0\n{media.path('vfr')},b,0.7,1.9\n"
    )
    ds = vl.VideoDataset.from_manifest(manifest, progress=False)
    for mode in MODES:
        for kw in (dict(frame_stride=2), dict(target_fps=10.0)):
            cfg = SamplingConfig(frames_per_clip=8, sampling=mode, clips_per_video=3, **kw)  # type: ignore[arg-type]
            for clip in plan_epoch(list(ds), cfg, seed=0, epoch=1):
                info = ds[clip.video_index]
                for i in clip.frame_indices:
                    t = info.frame_pts[i] * info.time_base
                    assert Fraction(info.start) <= t < Fraction(info.end), (mode, kw, i)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(frames_per_clip=0), "frames_per_clip must be >= 1, got 0"),
        (dict(frames_per_clip=4, frame_stride=0), "frame_stride must be >= 1"),
        (
            dict(frames_per_clip=4, sampling="dense"),
            "sampling='dense' is not allowed; choose one of 'random'",
        ),
        (dict(frames_per_clip=4, frame_stride=2, target_fps=5.0), "give either frame_stride"),
        (dict(frames_per_clip=4, target_fps=-1.0), "target_fps must be a positive number"),
        (dict(frames_per_clip=4, clips_per_video=0), "clips_per_video must be >= 1"),
        (dict(frames_per_clip=4, shuffle=1), "shuffle must be True or False"),
    ],
)
def test_config_errors_name_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(vl.ConfigError, match=match):
        SamplingConfig(**kwargs)


def test_rank_errors() -> None:
    videos = [fake_info(10)]
    cfg = SamplingConfig(frames_per_clip=2)
    with pytest.raises(vl.ConfigError, match=r"rank must be in \[0, 2\), got 2"):
        plan_epoch(videos, cfg, seed=0, epoch=0, rank=2, world_size=2)
    with pytest.raises(vl.ConfigError, match="seed must be a non-negative int"):
        plan_epoch(videos, cfg, seed=-1, epoch=0)


# ---- one name per plan; clips_per_video as a maximum without replacement ------------------------------


def test_multiview_is_a_deprecated_name_for_uniform() -> None:
    with pytest.warns(DeprecationWarning, match='"multiview" is the same plan as sampling="uniform"'):
        old = SamplingConfig(frames_per_clip=4, sampling="multiview", clips_per_video=3)
    new = SamplingConfig(frames_per_clip=4, sampling="uniform", clips_per_video=3)
    assert old == new and old.sampling == "uniform" and old.to_json() == new.to_json()
    videos = [fake_info(n, index=i) for i, n in enumerate([40, 9, 77])]
    assert plan_epoch(videos, old, seed=3, epoch=1) == plan_epoch(videos, new, seed=3, epoch=1)


def windows(n: int, cfg: SamplingConfig) -> list[int]:
    """Window starts of a video of n frames (torchvision's VideoClips grid with step_between_clips=step)."""
    return list(range(0, max(n - span(cfg), 0) + 1, cfg.step))


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 120), min_size=1, max_size=8),
    fpc=st.integers(1, 10),
    stride=st.integers(1, 3),
    clip_step=st.none() | st.integers(1, 12),
    k=st.integers(1, 6),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 5),
)
def test_without_replacement_takes_at_most_k_distinct_windows(
    lengths: list[int], fpc: int, stride: int, clip_step: int | None, k: int, seed: int, epoch: int
) -> None:
    videos = [fake_info(n, index=i) for i, n in enumerate(lengths)]
    cfg = SamplingConfig(
        frames_per_clip=fpc,
        frame_stride=stride,
        clip_step=clip_step,
        sampling="random",
        clips_per_video=k,
        clips_per_video_mode="without_replacement",
    )
    plan = plan_epoch(videos, cfg, seed=seed, epoch=epoch)
    assert len(plan) == sum(min(k, len(windows(n, cfg))) for n in lengths)
    for v, n in enumerate(lengths):
        starts = [c.frame_indices[0] for c in plan if c.video_index == v]
        assert len(starts) == len(set(starts)) == min(k, len(windows(n, cfg)))  # distinct: no replacement
        assert set(starts) <= set(windows(n, cfg))  # on the window grid
        assert sorted(c.clip_index for c in plan if c.video_index == v) == list(range(len(starts)))
    assert plan == plan_epoch(videos, cfg, seed=seed, epoch=epoch)


def test_without_replacement_draws_new_windows_each_epoch_and_covers_all_when_k_is_large() -> None:
    videos = [fake_info(200, index=i) for i in range(4)]
    kw = dict(frames_per_clip=8, clip_step=4, sampling="random", clips_per_video_mode="without_replacement")
    cfg = SamplingConfig(clips_per_video=3, **kw)  # type: ignore[arg-type]
    starts = lambda plan: sorted((c.video_index, c.frame_indices[0]) for c in plan)  # noqa: E731
    assert starts(plan_epoch(videos, cfg, seed=0, epoch=0)) != starts(
        plan_epoch(videos, cfg, seed=0, epoch=1)
    )
    every = SamplingConfig(clips_per_video=1000, **kw)  # type: ignore[arg-type]
    sliding = SamplingConfig(frames_per_clip=8, clip_step=4, sampling="sliding")
    assert starts(plan_epoch(videos, every, seed=0, epoch=0)) == starts(
        plan_epoch(videos, sliding, seed=0, epoch=0)
    )


@pytest.mark.parametrize("world_size", [2, 3])
def test_without_replacement_ranks_get_equal_lengths(world_size: int) -> None:
    videos = [fake_info(n, index=i) for i, n in enumerate([10, 90, 33, 7, 64])]
    cfg = SamplingConfig(
        frames_per_clip=8, sampling="random", clips_per_video=4, clips_per_video_mode="without_replacement"
    )
    plans = [
        plan_epoch(videos, cfg, seed=1, epoch=0, rank=r, world_size=world_size) for r in range(world_size)
    ]
    assert len({len(p) for p in plans}) == 1
    assert {c.video_index for p in plans for c in p} == set(range(len(videos)))


def test_without_replacement_needs_random_sampling() -> None:
    with pytest.raises(
        vl.ConfigError, match="clips_per_video_mode='without_replacement' needs sampling='random'"
    ):
        SamplingConfig(frames_per_clip=4, sampling="uniform", clips_per_video_mode="without_replacement")
    with pytest.raises(
        vl.ConfigError, match="clips_per_video_mode='some' is not allowed; choose one of 'exact'"
    ):
        SamplingConfig(frames_per_clip=4, clips_per_video_mode="some")  # type: ignore[arg-type]
    # The default is left out of the resume fingerprint, so states saved before the option existed still load.
    assert "clips_per_video_mode" not in SamplingConfig(frames_per_clip=4).to_json()
