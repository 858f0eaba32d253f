"""Bad input under both policies. on_error="raise": a vidloader exception whose message names the file and
the reason. on_error="skip": the file (or clip) is left out, listed with its reason in ds.skipped /
loader.stats, and one warning is logged per file; a damaged file (cut off, or found by ``verify``) is kept
with the frames that decode and named in ds.damaged / loader.stats. Nothing hangs: every loader here runs under a short
decode_timeout, and one test proves that timeout fires."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import PyAVBackend
from vidloader.dataset import textured_frames, write_video

# File name -> what the reason must say.
BAD_FILES = {
    "missing.mp4": "file does not exist",
    "empty.mp4": "file is empty (0 bytes)",
    "truncated.mp4": "moov atom not found",  # index at the end, cut off
    "text.mp4": "not a readable media file",
    "random.mp4": "not a readable media file",
    "audio_only.mp4": "has no video stream",
}
# Cut-off downloads whose first half is intact: indexed with the frames that decode (a warning names the
# damage FFmpeg reported), not skipped. The index at the front of the MP4 lists all 60 samples; the WebM
# only says "File ended prematurely" (a mere warning, caught from the log).
PARTIAL_FILES = {
    "truncated_faststart.mp4": "Packet corrupt",
    "truncated.webm": "File ended prematurely",
}


def _remux_faststart(src: Path, dst: Path) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)[None]
        for pos in range(0, 16000, 1024):
            chunk = np.zeros((1, 1024), np.float32)
            chunk[:, : samples[:, pos : pos + 1024].shape[1]] = samples[:, pos : pos + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _corrupt_keyframe(src: Path, dst: Path, frame_index: int) -> None:
    """Flip the slice data of one keyframe in the mdat, keeping its NAL length and header intact: demuxing
    (the probe) sees nothing wrong, decoding from that keyframe on fails."""
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size, p.is_keyframe) for p in c.demux(video=0) if p.size]
    pos, size, key = packets[frame_index]
    assert key, "corrupt a keyframe: every later frame of its GOP depends on it"
    data = bytearray(src.read_bytes())
    data[pos + 16 : pos + size] = bytes(b ^ 0x5A for b in data[pos + 16 : pos + size])
    dst.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    # Same size as the damaged file below, so they batch together without resize.
    good = write_video(root / "good.mp4", textured_frames(30, 48, 64, seed=1), gop=10)
    good2 = write_video(root / "good2.mp4", textured_frames(30, 48, 64, seed=2), gop=10)
    long = write_video(root / "src60.mp4", textured_frames(60, 48, 64), gop=20)
    webm = write_video(root / "src.webm", textured_frames(60, 48, 64), codec="libvpx-vp9", gop=20)
    out = {"good.mp4": good, "good2.mp4": good2}
    (root / "empty.mp4").write_bytes(b"")
    (root / "truncated.mp4").write_bytes(long.read_bytes()[: long.stat().st_size // 2])
    _remux_faststart(long, root / "faststart.mp4")
    data = (root / "faststart.mp4").read_bytes()
    (root / "truncated_faststart.mp4").write_bytes(data[: len(data) // 2])
    (root / "truncated.webm").write_bytes(webm.read_bytes()[: webm.stat().st_size // 2])
    (root / "text.mp4").write_text("this is a text file, not a video\n" * 40)
    (root / "random.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    _audio_only(root / "audio_only.mp4")
    out.update({name: root / name for name in [*BAD_FILES, *PARTIAL_FILES]})  # missing.mp4 is not written
    out["src60.mp4"], out["src.webm"] = long, webm
    out["short.mp4"] = write_video(root / "short.mp4", textured_frames(5, 32, 48, seed=3), gop=5)
    out["corrupt_mid.mp4"] = root / "corrupt_mid.mp4"
    _corrupt_keyframe(long, out["corrupt_mid.mp4"], 40)
    return out


def manifest(tmp_path: Path, paths: list[Path]) -> Path:
    m = tmp_path / "m.csv"
    m.write_text("path,label\n" + "".join(f"{p},{i % 2}\n" for i, p in enumerate(paths)))
    return m


def warnings_about(caplog: pytest.LogCaptureFixture, path: Path) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_raise(files: dict[str, Path], tmp_path: Path, name: str) -> None:
    bad = files[name]
    m = manifest(tmp_path, [files["good.mp4"], bad])
    with pytest.raises(vl.ProbeError) as err:
        vl.VideoDataset.from_manifest(m, progress=False)
    assert isinstance(err.value, vl.VidloaderError)
    assert err.value.path == str(bad)
    assert BAD_FILES[name] in err.value.reason
    assert str(bad) in str(err.value) and BAD_FILES[name] in str(err.value)
    if name != "missing.mp4":
        for _ in range(2):
            # Twice: the same FFmpeg message again must not be swallowed as a repeat.
            with pytest.raises(vl.ProbeError, match=re.escape(BAD_FILES[name])):
                vl.probe_video(bad)
        assert vl.probe_video(files["good.mp4"]).num_frames == 30


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_skip(
    files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    bad = files[name]
    m = manifest(tmp_path, [files["good.mp4"], bad, files["good2.mp4"]])
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        ds = vl.VideoDataset.from_manifest(m, on_error="skip", progress=False)
    assert [v.path for v in ds] == [str(files["good.mp4"]), str(files["good2.mp4"])]
    assert len(ds.skipped) == 1 and ds.skipped[0].path == str(bad)
    assert BAD_FILES[name] in ds.skipped[0].reason
    assert len(warnings_about(caplog, bad)) == 1
    loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, num_workers=0, decode_timeout=60)
    assert sum(len(b) for b in loader) == 2
    assert loader.stats["skipped_files"] == [{"path": str(bad), "reason": ds.skipped[0].reason}]


@pytest.mark.parametrize("name", sorted(PARTIAL_FILES))
def test_truncated_file_indexes_the_frames_that_decode(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    bad = files[name]
    source = files["src.webm" if name.endswith(".webm") else "src60.mp4"]
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        info = vl.probe_video(bad)
    (warning,) = warnings_about(caplog, bad)
    assert PARTIAL_FILES[name] in warning.getMessage() and "frames that decode" in warning.getMessage()
    whole = vl.probe_video(source)
    assert 10 < info.num_frames < whole.num_frames
    assert info.frame_pts == whole.frame_pts[: info.num_frames]
    # Every indexed frame decodes, and is the frame the intact file has at that timestamp.
    n = info.num_frames
    got = PyAVBackend().decode_clip(info, list(range(n))).frames
    assert np.array_equal(got, PyAVBackend().decode_clip(whole, list(range(n))).frames)
    # A damaged file is an error under on_error="raise", naming the file, how much decodes and the damage;
    # under "skip" its frames that decode are served, and it is named in ds.damaged and loader.stats.
    with pytest.raises(vl.ProbeError) as err:
        vl.VideoDataset.from_paths([bad], on_error="raise")
    assert err.value.path == str(bad) and f"{n} of " in err.value.reason
    assert PARTIAL_FILES[name] in err.value.reason
    ds = vl.VideoDataset.from_paths([bad], on_error="skip")
    assert [d.path for d in ds.damaged] == [str(bad)] and ds.damaged[0].frames_decoded == n
    loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, sampling="sliding", decode_timeout=60)
    assert sum(len(b) for b in loader) == len(loader.clip_plan(0)) and loader.stats["skipped_clips"] == 0
    (named,) = loader.stats["damaged_files"]
    assert (
        named["path"] == str(bad) and named["frames_decoded"] == n and PARTIAL_FILES[name] in named["damage"]
    )


def test_folder_with_every_bad_file(
    files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    (root / "cls").mkdir(parents=True)
    present = [n for n in BAD_FILES if files[n].exists()]
    for name in [*present, "good.mp4"]:
        (root / "cls" / name).symlink_to(files[name])
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        ds = vl.VideoDataset.from_folder(root, on_error="skip", cache_dir=tmp_path / "cache", progress=False)
    assert len(ds) == 1 and len(ds.skipped) == len(present)
    for s in ds.skipped:
        assert BAD_FILES[Path(s.path).name] in s.reason
        assert len(warnings_about(caplog, Path(s.path))) == 1
    with pytest.raises(vl.ProbeError):
        vl.VideoDataset.from_folder(root, cache_dir=tmp_path / "cache", progress=False)
    # Failures are not cached: a fixed file is picked up next time.
    assert (
        len(vl.VideoDataset.from_folder(root, on_error="skip", cache_dir=tmp_path / "cache", progress=False))
        == 1
    )


def test_nothing_usable_is_an_error(files: dict[str, Path], tmp_path: Path) -> None:
    m = manifest(tmp_path, [files["text.mp4"], files["empty.mp4"]])
    with pytest.raises(vl.ConfigError, match=r"has no usable video; 2 file\(s\) skipped, first: .*text\.mp4"):
        vl.VideoDataset.from_manifest(m, on_error="skip", progress=False)


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_short_video_is_padded_not_an_error(files: dict[str, Path], on_error: str) -> None:
    ds = vl.VideoDataset.from_paths([files["short.mp4"]], on_error=on_error)
    loader = vl.VideoLoader(
        ds,
        batch_size=1,
        frames_per_clip=8,
        output_layout="NTHWC",
        num_workers=1,
        on_error=on_error,
        decode_timeout=60,
    )
    (batch,) = list(loader)
    assert batch.frame_index.tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    ts = batch.timestamp[0].tolist()
    assert ts[4:] == [ts[4]] * 4 and ts[:5] == sorted(set(ts))
    video = batch.video[0]
    for j in range(5, 8):
        assert torch.equal(video[j], video[4])
    assert not torch.equal(video[3], video[4])
    assert loader.stats["skipped_clips"] == 0


# ---- files that probe fine and fail to decode ---------------------------------------------------------


def failing_clips(info: vl.VideoInfo, plan: list[vl.ClipSpec]) -> set[tuple[int, int]]:
    bad = set()
    for clip in plan:
        try:
            PyAVBackend().decode_clip(info, clip.frame_indices)
        except vl.DecodeError:
            bad.add((clip.video_index, clip.clip_index))
    return bad


def test_corrupt_mid_file_probes_but_fails_decode(files: dict[str, Path]) -> None:
    path = files["corrupt_mid.mp4"]
    info = vl.probe_video(path)  # demuxing sees nothing wrong
    assert info.num_frames == 60
    assert PyAVBackend().decode_clip(info, list(range(20, 30))).frames.shape[0] == 10  # earlier GOPs are fine
    for _ in range(2):  # the same decoder message twice must fail both times
        with pytest.raises(vl.DecodeError) as err:
            PyAVBackend().decode_clip(info, list(range(42, 50)))
        assert err.value.path == str(path) and "decoder error" in err.value.reason


LOADER_KW = dict(batch_size=2, frames_per_clip=6, sampling="sliding", shuffle=False, decode_timeout=30)
# What is skipped, not the skip budget (tests/test_skip_budget.py): one bad file is most of these epochs.
SKIP = dict(on_error="skip", max_skip_fraction=1.0)


def policy(on_error: str) -> dict:
    return SKIP if on_error == "skip" else {"on_error": on_error}


def test_verify_finds_the_damage_at_indexing(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    bad = files["corrupt_mid.mp4"]
    paths = [files["good.mp4"], bad]
    with pytest.raises(vl.ProbeError) as err:
        vl.VideoDataset.from_paths(paths, verify=True, use_cache=False)
    assert (
        err.value.path == str(bad)
        and "damaged: " in err.value.reason
        and " of 60 frames decode" in err.value.reason
    )
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        ds = vl.VideoDataset.from_paths(paths, verify=True, on_error="skip", use_cache=False)
    (damaged,) = ds.damaged
    assert damaged.path == str(bad) and 20 <= damaged.frames_decoded < 60 == damaged.frames_in_container
    assert ds[1].num_frames == 60, "every listed frame stays indexed"
    assert any("damaged file(s) kept" in r.getMessage() for r in warnings_about(caplog, bad))
    # The budget is opened: this test counts the clips over the damage, whatever their share.
    loader = vl.VideoLoader(ds, num_workers=0, on_error="skip", max_skip_fraction=1.0, **LOADER_KW)
    plan = loader.clip_plan(0)
    failing = failing_clips(ds[1], [c for c in plan if c.video_index == 1])
    delivered = {
        (v, c) for b in loader for v, c in zip(b.video_index.tolist(), b.clip_index.tolist(), strict=True)
    }
    # Its frames that decode are served; clips over the damage fail at decode time, as without verify.
    assert delivered == {(c.video_index, c.clip_index) for c in plan} - failing and failing
    stats = loader.stats
    assert [d["path"] for d in stats["damaged_files"]] == [str(bad)]
    assert stats["damaged_files"][0]["frames_decoded"] == damaged.frames_decoded
    assert stats["skipped_clips"] == len(failing)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_decode_failure_raise(files: dict[str, Path], num_workers: int) -> None:
    ds = vl.VideoDataset.from_paths([files["good.mp4"], files["corrupt_mid.mp4"]], on_error="raise")
    loader = vl.VideoLoader(ds, num_workers=num_workers, **LOADER_KW)
    got = []
    with pytest.raises(vl.DecodeError) as err:
        for batch in loader:
            got.append(batch)
    assert err.value.path == str(files["corrupt_mid.mp4"])
    assert str(files["corrupt_mid.mp4"]) in str(err.value) and "decoder error" in str(err.value)
    assert got, "batches before the damage are delivered"


@pytest.mark.parametrize(("num_workers", "worker_type"), [(0, "thread"), (2, "thread"), (2, "process")])
def test_decode_failure_skip(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture, num_workers: int, worker_type: str
) -> None:
    bad = files["corrupt_mid.mp4"]
    ds = vl.VideoDataset.from_paths([files["good.mp4"], bad], on_error="skip")
    loader = vl.VideoLoader(ds, num_workers=num_workers, worker_type=worker_type, **SKIP, **LOADER_KW)
    plan = loader.clip_plan(0)
    failing = failing_clips(ds[1], [c for c in plan if c.video_index == 1])
    assert len(failing) >= 2, "the damage must hit several clips (one warning for all of them)"
    try:
        with caplog.at_level(logging.WARNING, logger="vidloader"):
            batches = list(loader)
    finally:
        loader.close()
    delivered = {
        (v, c) for b in batches for v, c in zip(b.video_index.tolist(), b.clip_index.tolist(), strict=True)
    }
    assert delivered == {(c.video_index, c.clip_index) for c in plan} - failing
    stats = json.loads(json.dumps(loader.stats))
    assert stats["skipped_clips"] == len(failing)
    assert stats["clips"] == len(plan) - len(failing)
    # Sliding clips of one file share decode passes; a pass that fails falls back to clip by clip, so
    # exactly the clips that fail alone are skipped.
    assert stats["shared_decode_clips"] > 0
    assert {f["path"] for f in stats["decode_failures"]} == {str(bad)}
    assert all("decoder error" in f["reason"] for f in stats["decode_failures"])
    assert len(warnings_about(caplog, bad)) == 1
    # Every delivered clip of the damaged file is bit-exact (no frame from a damaged reference).
    info = ds[1]
    for b in batches:
        for r in range(len(b)):
            if int(b.video_index[r]) == 1:
                clip = PyAVBackend().decode_clip(info, b.frame_index[r].tolist())
                assert np.array_equal(b.video[r].permute(1, 2, 3, 0).numpy(), clip.frames)


def test_resume_counts_skipped_batches(files: dict[str, Path]) -> None:
    # Batches whose every clip failed are not delivered, but they are part of the epoch: a resumed loader
    # must neither replay nor drop batches around them.
    ds = vl.VideoDataset.from_paths([files["corrupt_mid.mp4"], files["good.mp4"]], on_error="skip")
    kw = dict(LOADER_KW, batch_size=1, **SKIP, num_workers=2)
    full = [(b.video_index.tolist(), b.frame_index.tolist()) for b in vl.VideoLoader(ds, **kw)]
    first_loader = vl.VideoLoader(ds, **kw)
    assert first_loader.stats["skipped_batches"] == 0
    it = iter(first_loader)
    k = 0
    for _ in range(len(full) - 2):
        next(it)
        k += 1
    assert first_loader.stats["skipped_batches"] > 0, "the first part must include skipped batches"
    state = first_loader.state_dict()
    resumed = vl.VideoLoader(ds, **kw)
    resumed.load_state_dict(state)
    rest = [(b.video_index.tolist(), b.frame_index.tolist()) for b in resumed]
    assert rest == full[k:]


class SlowBackend(PyAVBackend):
    """Takes far longer than decode_timeout on one file."""

    def __init__(self, slow_path: str) -> None:
        super().__init__()
        self.slow_path = slow_path

    def decode_clip(self, info, frame_indices, **kw):
        if info.path == self.slow_path:
            time.sleep(2.0)
        return super().decode_clip(info, frame_indices, **kw)


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_decode_timeout_never_hangs(files: dict[str, Path], on_error: str) -> None:
    slow = files["good2.mp4"]
    ds = vl.VideoDataset.from_paths([files["good.mp4"], slow])
    loader = vl.VideoLoader(
        ds,
        batch_size=1,
        frames_per_clip=4,
        shuffle=False,
        num_workers=2,
        **policy(on_error),
        decode_timeout=0.3,
    )
    loader.backend = SlowBackend(str(slow))
    start = time.monotonic()
    if on_error == "raise":
        with pytest.raises(
            vl.DecodeError, match=r"good2\.mp4: decoding took longer than decode_timeout=0\.3s"
        ):
            list(loader)
    else:
        batches = list(loader)
        assert [b.video_index.tolist() for b in batches] == [[0]]
        assert loader.stats["skipped_clips"] == 1 and loader.stats["skipped_batches"] == 1
        assert "decode_timeout" in loader.stats["decode_failures"][0]["reason"]
    assert time.monotonic() - start < 1.8, "the loader waited for the slow decode instead of timing out"


class CrashingBackend(PyAVBackend):
    """Kills its worker process on one clip, as a decoder segfault would."""

    def __init__(self, crash_path: str, crash_first_frame: int, slow_path: str = "") -> None:
        super().__init__()
        self.crash, self.slow_path = (crash_path, crash_first_frame), slow_path

    def decode_clip(self, info, frame_indices, **kw):
        if (info.path, frame_indices[0]) == self.crash:
            os._exit(1)
        if info.path == self.slow_path:
            time.sleep(0.5)  # still decoding when the culprit kills its worker again
        return super().decode_clip(info, frame_indices, **kw)


@pytest.mark.slow
def test_a_slow_clip_is_not_taken_down_by_the_culprits_retry(files: dict[str, Path]) -> None:
    """The clips a dying worker took down are decoded again one at a time: retried together, the culprit
    killed its fresh worker again while the slow innocent clip was still decoding, and both were blamed."""
    culprit, slow = files["good2.mp4"], files["short.mp4"]
    ds = vl.VideoDataset.from_paths([files["good.mp4"], culprit, slow], labels=[0, 1, 2])
    kw = dict(LOADER_KW, shuffle=True, resize=(32, 48), num_workers=2, worker_type="process", prefetch=3)
    loader = vl.VideoLoader(ds, **kw, **SKIP, seed=3)  # type: ignore[arg-type]
    loader.backend = CrashingBackend(str(culprit), 12, slow_path=str(slow))
    try:
        list(loader)
    finally:
        loader.close()
    assert [f["path"] for f in loader.stats["decode_failures"]] == [str(culprit)]
    assert loader.stats["skipped_clips"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_worker_process_crash_blames_only_its_clip(files: dict[str, Path], on_error: str) -> None:
    # When a worker dies, every clip in flight in the pool fails with it; only the clip that kills a
    # worker again on its own is the culprit. The others are decoded again, not skipped or blamed.
    culprit = files["good2.mp4"]
    ds = vl.VideoDataset.from_paths([files["good.mp4"], culprit, files["short.mp4"]], labels=[0, 1, 2])
    loader = vl.VideoLoader(
        ds,
        **dict(LOADER_KW, shuffle=True, resize=(32, 48)),
        num_workers=2,
        worker_type="process",
        prefetch=3,
        **policy(on_error),
        seed=3,
    )
    loader.backend = CrashingBackend(str(culprit), 12)
    plan = loader.clip_plan(0)
    (bad,) = [(c.video_index, c.clip_index) for c in plan if c.video_index == 1 and c.frame_indices[0] == 12]
    try:
        if on_error == "raise":
            with pytest.raises(vl.DecodeError, match=r"good2\.mp4: a decode worker process died"):
                list(loader)
            return
        batches = list(loader)
    finally:
        loader.close()
    delivered = {
        (v, c) for b in batches for v, c in zip(b.video_index.tolist(), b.clip_index.tolist(), strict=True)
    }
    assert delivered == {(c.video_index, c.clip_index) for c in plan} - {bad}
    assert loader.stats["skipped_clips"] == 1
    assert [f["path"] for f in loader.stats["decode_failures"]] == [str(culprit)]
