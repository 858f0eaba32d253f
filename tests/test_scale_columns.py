"""Per-video passes on a dataset's columns: short videos, clip counts, stride plans under every short-video
policy, the resume fingerprint, elastic resume and audio lengths give what the per-VideoInfo rules give, and
constructing a loader over an index builds no VideoInfo at all."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import vidloader as vl
from vidloader.dataset import write_index
from vidloader.loader import audio_samples
from vidloader.sampling import (
    SamplingConfig,
    clip_counts,
    deal,
    plan_epoch,
    remaining,
    resume_plan,
    shard_videos,
    short_mask,
    video_clips,
)


def info(
    i: int, n: int, *, vfr: bool = False, first: int = 0, tb: int = 12800, rate: int = 25, fps: float = 25.0
) -> vl.VideoInfo:
    """Video ``i``: ``first + n`` frames at ``rate`` fps in a 1/``tb`` time base, irregular gaps when ``vfr``."""
    step = tb // rate
    pts = [k * step + (k % 3) * (step // 4) * vfr for k in range(first + n)]
    return vl.VideoInfo(
        path=f"/videos/c{i % 3}/v{i}.mp4",
        label=i % 3,
        num_frames=n,
        fps=fps,
        duration=n / 25,
        width=64,
        height=48,
        codec="h264",
        pix_fmt="yuv420p",
        rotation=0,
        has_audio=bool(i % 2),
        first_frame=first,
        time_base_num=1,
        time_base_den=tb,
        frame_pts=tuple(pts),
        keyframe_pts=(0,),
    )


def videos() -> list[vl.VideoInfo]:
    """Lengths around a clip's span (8 frames at stride 2 -> 15; 8 frames at 10 fps -> 0.7 s = 17.5
    frames), constant and variable rates, segments, another time base."""
    out = [info(i, n) for i, n in enumerate([1, 14, 15, 16, 17, 18, 19, 30, 64])]
    out += [info(10, 18, vfr=True), info(11, 40, vfr=True, first=5), info(12, 20, first=7)]
    out += [info(13, 18, tb=90000), info(14, 17, tb=1000, rate=20, fps=0.0)]
    return out


@pytest.fixture
def indexed(tmp_path: Path) -> vl.VideoDataset:
    index = write_index(videos(), tmp_path / "vidloader-index.parquet", classes=["a", "b", "c"])
    return vl.VideoDataset.from_index(index, check_files="none", cache_dir=tmp_path / "cache")


def reference_short(v: vl.VideoInfo, cfg: SamplingConfig) -> bool:
    """The per-video rule, in exact rationals."""
    if cfg.target_fps is None:
        return v.num_frames < (cfg.frames_per_clip - 1) * cfg.frame_stride + 1
    span = (v.frame_pts[v.first_frame + v.num_frames - 1] - v.frame_pts[v.first_frame]) * v.time_base
    return span < (cfg.frames_per_clip - 1) / Fraction(cfg.target_fps).limit_denominator(1_000_000)


CONFIGS = [
    dict(frames_per_clip=8, frame_stride=2),
    dict(frames_per_clip=8, frame_stride=2, sampling="sliding", clip_step=3),
    dict(frames_per_clip=8, sampling="uniform", clips_per_video=3),
    dict(frames_per_clip=4, clips_per_video=5, clips_per_video_mode="without_replacement", clip_step=2),
    dict(frames_per_clip=8, target_fps=10.0),
    dict(frames_per_clip=8, target_fps=10.0, sampling="sliding", clip_step=2),
    dict(frames_per_clip=3, target_fps=7.3, sampling="sliding"),
    dict(frames_per_clip=6, target_fps=12.5, clips_per_video=4, clips_per_video_mode="without_replacement"),
    dict(frames_per_clip=5, target_fps=7.0, sampling="uniform", clips_per_video=3),
    dict(frames_per_clip=4, target_fps=30.0, clips_per_video=2),
]


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("policy", ["pad", "skip"])
def test_short_videos_and_clip_counts_match_the_per_video_rules(
    indexed: vl.VideoDataset, kw: dict, policy: str
) -> None:
    cfg = SamplingConfig(**kw, short_video=policy)  # type: ignore[arg-type]
    infos = list(indexed)
    expected_short = [reference_short(v, cfg) for v in infos]
    assert short_mask(indexed, cfg).tolist() == expected_short == short_mask(infos, cfg).tolist()
    assert any(expected_short) and not all(expected_short)
    counts = [len(video_clips(v, i, cfg, seed=0, epoch=0)) for i, v in enumerate(infos)]
    assert clip_counts(indexed, cfg).tolist() == counts == clip_counts(infos, cfg).tolist()


def test_a_target_fps_tie_is_not_short(tmp_path: Path) -> None:
    # 8 frames at 10 fps span exactly 0.7 s: a video whose first and last frames are 0.7 s apart fits.
    tie = replace(info(0, 2), frame_pts=(0, 8960))
    cfg = SamplingConfig(frames_per_clip=8, target_fps=10.0)
    ds = vl.VideoDataset.from_index(write_index([tie], tmp_path / "t.parquet"), check_files="none")
    assert short_mask(ds, cfg).tolist() == [False] == [reference_short(tie, cfg)]
    assert short_mask([tie], SamplingConfig(frames_per_clip=9, target_fps=10.0)).tolist() == [True]


@pytest.mark.parametrize("policy", ["pad", "loop", "skip"])
@pytest.mark.parametrize("kw", CONFIGS)
def test_plans_equal_each_videos_own_clips(indexed: vl.VideoDataset, policy: str, kw: dict) -> None:
    # Stride and constant-rate target-fps plans are computed on arrays, variable-rate ones per video.
    cfg = SamplingConfig(**kw, short_video=policy, shuffle=False)  # type: ignore[arg-type]
    expected = [c for i, v in enumerate(indexed) for c in video_clips(v, i, cfg, seed=3, epoch=2)]
    assert plan_epoch(indexed, cfg, seed=3, epoch=2) == expected
    assert plan_epoch(list(indexed), cfg, seed=3, epoch=2) == expected


@pytest.mark.parametrize("policy", ["pad", "loop"])
@pytest.mark.parametrize("sampling", ["random", "uniform", "sliding"])
def test_target_fps_plans_are_exact_in_odd_time_bases(policy: str, sampling: str) -> None:
    # NTSC and 90 kHz time bases, segments and rates that do not divide them: the array path's integer
    # arithmetic gives the frames Fractions give, float rounding of random starts included.
    gen = np.random.default_rng(0)
    bases = [(1001, 30000, 1), (1, 90000, 3003), (1, 12800, 517), (1, 1000, 33)]  # num, den, a frame's ticks
    many = []
    for i in range(300):
        num, den, tick = bases[i % 4]
        step, first = tick * int(gen.integers(1, 4)), int(gen.integers(0, 4))
        n = int(gen.integers(2, 90))
        pts = tuple(7 + k * step for k in range(first + n))
        many.append(replace(info(i, n, first=first), time_base_num=num, time_base_den=den, frame_pts=pts))
    for fps in (7.0, 12.5, 29.97):
        cfg = SamplingConfig(  # type: ignore[arg-type]
            frames_per_clip=5,
            target_fps=fps,
            sampling=sampling,
            clips_per_video=3,
            short_video=policy,
            shuffle=False,
        )
        expected = [c for i, v in enumerate(many) for c in video_clips(v, i, cfg, seed=11, epoch=4)]
        plan = plan_epoch(many, cfg, seed=11, epoch=4)
        assert plan == expected
        assert 0 < sum(c.padded > 0 for c in expected) < len(expected) or policy == "loop"


def test_short_video_error_names_the_video(indexed: vl.VideoDataset) -> None:
    cfg = SamplingConfig(frames_per_clip=8, frame_stride=2, short_video="error", shuffle=False)
    with pytest.raises(vl.ConfigError, match=r"/videos/c0/v0\.mp4 is shorter than one clip"):
        plan_epoch(indexed, cfg, seed=0, epoch=0)
    with pytest.raises(
        vl.ConfigError, match=r"videos are shorter than one clip of 8 frames \(/videos/c0/v0\.mp4"
    ):
        vl.VideoLoader(indexed, batch_size=2, frames_per_clip=8, frame_stride=2, short_video="error")


def test_fingerprint_is_the_digest_of_its_items(indexed: vl.VideoDataset) -> None:
    def digest(items: list[tuple[str, int, int]]) -> str:
        h = hashlib.sha256()
        for path, first, n in items:
            h.update(f"{path}\0{first}\0{n}\n".encode())
        return h.hexdigest()[:16]

    probed = vl.VideoDataset(videos=videos())
    assert indexed.fingerprint() == probed.fingerprint() == digest(probed.fingerprint_items())
    rows = indexed.rows
    assert rows is not None
    fewer = vl.VideoDataset(videos=rows.without([0, 5]))
    assert fewer.fingerprint() == digest(fewer.fingerprint_items()) != indexed.fingerprint()


def _reference_resume(plan, stages, rank, world_size):  # the list-based rule, stage by stage
    w0, consumed = stages[0]
    shares = [list(plan(r, w0)) for r in range(w0)]
    left = [s[k] for k in range(consumed, len(shares[0])) for s in shares]
    for w, consumed in stages[1:]:
        dealt = [[left[(r + k * w) % len(left)] for k in range(-(-len(left) // w))] for r in range(w)]
        left = [s[k] for k in range(consumed, len(dealt[0])) for s in dealt]
    return [left[(rank + k * world_size) % len(left)] for k in range(-(-len(left) // world_size))]


@pytest.mark.parametrize("stages", [[(4, 3)], [(2, 1), (4, 2)], [(4, 3), (3, 5), (5, 1)], [(3, 0)]])
def test_elastic_resume_on_arrays_equals_the_list_rule(indexed: vl.VideoDataset, stages: list) -> None:
    cfg = SamplingConfig(frames_per_clip=4, clips_per_video=2)

    def plan(rank: int, world_size: int):
        return plan_epoch(indexed, cfg, seed=1, epoch=0, rank=rank, world_size=world_size)

    for rank in range(3):
        got = resume_plan(plan, stages, rank=rank, world_size=3)
        assert got == _reference_resume(plan, stages, rank, 3)
        as_lists = resume_plan(lambda r, w: list(plan(r, w)), stages, rank=rank, world_size=3)
        assert as_lists == got
    clips = list(plan(0, 1))
    assert deal(clips, rank=1, world_size=4) == [
        clips[(1 + 4 * k) % len(clips)] for k in range(-(-len(clips) // 4))
    ]
    assert remaining([clips[:3], clips[3:6]], 1) == [clips[1], clips[4], clips[2], clips[5]]


def test_audio_length_reads_the_fps_column(indexed: vl.VideoDataset) -> None:
    spec = vl.AudioSpec(sample_rate=16000)
    cfg = SamplingConfig(frames_per_clip=8, frame_stride=2)
    # The lowest rate is the video without a nominal fps: its timestamps step by 50 ms, 20 fps.
    assert audio_samples(spec, cfg, indexed) == audio_samples(spec, cfg, vl.VideoDataset(videos=videos()))
    assert audio_samples(spec, cfg, indexed) == round(8 * 2 / 20 * 16000)


LOADERS = [
    dict(frames_per_clip=8, frame_stride=2),
    dict(frames_per_clip=8, frame_stride=2, short_video="skip", sampling="sliding", world_size=2, rank=1),
    dict(frames_per_clip=16, short_video="loop", sampling="uniform", clips_per_video=3),
    dict(frames_per_clip=8, frame_stride=2, audio=vl.AudioSpec()),
    dict(frames_per_clip=8, target_fps=10.0),
]


@pytest.mark.parametrize("kw", LOADERS)
def test_a_loader_over_a_large_index_builds_no_video_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kw: dict
) -> None:
    # Target-fps plans read variable-rate videos one by one: here every video has a constant rate.
    many = [info(i, 10 + i % 40, vfr=i % 7 == 0 and "target_fps" not in kw) for i in range(3000)]
    ds = vl.VideoDataset.from_index(write_index(many, tmp_path / "i.parquet"), check_files="none")
    built = []
    real = vl.VideoInfo.__post_init__

    def counted(self: vl.VideoInfo) -> None:
        built.append(self.path)
        real(self)

    monkeypatch.setattr(vl.VideoInfo, "__post_init__", counted)
    loader = vl.VideoLoader(ds, batch_size=4, num_workers=0, backend="pyav", **kw)
    assert loader.stats["short_videos"] > 0 and built == []
    n, fresh = len(loader), loader.clip_plan()
    state = loader.state_dict()
    state["world_size"], state["batches_yielded"] = 3, 2  # saved at another world size, mid-epoch
    loader.load_state_dict(state)
    # len() counts the whole epoch after any resume; the rest of the epoch is dealt from columns too.
    assert len(loader) == n and loader.clip_plan() != fresh and built == []
    assert np.asarray(short_mask(ds, loader.config)).sum() == loader.stats["short_videos"]


@pytest.mark.parametrize("kw", [CONFIGS[0], CONFIGS[4], CONFIGS[9]])
def test_sharded_shuffled_plans_follow_the_rank_s_videos(indexed: vl.VideoDataset, kw: dict) -> None:
    # One clip per video: a rank's plan is its share of the shuffled order (wrapped round), video by video.
    cfg = SamplingConfig(**{**kw, "clips_per_video": 1})  # type: ignore[arg-type]
    for rank in range(4):
        mine = shard_videos(len(indexed), seed=5, epoch=1, rank=rank, world_size=4, shuffle=True)
        expected = [c for v in mine for c in video_clips(indexed[v], v, cfg, seed=5, epoch=1)]
        assert plan_epoch(indexed, cfg, seed=5, epoch=1, rank=rank, world_size=4) == expected
