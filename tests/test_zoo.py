"""Real-world files (tests/zoo.py, plus ../shared/media): the index has the true frame count and every clip,
sliding over the whole file and random with seeks, in-process and through loader workers (threads and
processes), is bit-exact with a sequential PyAV decode, with the right timestamps. Damaged files serve
exactly the frames that decode, skip the clips that touch the damage with the reason, and never hang, crash
a worker or give a wrong frame. FFmpeg's log lines go to Python logging, not stderr."""

from __future__ import annotations

import json
import logging
import random
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import vidloader as vl
from media import SHARED, probe_cache_env, shared_media  # noqa: F401  (autouse fixture)
from vidloader.backends import PyAVBackend
from zoo import DAMAGED, HEALTHY, ZOO, Zoo, zoo_fixture  # noqa: F401  (fixture `zoo`)

LOADER_KW = dict(output_layout="NTHWC", shuffle=False, decode_timeout=60)


SOURCES = [*HEALTHY, *(f"shared:{n}" for n in sorted(SHARED))]


def assert_clip(clip: vl.DecodedClip, info: vl.VideoInfo, indices: list[int], ref: dict, what: str) -> None:
    assert clip.frames.shape[0] == len(indices)
    for j, i in enumerate(indices):
        p = info.frame_pts[i]
        assert p in ref, f"{what}: frame {i} (pts {p}) is not a frame of the sequential decode"
        if not np.array_equal(clip.frames[j], ref[p]):
            diff = np.abs(clip.frames[j].astype(int) - ref[p]).mean()
            raise AssertionError(f"{what}: frame {i} differs from the sequential decode by {diff:.2f}")
    assert clip.pts == tuple(info.frame_pts[i] for i in indices)
    assert clip.timestamps == tuple(float(info.frame_pts[i] * info.time_base) for i in indices)


def sliding(n: int, length: int = 5) -> list[list[int]]:
    return [list(range(s, min(s + length, n))) for s in range(0, n, length - 1)]


