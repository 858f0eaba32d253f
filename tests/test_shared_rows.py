"""Process workers write clips straight into batch memory shared with them (``loader/_host_memory.py``):
the batches equal thread workers', a batch the caller holds is never written again, the /dev/shm files go
away with the loader, and a /dev/shm without room falls back to sending frames, with a warning."""

from __future__ import annotations

import errno
import gc
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import PyAVBackend
from vidloader.dataset import textured_frames, write_video
from vidloader.loader import _host_memory
from vidloader.loader._host_memory import HostBuffers

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="shared batch memory lives in /dev/shm")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("shared_rows")
    paths = []
    for i in range(4):
        paths.append(root / f"v{i}.mp4")
        write_video(paths[-1], textured_frames(30 + 7 * i, 24, 40, seed=i), gop=8, bframes=2)
    return vl.VideoDataset.from_paths(paths)


def ours() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith(f"vidloader-{os.getpid()}-")}


def batches(ds: vl.VideoDataset, worker_type: str, **kw: object) -> tuple[list[vl.ClipBatch], set[str]]:
    loader = vl.VideoLoader(
        ds, batch_size=3, frames_per_clip=5, frame_stride=2, clips_per_video=2, num_workers=2,
        worker_type=worker_type, seed=3, **kw,
    )  # fmt: skip
    try:
        got, seen = [], set()
        for b in loader:
            got.append(b)
            seen |= ours()
        return got, seen
    finally:
        loader.close()


@pytest.mark.parametrize("layout", ["NCTHW", "NTHWC"])
def test_process_workers_write_the_same_batches_into_shared_memory(
    videos: vl.VideoDataset, layout: str
) -> None:
    before = ours()
    want, _ = batches(videos, "thread", output_layout=layout)
    got, seen = batches(videos, "process", output_layout=layout)
    assert seen - before, "the process pass made no shared batch buffer"
    assert ours() == before  # unlinked when the loader closed
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g.video, w.video) and torch.equal(g.frame_index, w.frame_index)


def test_batches_held_by_the_caller_are_never_written_again(videos: vl.VideoDataset) -> None:
    """Every batch of two passes is kept (not copied) while the workers go on writing later batches: each
    still holds the frames it had when it was delivered."""
    loader = vl.VideoLoader(
        videos, batch_size=2, frames_per_clip=4, clips_per_video=2, num_workers=2, worker_type="process",
        prefetch=1, seed=5,
    )  # fmt: skip
    try:
        held, copies = [], []
        for epoch in range(2):
            loader.set_epoch(epoch)
            for b in loader:
                held.append(b.video)
                copies.append(b.video.clone())
        assert len({t.data_ptr() for t in held}) == len(held)  # no buffer was handed out twice
        assert all(torch.equal(h, c) for h, c in zip(held, copies, strict=True))
    finally:
        loader.close()


def test_no_room_in_dev_shm_falls_back_to_sending_frames(
    videos: vl.VideoDataset, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    want, _ = batches(videos, "thread")

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_host_memory.os, "posix_fallocate", full)
    before = ours()
    with caplog.at_level(logging.WARNING, logger="vidloader"):
        got, seen = batches(videos, "process")
    assert seen == before == ours()  # no file made, none left behind
    assert "no room for a" in caplog.text and "/dev/shm" in caplog.text
    assert all(torch.equal(g.video, w.video) for g, w in zip(got, want, strict=True))


def test_a_worker_unmaps_buffers_the_loader_let_go(tmp_path: Path) -> None:
    pool = HostBuffers(keep=0)
    first = pool.take((2, 3, 4, 3), shared=True)
    row = pool.share(first[1].numpy())
    assert row is not None and row.offset == 3 * 4 * 3
    first[1] = 7
    np.testing.assert_array_equal(_host_memory._row_array(row), 7)  # the worker's view of the same memory
    del first
    second = pool.take((5,), shared=True)  # the first buffer is idle and over ``keep``: let go
    assert row.name not in {n for n in os.listdir("/dev/shm")}
    other = pool.share(second[1:].numpy())
    assert other is not None
    _host_memory._row_array(other)
    assert row.name not in _host_memory._mapped and other.name in _host_memory._mapped
    pool.clear()
    assert other.name not in os.listdir("/dev/shm")
    assert pool.share(np.zeros(3, np.uint8)) is None  # private memory has no shared row


