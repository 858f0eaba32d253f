"""Loader core: one backend call per healthy batch (DALI's CPU decoder on VP9, and PyAV), only decoder
errors become DecodeError, one readiness path for every worker mode (a fake stream object on the CPU, a
slow copy on the GPU), buffers never written after hand-over, and decodes that never return: the batch
meets its deadline, the stuck worker is replaced, the pass ends."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import DALIBackend, PyAVBackend, keyframes_to_try
from vidloader.backends._walk import DecodeWalk
from vidloader.dataset import textured_frames, write_video
from vidloader.loader import LoaderConfig, _handoff


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("core")
    return [write_video(root / f"v{i}.mp4", textured_frames(24, 32, 48, seed=i), gop=8) for i in range(6)]


@pytest.fixture(scope="module")
def vp9(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("core_vp9")
    return [
        write_video(root / f"v{i}.webm", textured_frames(20, 32, 48, seed=i), codec="libvpx-vp9", gop=10)
        for i in range(4)
    ]


def clip_keys(batches: list[vl.ClipBatch]) -> list[tuple[int, int]]:
    return [
        (v, c) for b in batches for v, c in zip(b.video_index.tolist(), b.clip_index.tolist(), strict=True)
    ]


# ---- one decode per batch -------------------------------------------------------------------------------


class CountingDALI(DALIBackend):
    """DALI's CPU decoder, counting decode_batch calls; clips of ``bad`` get bytes no decoder opens."""

    def __init__(self, bad: str | None = None) -> None:
        super().__init__(device="cpu")
        self.calls: list[int] = []
        self.bad = bad

    def prepare_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        clip = super().prepare_clip(info, frame_indices, **kw)
        if info.path == self.bad:
            junk = np.frombuffer(b"\x1aE\xdf\xa3" + b"junk" * 64, dtype=np.uint8)
            clip = type(clip)(**{**clip.__dict__, "encoded": junk})
        return clip

    def decode_batch(self, clips, *, resize=None):  # type: ignore[no-untyped-def]
        self.calls.append(len(clips))
        return super().decode_batch(clips, resize=resize)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dali_decodes_each_healthy_batch_once(vp9: list[Path], num_workers: int) -> None:
    pytest.importorskip("nvidia.dali")
    ds = vl.VideoDataset.from_paths(vp9)
    kw = dict(batch_size=2, frames_per_clip=4, clips_per_video=2, shuffle=False, num_workers=num_workers)
    loader = vl.VideoLoader(ds, backend="dali", **kw)  # type: ignore[arg-type]
    loader.backend = counting = CountingDALI()
    batches = list(loader)
    assert len(batches) == 4 and counting.calls == [2, 2, 2, 2], "one DALI call per batch, none repeated"
    ref = list(vl.VideoLoader(ds, backend="pyav", **kw))  # type: ignore[arg-type]
    assert clip_keys(batches) == clip_keys(ref)


def test_dali_failed_batch_is_bisected(vp9: list[Path]) -> None:
    pytest.importorskip("nvidia.dali")
    ds = vl.VideoDataset.from_paths(vp9)
    loader = vl.VideoLoader(
        ds,
        batch_size=4,
        frames_per_clip=4,
        shuffle=False,
        backend="dali",
        num_workers=0,
        on_error="skip",
        max_skip_fraction=1.0,  # 1 of 4 clips: what is skipped here, not the skip budget
    )
    loader.backend = counting = CountingDALI(bad=str(vp9[2]))
    (batch,) = list(loader)
    # [4] fails -> [2] ok + [2] fails -> [1] ok + [1] fails: 5 calls for one bad clip, not 1 + 4.
    assert counting.calls == [4, 2, 2, 1, 1]
    assert batch.video_index.tolist() == [0, 1, 3]
    assert [f["path"] for f in loader.stats["decode_failures"]] == [str(vp9[2])]
    ref = next(iter(vl.VideoLoader(ds, batch_size=4, frames_per_clip=4, shuffle=False, backend="pyav")))
    assert torch.equal(batch.frame_index, ref.frame_index[[0, 1, 3]])
    with pytest.raises(vl.DecodeError, match=str(vp9[2]).replace(".", r"\.")):
        raising = vl.VideoLoader(
            ds, batch_size=4, frames_per_clip=4, shuffle=False, backend="dali", num_workers=0
        )
        raising.backend = CountingDALI(bad=str(vp9[2]))
        list(raising)


