"""A mixed folder, as real datasets are: sizes (odd ones too), portrait and landscape, 15-60 fps, VFR, very
short files, several codecs. Every sampling mode and both transforms go through the loader with workers;
the ragged batch equals each clip transformed alone; short videos follow their policy; audio length does
not depend on file order; conflicting options are refused."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import vidloader as vl
from vidloader._errors import ConfigError, StateMismatchError
from vidloader.backends import AudioSpec, PyAVBackend
from vidloader.dataset import textured_frames, write_video
from vidloader.transforms import EvalClipTransform, TrainClipTransform

# name -> (height, width, frames, fps, codec); fps 0 means VFR.
MIXED: dict[str, tuple[int, int, int, float, str]] = {
    "a/land_h264.mp4": (64, 96, 40, 30, "libx264"),
    "a/portrait_h264.mp4": (96, 48, 36, 60, "libx264"),
    "a/odd_mpeg4.avi": (45, 75, 30, 15, "mpeg4"),
    "a/vfr_h264.mp4": (48, 64, 30, 0, "libx264"),
    "b/land_vp9.webm": (48, 80, 30, 25, "libvpx-vp9"),
    "b/portrait_vp9.webm": (80, 48, 30, 15, "libvpx-vp9"),
    "b/odd_vp9.webm": (41, 57, 24, 50, "libvpx-vp9"),
    "b/short_h264.mp4": (32, 32, 6, 24, "libx264"),
}
SHORT = "b/short_h264.mp4"


def _write(root: Path, name: str, spec: tuple[int, int, int, float, str], seed: int, audio: bool) -> Path:
    h, w, n, fps, codec = spec
    kw: dict[str, Any] = {"codec": codec, "gop": 12}
    if fps == 0:
        kw["pts"] = [int(v) for v in np.cumsum(np.random.default_rng(seed).integers(20, 60, n)) - 20]
        kw["time_base"] = Fraction(1, 1000)
    else:
        kw["fps"] = fps
    if audio and codec == "libx264":
        secs = n / (fps or 30) + 0.5
        t = np.arange(int(secs * 16000)) / 16000
        kw["audio"] = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    return write_video(root / name, textured_frames(n, h, w, seed=seed), **kw)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    for i, (name, spec) in enumerate(MIXED.items()):
        _write(root, name, spec, seed=i, audio=name.startswith("a/"))
    return root


@pytest.fixture(scope="module")
def dataset(mixed: Path, tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    return vl.VideoDataset.from_folder(mixed, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def _loader(ds: vl.VideoDataset, **kw: Any) -> vl.VideoLoader:
    args: dict[str, Any] = dict(batch_size=3, frames_per_clip=8, num_workers=2, seed=1)
    args.update(kw)
    return vl.VideoLoader(ds, **args)


def test_the_folder_is_mixed(dataset: vl.VideoDataset) -> None:
    sizes = {(v.height, v.width) for v in dataset}
    assert sizes == {(h, w) for h, w, *_ in MIXED.values()}  # every file its own size
    assert any(v.height > v.width for v in dataset) and any(v.height < v.width for v in dataset)
    assert any(v.height % 2 for v in dataset)
    assert {v.codec for v in dataset} >= {"h264", "vp9", "mpeg4"}


@pytest.mark.parametrize("sampling", ["random", "uniform", "multiview", "sliding"])
@pytest.mark.parametrize("kind", ["train", "eval3"])
def test_every_mode_and_transform_trains_on_mixed_data(
    dataset: vl.VideoDataset, sampling: str, kind: str
) -> None:
    # The README example, no resize chosen by hand: each clip is cropped from its own native frames.
    transform = TrainClipTransform(size=32) if kind == "train" else EvalClipTransform(size=32, crops=3)
    views = 1 if kind == "train" else 3
    extra = {"clips_per_video": 2} if sampling in ("multiview", "uniform") else {}
    loader = _loader(dataset, sampling=sampling, transform=transform, **extra)
    rows = 0
    for batch in loader:
        assert batch.video.shape[1:] == (3, 8, 32, 32) and batch.video.dtype == torch.float32
        assert batch.frame_mask is not None and batch.frame_mask.shape == (len(batch), 8)
        assert torch.isfinite(batch.video).all()
        rows += len(batch)
    assert rows == len(loader.clip_plan(0)) * views
    assert loader.stats["skipped_clips"] == 0 and loader.stats["short_videos"] == 1


def test_ragged_batch_equals_each_clip_alone(dataset: vl.VideoDataset) -> None:
    transform = TrainClipTransform(size=(24, 40), jitter=(0.3, 0.3, 0.3))
    loader = _loader(dataset, transform=transform, batch_size=4, num_workers=0, shuffle=False)
    pyav = PyAVBackend()
    seen_sizes = set()
    for batch in loader:
        for i in range(len(batch)):
            info = dataset[int(batch.video_index[i])]
            frames = pyav.decode_clip(info, batch.frame_index[i].tolist()).frames
            seen_sizes.add(frames.shape[1:3])
            seed = vl.sampling.clip_seed(1, 0, int(batch.video_index[i]), int(batch.clip_index[i]))
            alone = transform(torch.from_numpy(frames)[None], seeds=[seed])
            assert torch.equal(batch.video[i], alone[0]), f"row {i} of {info.path}"
    assert len(seen_sizes) >= 4


def test_short_side_resize_keeps_aspect_and_works_with_a_transform(dataset: vl.VideoDataset) -> None:
    # A loader resize under a transform with its own size would resize every frame twice: refused, pointing
    # at the transform's own resize (short side, aspect kept), which takes the whole mixed folder.
    with pytest.raises(ConfigError, match=r"resize=40 stacks with transform=EvalClipTransform.*resize=40\)"):
        _loader(dataset, resize=40, transform=EvalClipTransform(size=32), sampling="uniform")
    loader = _loader(dataset, transform=EvalClipTransform(size=32, resize=40), sampling="uniform")
    assert sum(len(b) for b in loader) == len(dataset)


def test_without_a_transform_mixed_sizes_say_what_to_pass(dataset: vl.VideoDataset) -> None:
    with pytest.raises(ConfigError, match=r"differ in shape.*Pass a transform.*resize=\(height, width\)"):
        list(_loader(dataset, batch_size=8, num_workers=0))
    # resize=(h, w) stretches every video to one size: allowed when asked for.
    batch = next(iter(_loader(dataset, batch_size=8, num_workers=0, resize=(24, 32))))
    assert batch.video.shape == (8, 3, 8, 24, 32)


def test_dali_cpu_on_mixed_vp9(mixed: Path, tmp_path: Path) -> None:
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    paths = sorted(mixed.glob("b/*.webm"))
    ds = vl.VideoDataset.from_paths(paths, labels=list(range(len(paths))), cache_dir=tmp_path, progress=False)
    transform = EvalClipTransform(size=32)
    kw: dict[str, Any] = dict(transform=transform, sampling="uniform", batch_size=3, shuffle=False)
    a = list(_loader(ds, backend="pyav", **kw))
    dali = _loader(ds, backend="dali", **kw)
    b = list(dali)
    assert dali.backend.name == "dali" and dali.stats["fallbacks"] == 0
    assert len(a) == len(b) == 1
    assert torch.equal(a[0].frame_index, b[0].frame_index)
    # DALI converts YUV to RGB with its own kernels: normalised values agree to a few grey levels.
    diff = (a[0].video - b[0].video).abs().mean() * 0.225 * 255
    assert float(diff) < 4.0


def _corrupt_packet(src: Path, dst: Path, frame: int) -> None:
    """Overwrite one frame's packet payload: the file still probes, that frame does not decode (as in
    test_dali.py)."""
    import av

    with av.open(str(src)) as c:
        packets = sorted((p for p in c.demux(video=0) if p.size), key=lambda p: p.pts)
    target = packets[frame]
    data = bytearray(src.read_bytes())
    start = int(target.pos) + 8
    data[start : start + target.size - 8] = b"\xff" * (target.size - 8)
    dst.write_bytes(bytes(data))


def test_dali_cpu_mixed_batch_loses_only_the_failing_clips(mixed: Path, tmp_path: Path) -> None:
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    bad = tmp_path / "bad_portrait.webm"
    _corrupt_packet(mixed / "b/portrait_vp9.webm", bad, frame=2)
    paths = [mixed / "b/land_vp9.webm", bad, mixed / "b/odd_vp9.webm"]
    ds = vl.VideoDataset.from_paths(paths, labels=[0, 1, 2], cache_dir=tmp_path / "c", progress=False)
    kw: dict[str, Any] = dict(
        backend="dali", transform=EvalClipTransform(size=16), sampling="sliding", shuffle=False, batch_size=6
    )
    skip = _loader(ds, on_error="skip", max_skip_fraction=1.0, **kw)  # a third of the clips
    rows = [int(v) for b in skip for v in b.video_index]
    failures = skip.stats["decode_failures"]
    assert failures and {f["path"] for f in failures} == {str(bad)}
    # The good files lose nothing: 30 frames of land (3 windows) and 24 of odd (3 windows).
    assert rows.count(0) == 3 and rows.count(2) == 3
    assert rows.count(1) + len(failures) == 3
    with pytest.raises(vl.DecodeError, match=re.escape(str(bad))):
        list(_loader(ds, on_error="raise", **kw))


# ---------------------------------------------------------------------------------------------------------------
# Short videos.


def _short_rows(loader: vl.VideoLoader, dataset: vl.VideoDataset) -> list[tuple[list[int], list[bool]]]:
    out = []
    for batch in loader:
        assert batch.frame_mask is not None
        for i in range(len(batch)):
            if dataset[int(batch.video_index[i])].path.endswith(SHORT):
                out.append((batch.frame_index[i].tolist(), batch.frame_mask[i].tolist()))
    return out


def test_short_video_pad_marks_the_padding(dataset: vl.VideoDataset) -> None:
    loader = _loader(dataset, frame_stride=2, transform=TrainClipTransform(size=16), sampling="uniform")
    rows = _short_rows(loader, dataset)
    # 6 frames at stride 2: 0, 2, 4 are real, the other 5 repeat frame 5 and are masked.
    assert rows == [([0, 2, 4, 5, 5, 5, 5, 5], [True] * 3 + [False] * 5)]
    s = loader.stats
    assert (s["short_video"], s["short_videos"], s["padded_clips"], s["padded_frames"]) == ("pad", 1, 1, 5)


def test_short_video_loop_keeps_the_stride(dataset: vl.VideoDataset) -> None:
    loader = _loader(
        dataset, frame_stride=2, short_video="loop", sampling="uniform", transform=EvalClipTransform(size=16)
    )
    assert _short_rows(loader, dataset) == [([0, 2, 4, 0, 2, 4, 0, 2], [True] * 8)]
    assert loader.stats["padded_clips"] == 0


def test_short_video_skip_and_error(dataset: vl.VideoDataset) -> None:
    loader = _loader(dataset, short_video="skip", sampling="uniform", transform=EvalClipTransform(size=16))
    assert _short_rows(loader, dataset) == []
    assert len(loader.clip_plan(0)) == len(dataset) - 1 and loader.stats["short_videos"] == 1
    with pytest.raises(
        ConfigError, match=r"1 videos are shorter than one clip of 8 frames.*short_h264.*'pad'"
    ):
        _loader(dataset, short_video="error")
    with pytest.raises(ConfigError, match=r"short_video='clip' is not allowed; choose one of 'pad', 'loop'"):
        _loader(dataset, short_video="clip")


def test_short_video_skip_keeps_ranks_in_lockstep(dataset: vl.VideoDataset) -> None:
    counts = {
        len(_loader(dataset, short_video="skip", rank=r, world_size=3, transform=TrainClipTransform(size=8)))
        for r in range(3)
    }
    assert len(counts) == 1


# ---------------------------------------------------------------------------------------------------------------
# Audio and conflicting options.


def test_audio_length_does_not_follow_file_order(mixed: Path, tmp_path: Path) -> None:
    paths = sorted(mixed.glob("a/*.mp4"))
    spec = AudioSpec()
    lengths = set()
    for order in (paths, paths[::-1]):
        ds = vl.VideoDataset.from_paths(order, labels=[0] * len(order), cache_dir=tmp_path, progress=False)
        batch = next(iter(_loader(ds, audio=spec, transform=TrainClipTransform(size=16))))
        assert batch.audio is not None
        lengths.add(batch.audio.shape[-1])
    # The longest nominal clip span: 8 frames at the slowest fps of the folder, whatever the order.
    ds = vl.VideoDataset.from_paths(paths, labels=[0] * len(paths), cache_dir=tmp_path, progress=False)
    assert lengths == {round(8 / min(v.fps for v in ds) * 16000)}
    assert len({round(v.fps) for v in ds}) == 3
    fixed = next(iter(_loader(ds, audio=AudioSpec(duration=0.5), transform=TrainClipTransform(size=16))))
    assert fixed.audio is not None and fixed.audio.shape[-1] == 8000
    with pytest.raises(ConfigError, match=r"AudioSpec\.duration must be a positive number"):
        AudioSpec(duration=0)


def test_dtype_and_layout_with_a_transform_agree_or_are_refused(dataset: vl.VideoDataset) -> None:
    with pytest.raises(
        ConfigError, match=r"dtype=torch.float16 conflicts with transform=TrainClipTransform.*out_dtype="
    ):
        _loader(dataset, dtype=torch.float16, transform=TrainClipTransform(size=16))
    with pytest.raises(
        ConfigError, match=r"output_layout='NTHWC' conflicts with transform=EvalClipTransform.*layout="
    ):
        _loader(dataset, output_layout="NTHWC", transform=EvalClipTransform(size=16))
    # Agreeing values are honoured: the batch has them.
    t = TrainClipTransform(size=16, out_dtype=torch.float16, layout="NTHWC")
    loader = _loader(dataset, dtype=torch.float16, output_layout="NTHWC", transform=t, sampling="uniform")
    batch = next(iter(loader))
    assert batch.video.dtype == torch.float16 and batch.video.shape[1:] == (8, 16, 16, 3)
    assert loader.output_layout == "NTHWC"
    # A custom transform without out_dtype cannot promise a dtype: refused too.
    with pytest.raises(ConfigError, match=r"decides its own output dtype"):
        _loader(dataset, dtype=torch.float32, transform=lambda v, *, seeds: v)


# ---------------------------------------------------------------------------------------------------------------
# CLI: index and bench on the mixed folder.


def test_index_reports_how_mixed_the_folder_is(mixed: Path, tmp_path: Path, capsys: Any) -> None:
    from vidloader.cli import main

    assert main(["index", str(mixed), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "videos:      8" in out
    assert "96x64 x1" in out and "41x57" not in out and "57x41 x1" in out
    assert "portrait 2" in out and "landscape 5" in out and "square 1" in out
    assert "fps:         15 to 60" in out
    assert "vfr:         1" in out
    assert "audio:       3 with audio, 5 without" in out
    assert "frames:      min 6, max 40" in out
    broken = tmp_path / "broken"
    (broken / "a").mkdir(parents=True)
    (broken / "a" / "bad.mp4").write_bytes(b"not a video")
    _write(broken, "a/good.mp4", MIXED["a/land_h264.mp4"], seed=0, audio=False)
    assert main(["index", str(broken)]) == 0
    assert main(["index", str(broken), "--strict"]) == 1
    assert "bad.mp4" in capsys.readouterr().out


def test_bench_times_vidloader_with_the_peers_resize(dataset: vl.VideoDataset) -> None:
    from vidloader.cli._bench import run_bench

    kw: dict[str, Any] = dict(
        backends=["vidloader-pyav", "pyav-naive"], frames=4, stride=1, batch_size=2, workers=0, clips=4
    )
    report = run_bench(dataset, resize=32, repeats=1, progress=False, **kw)
    for name in ("vidloader-pyav", "pyav-naive"):
        row = report["backends"][name]
        assert "error" not in row, row
        assert row["clips_per_s"] > 0
    with pytest.raises(ConfigError, match=r"frame sizes.*give --resize HxW"):
        run_bench(dataset, resize=None, progress=False, **kw)


def test_process_workers_hand_mixed_clips_to_the_transform(dataset: vl.VideoDataset) -> None:
    kw: dict[str, Any] = dict(transform=EvalClipTransform(size=16), sampling="uniform", shuffle=False)
    threads = [b.video for b in _loader(dataset, **kw)]
    procs = [b.video for b in _loader(dataset, num_workers=1, worker_type="process", **kw)]
    assert len(threads) == len(procs) == 3
    assert all(torch.equal(a, b) for a, b in zip(threads, procs, strict=True))


def test_clip_batch_checks_frame_mask() -> None:
    kw: dict[str, Any] = dict(
        video=torch.zeros(2, 3, 4, 2, 2),
        label=torch.zeros(2, dtype=torch.int64),
        video_index=torch.zeros(2, dtype=torch.int64),
        clip_index=torch.zeros(2, dtype=torch.int64),
        frame_index=torch.zeros(2, 4, dtype=torch.int64),
        timestamp=torch.zeros(2, 4, dtype=torch.float64),
    )
    assert "frame_mask=(2, 4) bool" in repr(vl.ClipBatch(**kw, frame_mask=torch.ones(2, 4, dtype=torch.bool)))
    with pytest.raises(ConfigError, match=r"frame_mask must be bool \(2, 4\).*torch.int64 \(2, 4\)"):
        vl.ClipBatch(**kw, frame_mask=torch.ones(2, 4, dtype=torch.int64))


def test_short_video_is_part_of_the_state_fingerprint(dataset: vl.VideoDataset) -> None:
    t = TrainClipTransform(size=8)
    state = _loader(dataset, transform=t).state_dict()
    assert "short_video" not in state["config"]  # "pad", the earlier behaviour: older states still load
    _loader(dataset, transform=t).load_state_dict(state)
    with pytest.raises(StateMismatchError, match=r"short_video was None .* but is 'loop' now"):
        _loader(dataset, transform=t, short_video="loop").load_state_dict(state)