class LateBackend(PyAVBackend):
    """Decodes one clip after a pause, so that its call is still running when the pass that submitted it
    has ended and the next one has begun."""

    def __init__(self, late: tuple[str, int]) -> None:
        super().__init__()
        self.late = late

    def decode_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        if (info.path, frame_indices[0]) == self.late:
            time.sleep(1.5)
        return super().decode_clip(info, frame_indices, **kw)


def test_a_late_call_of_an_ended_pass_never_writes_into_a_later_batch(videos: vl.VideoDataset) -> None:
    """A process worker's call goes on after its pass ended (an Event does not reach it). The buffer it
    writes into is not handed out again before the call is over: every batch of the next pass still holds,
    once that call is done, what it held when it was delivered, and equals the thread workers' batch.
    (Handed out at once, the late clip landed in a batch of the next pass that the caller held.)"""
    kw = dict(batch_size=2, frames_per_clip=6, clips_per_video=2, num_workers=2, prefetch=2, shuffle=False)
    want = vl.VideoLoader(videos, worker_type="thread", **kw)  # type: ignore[arg-type]
    loader = vl.VideoLoader(videos, worker_type="process", **kw)  # type: ignore[arg-type]
    late = next(c for c in loader.clip_plan(0) if c.video_index == 1)  # in the second batch
    loader.backend = LateBackend((videos[1].path, late.frame_indices[0]))
    try:
        it = iter(loader)
        next(it)
        it.close()  # the late call has started in a worker: it cannot be cancelled
        del it
        gc.collect()  # nothing of the first pass is left to hold its buffers
        loader.backend = PyAVBackend()
        loader.set_epoch(1)
        want.set_epoch(1)
        held = list(loader)  # decoded by the other worker meanwhile
        copies = [b.video.clone() for b in held]
        time.sleep(2.0)  # the late call is over
        for b, c, w in zip(held, copies, want, strict=True):
            assert torch.equal(b.video, c) and torch.equal(c, w.video)
    finally:
        loader.close()
        want.close()


def test_clips_with_audio_come_back_from_shared_memory_with_their_audio(tmp_path: Path) -> None:
    """A task's result with audio (frames in a shared row, the audio span pickled) is put back together:
    the same video and audio as thread workers give."""
    rate = 16000
    t = np.arange(2 * rate) / rate
    audio = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    paths = [
        write_video(tmp_path / f"a{i}.mp4", textured_frames(50, 24, 40, seed=i), fps=25, audio=audio,
                    audio_rate=rate)
        for i in range(2)
    ]  # fmt: skip
    ds = vl.VideoDataset.from_paths(paths)
    got, seen = {}, {}
    for wt in ("thread", "process"):
        got[wt], seen[wt] = batches(ds, wt, audio=vl.AudioSpec(sample_rate=rate))
    assert seen["process"], "the process pass made no shared batch buffer"
    assert len(got["thread"]) == len(got["process"]) == 2
    for g, w in zip(got["process"], got["thread"], strict=True):
        assert g.audio is not None and w.audio is not None and g.audio.abs().max() > 0.1
        assert torch.equal(g.video, w.video) and torch.equal(g.audio, w.audio)


def test_frames_a_worker_sent_as_pixels_are_copied_into_their_row() -> None:
    """A row the pool no longer tracked goes to the worker as an array and comes back as pixels: the
    loader copies them into its row instead of keeping the worker's copy."""
    from vidloader.backends import DecodedClip
    from vidloader.loader._host_memory import SharedRow, attach_rows

    row = np.zeros((2, 3, 4, 3), np.uint8)
    sent = DecodedClip(np.full((2, 3, 4, 3), 9, np.uint8), (0, 1), (0.0, 0.04))
    placed = attach_rows(sent, row)
    assert placed.frames is row and (row == 9).all()
    ref = sent.swap_frames(lambda f: SharedRow("x", 0, f.shape, f.strides))
    assert attach_rows(ref, row).frames is row
    assert attach_rows(sent, None) is sent