class CountingPyAV(PyAVBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def decode_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        self.calls.append((info.path, frame_indices[0]))
        return super().decode_clip(info, frame_indices, **kw)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_pyav_decodes_each_clip_once(h264: list[Path], num_workers: int) -> None:
    ds = vl.VideoDataset.from_paths(h264)
    loader = vl.VideoLoader(
        ds, batch_size=4, frames_per_clip=3, clips_per_video=2, num_workers=num_workers, shared_decode=False
    )
    loader.backend = counting = CountingPyAV()
    batches = list(loader)
    assert sorted(counting.calls) == sorted(
        (ds[c.video_index].path, c.frame_indices[0]) for c in loader.clip_plan(0)
    )
    assert len(clip_keys(batches)) == len(counting.calls) == 12
    # Shared decode: one pass per video (GOP 8 covers both 3-frame clips only when they are close; the
    # multiview clips of a 24-frame file are), still one call per unit and never a second one.
    shared = vl.VideoLoader(
        ds,
        batch_size=4,
        frames_per_clip=3,
        sampling="multiview",
        clips_per_video=2,
        shuffle=False,
        num_workers=num_workers,
    )
    shared.backend = counting = CountingPyAV()
    assert len(clip_keys(list(shared))) == 12
    assert len(counting.calls) == 12 - shared.stats["shared_decode_clips"] // 2


# ---- only decoder errors become DecodeError ------------------------------------------------------------


class RaisingBackend(PyAVBackend):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def decode_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        raise self.exc


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize(
    "exc",
    [
        MemoryError("host"),
        torch.cuda.OutOfMemoryError("CUDA out of memory"),
        TypeError("a bug"),
        KeyboardInterrupt(),
    ],
    ids=["MemoryError", "OutOfMemoryError", "TypeError", "KeyboardInterrupt"],
)
def test_bugs_and_oom_propagate_under_skip(h264: list[Path], num_workers: int, exc: BaseException) -> None:
    ds = vl.VideoDataset.from_paths(h264[:2])
    loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=3, num_workers=num_workers, on_error="skip")
    loader.backend = RaisingBackend(exc)
    with pytest.raises(type(exc)):
        list(loader)
    assert loader.stats["skipped_clips"] == 0
    loader.close()


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (RuntimeError("Failed to decode frame 3"), vl.DecodeError),
        (RuntimeError("CUDA error: out of memory"), RuntimeError),
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), torch.cuda.OutOfMemoryError),
        (TypeError("bad argument"), TypeError),
    ],
)
def test_dali_backend_turns_only_decoder_errors_into_decode_error(
    vp9: list[Path], monkeypatch: pytest.MonkeyPatch, exc: BaseException, kind: type
) -> None:
    pytest.importorskip("nvidia.dali")
    import nvidia.dali.experimental.dynamic as ndd

    backend = DALIBackend(device="cpu")
    clip = backend.prepare_clip(vl.probe_video(vp9[0]), [0, 1])

    def boom(*a: Any, **k: Any) -> None:
        raise exc

    monkeypatch.setattr(ndd.decoders, "video", boom)
    with pytest.raises(kind) as err:
        backend.decode_batch([clip])
    assert isinstance(err.value, vl.DecodeError) == (kind is vl.DecodeError)


