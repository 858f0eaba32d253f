"""A decode whose loader pass has ended stops at its next packet (``run_until`` / ``raise_if_stopped``)
instead of finishing a clip nobody will read, and is never counted as a failed clip."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import DecodeStopped, PyAVBackend, run_until
from vidloader.dataset import textured_frames, write_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoDataset:
    root = tmp_path_factory.mktemp("stop")
    paths = []
    for i in range(2):
        paths.append(root / f"v{i}.mp4")
        write_video(paths[-1], textured_frames(40, 32, 48, seed=i), gop=10, bframes=2)
    return vl.VideoDataset.from_paths(paths)


def test_a_set_stop_ends_the_decode_and_an_unset_one_changes_nothing(videos: vl.VideoDataset) -> None:
    backend, info = PyAVBackend(), videos[0]
    stop = threading.Event()
    plain = backend.decode_clip(info, [3, 9, 17])
    under = run_until(stop, backend.decode_clip, info, [3, 9, 17])
    np.testing.assert_array_equal(np.asarray(under.frames), np.asarray(plain.frames))
    stop.set()
    with pytest.raises(DecodeStopped, match="has ended"):
        run_until(stop, backend.decode_clip, info, [3, 9, 17])
    # The stop belongs to the call: the same thread decodes normally afterwards.
    np.testing.assert_array_equal(np.asarray(backend.decode_clip(info, [3, 9, 17]).frames), plain.frames)


def test_a_clip_running_when_the_pass_ends_stops_at_its_next_packet(
    videos: vl.VideoDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker is held inside the second video's decode (by a spy on the per-packet check) until the
    consumer has left the loop; the check then stops it, and the next pass still delivers that clip."""
    from vidloader.backends import _walk

    real = _walk.raise_if_stopped
    closed, seen = threading.Event(), []
    second = videos[1].path

    def spy() -> None:
        walk = sys._getframe(1).f_locals["self"]
        if walk.info.path == second:
            closed.wait(10)
        try:
            real()
        except DecodeStopped:
            seen.append(walk.info.path)
            raise

    monkeypatch.setattr(_walk, "raise_if_stopped", spy)
    loader = vl.VideoLoader(
        videos, batch_size=1, frames_per_clip=8, shuffle=False, num_workers=1, prefetch=1, decode_timeout=30
    )
    try:
        assert [c.video_index for c in loader.clip_plan(0)] == [0, 1]
        it = iter(loader)
        next(it)
        it.close()  # a `break` after the first batch: the worker is inside video 1's clip
        closed.set()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [second]
        assert loader.stats["skipped_clips"] == 0 and loader.stats["abandoned_decodes"] == 0
        loader.set_epoch(1)
        batches = list(loader)
        assert [int(b.video_index[0]) for b in batches] == [0, 1]
        frames = batches[1].frame_index[0].tolist()
        want = PyAVBackend().decode_clip(videos[1], frames).frames
        np.testing.assert_array_equal(batches[1].video[0].permute(1, 2, 3, 0).numpy(), np.asarray(want))
    finally:
        loader.close()


def _spin(seconds: float) -> str:
    """A worker call that checks its stop as a decode does per packet, for ``seconds`` at most."""
    from vidloader.backends import raise_if_stopped

    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        raise_if_stopped()
        time.sleep(0.01)
    return "ran out"


def test_a_process_workers_call_stops_once_its_pass_stop_is_set() -> None:
    """A process worker cannot read an Event; it reads its pass's slot of the pool's shared flags."""
    from vidloader.loader._workers import DecodePool

    pool = DecodePool(num_workers=1, worker_type="process")
    try:
        assert pool.submit(_spin, 0.2).result(timeout=120) == "ran out"  # started, and no stop asked
        first, second = pool.new_stop(), pool.new_stop()
        running = pool.submit(_spin, 60.0, stop=first)
        time.sleep(0.5)
        t0 = time.monotonic()
        first.set()
        assert isinstance(running.exception(timeout=20), DecodeStopped)
        assert time.monotonic() - t0 < 5  # at its next check, not after its 60 s
        # Another pass's stop is its own slot; an Event the pool did not make stays in this process.
        assert pool.submit(_spin, 0.3, stop=second).result(timeout=20) == "ran out"
        foreign = threading.Event()
        foreign.set()
        assert pool.submit(_spin, 0.3, stop=foreign).result(timeout=20) == "ran out"
    finally:
        pool.close()


def test_a_pass_over_process_workers_ended_early_leaves_them_to_the_next(videos: vl.VideoDataset) -> None:
    loader = vl.VideoLoader(
        videos, batch_size=1, frames_per_clip=8, shuffle=False, num_workers=1, worker_type="process"
    )
    try:
        for batch in loader:
            assert int(batch.video_index[0]) == 0
            break
        assert [int(b.video_index[0]) for b in loader] == [0, 1]
    finally:
        loader.close()