def random_clips(n: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    clips = []
    for _ in range(6):
        start, stride = rng.randrange(n), rng.choice([1, 2, 3])
        clips.append([min(start + stride * j, n - 1) for j in range(4)])
    clips.append(rng.sample(range(n), min(4, n)))  # unordered, far apart
    return clips


@pytest.mark.parametrize("name", SOURCES)
def test_index_has_the_true_frame_count(zoo: Zoo, name: str) -> None:
    info = vl.probe_video(zoo.path(name))
    ref = zoo.reference(name)
    assert info.num_frames == len(ref)
    assert info.frame_pts == tuple(sorted(ref))
    assert set(info.keyframe_pts) <= set(info.frame_pts) and info.keyframe_pts[0] == info.frame_pts[0]


@pytest.mark.parametrize("name", SOURCES)
def test_every_clip_bit_exact_in_process(zoo: Zoo, name: str) -> None:
    info = vl.probe_video(zoo.path(name))
    ref = zoo.reference(name)
    backend = PyAVBackend()
    for indices in [*sliding(info.num_frames), *random_clips(info.num_frames, seed=len(name))]:
        assert_clip(backend.decode_clip(info, indices), info, indices, ref, f"{name} {indices}")
    # One pass over several clips (what the loader does for clips of one video) gives the same frames.
    clips = random_clips(info.num_frames, seed=7)
    for indices, clip in zip(clips, backend.decode_clips(info, clips), strict=True):
        assert_clip(clip, info, indices, ref, f"{name} shared {indices}")


def check_batches(zoo: Zoo, ds: vl.VideoDataset, names: list[str], batches: list) -> int:
    rows = 0
    for b in batches:
        for r in range(len(b)):
            v = int(b.video_index[r])
            info, ref = ds[v], zoo.reference(names[v])
            indices = b.frame_index[r].tolist()
            for j, i in enumerate(indices):
                got = b.video[r, j].numpy()
                assert np.array_equal(got, ref[info.frame_pts[i]]), f"{names[v]} frame {i}"
            want = [float(info.frame_pts[i] * info.time_base) for i in indices]
            assert b.timestamp[r].tolist() == want
            rows += 1
    return rows


@pytest.mark.parametrize("name", SOURCES)
def test_loader_sliding_and_random_with_threads(zoo: Zoo, name: str) -> None:
    ds = vl.VideoDataset.from_paths([zoo.path(name)])
    for sampling in ("sliding", "random"):
        loader = vl.VideoLoader(
            ds,
            batch_size=4,
            frames_per_clip=6,
            sampling=sampling,
            clips_per_video=5 if sampling == "random" else 1,  # sliding gives every window (more is refused)
            num_workers=2,
            worker_type="thread",
            seed=3,
            **LOADER_KW,
        )
        try:
            rows = check_batches(zoo, ds, [name], list(loader))
        finally:
            loader.close()
        assert rows == len(loader.clip_plan(0)) and loader.stats["skipped_clips"] == 0
        if sampling == "sliding":  # the windows cover the whole file
            covered = {i for c in loader.clip_plan(0) for i in c.frame_indices}
            assert covered >= set(range(ds[0].num_frames - 5))


# The cases that failed before the seek/pre-roll rework, all 64x48 so they batch together.
HARD = ["ts_h264", "m2ts_h264", "ts_mpeg2", "avi_mpeg4_bframes", "h264_open_gop", "h264_open_gop_ts"]


def test_loader_process_workers(zoo: Zoo) -> None:
    ds = vl.VideoDataset.from_paths([zoo.path(n) for n in HARD])
    loader = vl.VideoLoader(
        ds,
        batch_size=4,
        frames_per_clip=5,
        sampling="random",
        clips_per_video=6,
        num_workers=2,
        worker_type="process",
        seed=5,
        **LOADER_KW,
    )
    try:
        rows = check_batches(zoo, ds, HARD, list(loader))
    finally:
        loader.close()
    assert rows == len(HARD) * 6 and loader.stats["skipped_clips"] == 0


# ---- damaged files ------------------------------------------------------------------------------------


def cases(expect: str) -> list[str]:
    return [n for n in DAMAGED if ZOO[n].expect == expect]


@pytest.mark.parametrize("name", cases("partial") + cases("exact"))
def test_damaged_file_serves_exactly_the_frames_that_decode(
    zoo: Zoo, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = zoo.path(name)
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        info = vl.probe_video(path)
    ref = zoo.reference(name)  # the undamaged source's frames
    source_frames = len(ref)
    if ZOO[name].expect == "partial":
        assert 0.3 * source_frames < info.num_frames < source_frames
        # A contiguous run from the start: a cut file loses its end, not frames in between.
        assert info.frame_pts == tuple(sorted(ref))[: info.num_frames]
    else:
        assert info.frame_pts == tuple(sorted(ref))
    warned = [r for r in caplog.records if str(path) in r.getMessage() and "damaged" in r.getMessage()]
    if name in ("truncated_ts", "damaged_cues"):
        # Cut mid-packet, the TS demuxer drops the incomplete PES without a word: what it returns is a
        # shorter, healthy stream. Matroska reads its Cues only to seek, and seeks without them. Nothing
        # to warn about, and nothing wrong is served.
        assert warned == []
    else:
        assert len(warned) == 1 and f"indexed the {info.num_frames} of" in warned[0].getMessage()
    backend = PyAVBackend()
    for indices in [*sliding(info.num_frames), *random_clips(info.num_frames, seed=1)]:
        assert_clip(backend.decode_clip(info, indices), info, indices, ref, f"{name} {indices}")


@pytest.mark.parametrize(("num_workers", "worker_type"), [(0, "thread"), (2, "thread"), (2, "process")])
def test_corrupt_gop_skips_only_clips_touching_it(
    zoo: Zoo, caplog: pytest.LogCaptureFixture, num_workers: int, worker_type: str
) -> None:
    names = ["corrupt_gop", "truncated_faststart", "mp4_faststart"]
    ds = vl.VideoDataset.from_paths([zoo.path(n) for n in names], on_error="skip")
    info = ds[0]
    assert info.num_frames == len(zoo.reference("corrupt_gop")), "demuxing sees nothing wrong"
    loader = vl.VideoLoader(
        ds,
        batch_size=3,
        frames_per_clip=6,
        sampling="sliding",
        num_workers=num_workers,
        worker_type=worker_type,
        on_error="skip",
        max_skip_fraction=1.0,  # what is skipped here, not the skip budget
        **LOADER_KW,
    )
    plan = loader.clip_plan(0)
    damaged = {
        (c.video_index, c.clip_index)
        for c in plan
        if c.video_index == 0 and max(c.frame_indices) >= 24 and min(c.frame_indices) < 48
    }
    try:
        with caplog.at_level(logging.WARNING, logger="vidloader"):
            batches = list(loader)
    finally:
        loader.close()
    delivered = {
        (v, c) for b in batches for v, c in zip(b.video_index.tolist(), b.clip_index.tolist(), strict=True)
    }
    # The keyframe at 24 is damaged: its GOP (frames 21..47 with leading B-frames) cannot decode; clips
    # before and after it can, and are exact.
    assert delivered == {(c.video_index, c.clip_index) for c in plan} - damaged
    assert check_batches(zoo, ds, names, batches) == len(delivered)
    stats = json.loads(json.dumps(loader.stats))
    assert stats["skipped_clips"] == len(damaged) > 0
    for failure in stats["decode_failures"]:
        assert failure["path"] == str(zoo.path("corrupt_gop"))
        assert "decoder error at frame 24" in failure["reason"]


def test_clip_error_names_file_frame_and_reason(zoo: Zoo) -> None:
    info = vl.probe_video(zoo.path("corrupt_gop"))
    with pytest.raises(vl.DecodeError) as err:
        PyAVBackend().decode_clip(info, [30, 31, 32])
    assert err.value.path == str(zoo.path("corrupt_gop"))
    assert err.value.reason.startswith("decoder error at frame 24 (pts ")
    assert len(err.value.reason) > len("decoder error at frame 24 (pts 12288): ")


@pytest.mark.parametrize("name", cases("unusable"))
def test_file_with_nothing_decodable_is_skipped_at_indexing(zoo: Zoo, name: str) -> None:
    path = zoo.path(name)
    with pytest.raises(vl.ProbeError, match=ZOO[name].reason):
        vl.probe_video(path)
    ds = vl.VideoDataset.from_paths([path, zoo.path("mkv_cues")], on_error="skip")
    assert len(ds) == 1 and ds.skipped[0].path == str(path) and ZOO[name].reason in ds.skipped[0].reason


def test_garbage_after_a_real_header_is_skipped_with_a_reason(zoo: Zoo, tmp_path: Path) -> None:
    # An MP4 whose every sample was overwritten: its index reads fine, no frame decodes (FFmpeg's
    # stream-info pass already logs the decoder's complaint, so the probe checks by decoding).
    data = bytearray(zoo.path("mp4_faststart").read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4 :] = bytes((i * 31 + 7) % 256 for i in range(len(data) - mdat - 4))
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(
        vl.ProbeError, match=r"garbage\.mp4: no frame decodes: file is damaged or truncated \(FFmpeg: "
    ):
        vl.probe_video(bad)


# ---- FFmpeg's log and the folder scan -----------------------------------------------------------------


def test_ffmpeg_messages_go_to_logging_once_per_file(
    zoo: Zoo, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    path = shared_media("bt709_full_range.mp4")  # yuvj420p: swscale warns "deprecated pixel format"
    info = vl.probe_video(path)
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG, logger="vidloader.ffmpeg"):
        for start in (0, 10, 20):
            PyAVBackend().decode_clip(info, [start, start + 1])
    out, err = capfd.readouterr()
    assert "deprecated pixel format" not in err + out
    lines = [
        r for r in caplog.records if r.name == "vidloader.ffmpeg" and "deprecated pixel" in r.getMessage()
    ]
    assert len(lines) <= 1  # once per file and message (zero if an earlier test already logged it)
    assert all(str(path) in r.getMessage() for r in lines)


def test_folder_scan_finds_every_container(zoo: Zoo, tmp_path: Path) -> None:
    root = tmp_path / "data" / "cls"
    root.mkdir(parents=True)
    names = [n for n in HEALTHY if ZOO[n].filename.rsplit(".", 1)[1] in ("ts", "m2ts", "mpg", "flv", "mov")]
    for n in names:
        shutil.copy(zoo.path(n), root / ZOO[n].filename)
    shutil.copy(zoo.path("m2ts_h264"), root / "avchd.MTS")
    ds = vl.VideoDataset.from_folder(root.parent, cache_dir=tmp_path / "cache", progress=False)
    assert sorted(Path(v.path).name for v in ds) == sorted([*(ZOO[n].filename for n in names), "avchd.MTS"])
    assert ds.skipped == ()


def test_ts_timestamps_keep_the_stream_start_offset(zoo: Zoo) -> None:
    info = vl.probe_video(zoo.path("ts_h264"))
    # The MPEG-TS muxer starts video pts after the B-frame delay (and dts at 0); timestamps are the
    # stream's own, not shifted to zero, so they match audio and subtitles of the same file.
    assert info.time_base == Fraction(1, 90000)
    assert info.frame_pts[0] > 0
    clip = PyAVBackend().decode_clip(info, [0, 1])
    assert clip.timestamps[0] == float(info.frame_pts[0] / 90000)