def test_keyframe_retries_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = vl.probe_video(write_video(tmp_path / "g5.mp4", textured_frames(60, 32, 48), gop=5))
    assert len(info.keyframe_pts) == 12
    starts: list[int] = []

    def nothing(self, container, stream, target, logs):  # type: ignore[no-untyped-def]
        starts.append(self.info.keyframe_pts[target])  # no frame, no start: as if every seek landed past

    monkeypatch.setattr(DecodeWalk, "run", nothing)
    with pytest.raises(vl.DecodeError, match="decoder produced no frame"):
        PyAVBackend().decode_clip(info, [56, 57])
    assert starts == list(info.keyframe_pts[-1:-4:-1]), "the last keyframe and at most two before it"
    assert keyframes_to_try([0, 10, 20, 30], 35) == [30, 20, 10]
    assert keyframes_to_try([0, 10], 5) == [0] and keyframes_to_try([], 7) == [7]


# ---- one readiness path ---------------------------------------------------------------------------------


class FakeStreams:
    """StreamOps that log what the handoff does, so the CPU suite can check the CUDA logic."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.building = False
        self.events = 0

    def side(self) -> str:
        return "side"

    def current(self) -> str:
        return "current"

    @contextlib.contextmanager
    def use(self, stream: Any):  # type: ignore[no-untyped-def]
        assert stream == "side"
        self.building = True
        try:
            yield
        finally:
            self.building = False

    def record_event(self, stream: Any) -> int:
        self.events += 1
        self.log.append(("record", (stream, self.events)))
        return self.events

    def wait(self, stream: Any, event: Any) -> None:
        self.log.append(("wait", (stream, event)))

    def keep_alive(self, tensor: torch.Tensor, stream: Any) -> None:
        self.log.append(("keep", (stream, tensor.data_ptr())))

    def owns(self, tensor: torch.Tensor) -> bool:
        return True


class OnSide:
    """A transform that notes whether it ran on the side stream."""

    num_views = 1

    def __init__(self, streams: FakeStreams) -> None:
        self.streams = streams
        self.seen: list[bool] = []

    def __call__(self, video: torch.Tensor, *, seeds: list[int]) -> torch.Tensor:
        self.seen.append(self.streams.building)
        return video.permute(0, 4, 1, 2, 3).float()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_one_readiness_path_in_every_worker_mode(
    h264: list[Path], monkeypatch: pytest.MonkeyPatch, num_workers: int
) -> None:
    fake = FakeStreams()
    monkeypatch.setattr(_handoff, "streams_for", lambda device: fake)
    ds = vl.VideoDataset.from_paths(h264)
    tf = OnSide(fake)
    loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=3, num_workers=num_workers, transform=tf)
    n = 0
    for batch in loader:
        n += 1
        # Before the caller gets batch n: its event was recorded on the side stream, the current stream
        # waits on exactly that event, and owns the batch's device tensors.
        waits = [v for k, v in fake.log if k == "wait"]
        assert waits[-1] == ("current", n) and len(waits) == n
        assert ("record", ("side", n)) in fake.log
        kept = {v for k, v in fake.log[fake.log.index(("wait", ("current", n))) :] if k == "keep"}
        assert {("current", batch.video.data_ptr()), ("current", batch.label.data_ptr())} <= kept
    assert n == 3 and tf.seen == [True] * 3, "every batch is made on the side stream"


def test_handed_out_buffers_are_never_written_again(h264: list[Path]) -> None:
    ds = vl.VideoDataset.from_paths(h264)
    kw = dict(
        batch_size=2, frames_per_clip=3, clips_per_video=3, num_workers=2, prefetch=3, output_layout="NTHWC"
    )
    loader = vl.VideoLoader(ds, **kw)  # type: ignore[arg-type]
    held = []
    for batch in loader:
        held.append((batch.video, batch.video.clone()))
    assert len(held) == 9 and all(torch.equal(a, b) for a, b in held)
    assert len({v.data_ptr() for v, _ in held}) == 9, "each batch owns its memory"
    # A consumer that stops early: the producer still decoding never touches the batch it holds.
    it = iter(vl.VideoLoader(ds, **kw))  # type: ignore[arg-type]
    first = next(it)
    snapshot = first.video.clone()
    it.close()
    time.sleep(0.3)
    assert torch.equal(first.video, snapshot)
    assert not any(t.name == "vidloader-prefetch" for t in threading.enumerate())


@pytest.mark.cuda
@pytest.mark.parametrize("num_workers", [0, 2])
def test_slow_side_stream_copy_is_waited_for(h264: list[Path], num_workers: int) -> None:
    class SlowCopy:
        num_views = 1

        def __call__(self, video: torch.Tensor, *, seeds: list[int]) -> torch.Tensor:
            out = torch.zeros(video.shape, dtype=torch.float32, device=video.device)
            torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time on the side stream before the copy
            return out.copy_(video)

    ds = vl.VideoDataset.from_paths(h264)
    kw = dict(batch_size=3, frames_per_clip=3, shuffle=False, num_workers=num_workers)
    ref = [b.video.float() for b in vl.VideoLoader(ds, output_layout="NTHWC", **kw)]  # type: ignore[arg-type]
    loader = vl.VideoLoader(ds, device="cuda", transform=SlowCopy(), **kw)  # type: ignore[arg-type]
    for want, batch in zip(ref, loader, strict=True):
        # Read on the caller's stream at once: without the wait this sees zeros.
        assert torch.equal(batch.video.sum(dim=(1, 2, 3, 4)).cpu(), want.sum(dim=(1, 2, 3, 4)))


# ---- decodes that never return ---------------------------------------------------------------------------

RELEASE = threading.Event()


class NeverBackend(PyAVBackend):
    """decode_clip never returns for ``stuck`` files (until the test releases it); in a process it notes
    its pid first."""

    def __init__(self, stuck: set[str], pid_dir: str | None = None) -> None:
        super().__init__()
        self.stuck, self.pid_dir = stuck, pid_dir

    def decode_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        if info.path in self.stuck:
            if self.pid_dir is not None:
                Path(self.pid_dir, str(os.getpid())).touch()
                time.sleep(3600)
            RELEASE.wait()
        return super().decode_clip(info, frame_indices, **kw)


@pytest.fixture
def release() -> Any:
    RELEASE.clear()
    yield RELEASE
    RELEASE.set()


@pytest.mark.parametrize(("num_workers", "waves"), [(0, 3), (3, 1)])
def test_a_decode_that_never_returns(
    h264: list[Path], release: threading.Event, num_workers: int, waves: int
) -> None:
    ds = vl.VideoDataset.from_paths(h264)
    stuck = {str(h264[1]), str(h264[2]), str(h264[3])}
    loader = vl.VideoLoader(
        ds,
        batch_size=6,
        frames_per_clip=3,
        shuffle=False,
        num_workers=num_workers,
        on_error="skip",
        max_skip_fraction=1.0,  # 3 of 6 clips: what is skipped here, not the skip budget
        decode_timeout=1.0,
    )
    loader.backend = NeverBackend(stuck)
    for epoch in range(2):
        start = time.monotonic()
        (batch,) = list(loader)
        # One deadline for the clips running at once: with three workers, three stuck clips cost one
        # timeout, not three in turn; one worker meets them one after another (the good clips after them
        # are not blamed, they get a fresh deadline on the replacement worker).
        assert time.monotonic() - start < waves + 0.8
        assert batch.video_index.tolist() == [0, 4, 5]
        assert loader.stats["skipped_clips"] == 3 * (epoch + 1)
        assert all("decode_timeout" in f["reason"] for f in loader.stats["decode_failures"])
        assert loader.stats["abandoned_decodes"] >= 1
        # Stuck threads were retired and replaced: the pool is back to full strength.
        assert loader._pool.workers.alive() == max(1, num_workers)
    with pytest.raises(vl.DecodeError, match=r"decoding took longer than decode_timeout=1\.0s"):
        raising = vl.VideoLoader(
            ds, batch_size=6, frames_per_clip=3, num_workers=num_workers, decode_timeout=1.0
        )
        raising.backend = NeverBackend(stuck)
        list(raising)
    release.set()
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and sum(t.name.startswith("vidloader-decode") for t in threading.enumerate()) > 4
    ):
        time.sleep(0.05)
    loader.close()
    raising.close()


@pytest.mark.slow  # spawns worker processes
def test_a_stuck_process_is_terminated_and_replaced(h264: list[Path], tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_paths(h264)
    loader = vl.VideoLoader(
        ds,
        batch_size=3,
        frames_per_clip=3,
        shuffle=False,
        num_workers=2,
        worker_type="process",
        on_error="skip",
        max_skip_fraction=1.0,  # 1 of 6 clips: what is skipped here, not the skip budget
        decode_timeout=6.0,  # the deadline starts once the workers are up: decoding 3 frames takes milliseconds
        prefetch=1,
    )
    loader.backend = NeverBackend({str(h264[4])}, pid_dir=str(tmp_path))
    try:
        t0 = time.monotonic()
        batches = list(loader)
        # The deadline runs once every worker has started, also while one of them is stuck in its first
        # task (a start detected by warm-up calls waited for the stuck one: 600 s).
        assert time.monotonic() - t0 < 120
        assert sorted(clip_keys(batches)) == [(v, 0) for v in (0, 1, 2, 3, 5)]
        assert loader.stats["skipped_clips"] == 1 and loader.stats["abandoned_decodes"] >= 1
        (pid,) = [int(p.name) for p in tmp_path.iterdir()]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the process that hung is gone, not left running
        assert pid not in loader._pool.workers.pids()
    finally:
        loader.close()


@pytest.mark.slow  # spawns worker processes
def test_sigkilled_worker_is_replaced_and_every_clip_comes_once(h264: list[Path]) -> None:
    ds = vl.VideoDataset.from_paths(h264)
    loader = vl.VideoLoader(
        ds,
        batch_size=3,
        frames_per_clip=3,
        clips_per_video=4,
        num_workers=2,
        worker_type="process",
        prefetch=2,
        decode_timeout=120,
    )
    try:
        it = iter(loader)
        got = [next(it)]
        pids = loader._pool.workers.pids()
        assert pids
        os.kill(pids[0], signal.SIGKILL)
        got += list(it)
    finally:
        loader.close()
    keys = clip_keys(got)
    assert len(keys) == len(set(keys)) == 24
    assert set(keys) == {(c.video_index, c.clip_index) for c in loader.clip_plan(0)}
    assert loader.stats["skipped_clips"] == 0


def test_close_joins_the_prefetch_thread(h264: list[Path]) -> None:
    ds = vl.VideoDataset.from_paths(h264)
    loader = vl.VideoLoader(ds, batch_size=1, frames_per_clip=3, num_workers=2, prefetch=2)
    it = iter(loader)
    next(it)
    loader.close()  # while the prefetch thread runs ahead
    assert not any(t.name == "vidloader-prefetch" for t in threading.enumerate())
    it.close()


def test_loader_config_is_frozen_and_validated(h264: list[Path]) -> None:
    loader = vl.VideoLoader(vl.VideoDataset.from_paths(h264[:1]), batch_size=2, frames_per_clip=3)
    cfg = loader.config
    assert isinstance(cfg, LoaderConfig) and cfg.batch_size == loader.batch_size == 2
    with pytest.raises(AttributeError):
        cfg.batch_size = 3  # type: ignore[misc]
    with pytest.raises(vl.ConfigError, match="prefetch must be >= 1"):
        LoaderConfig(batch_size=1, frames_per_clip=cfg.frames_per_clip, prefetch=0)
    with pytest.raises(vl.ConfigError, match="decode_timeout must be positive"):
        LoaderConfig(batch_size=1, frames_per_clip=cfg.frames_per_clip, decode_timeout=True)
