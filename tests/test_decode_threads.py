"""FFmpeg's own threads in the PyAV backend (``PyAVBackend(threads=N)``, N != 1: frame and slice threads):
decoding never hangs, frames are those of a single-threaded decode, damage is still caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import vidloader as vl
from media import MediaLibrary, media_fixture  # noqa: F401
from vidloader.backends import PyAVBackend
from vidloader.dataset import textured_frames, write_video

# Two threads decode with frame threads while FFmpeg's log callback is Python's (vidloader always installs
# it): each clip's decoder is freed holding the GIL while its frame threads may still log.
_TWO_WORKERS = """
import sys, threading
import numpy as np
import vidloader as vl
from vidloader.backends import PyAVBackend
one = PyAVBackend()
threaded = [PyAVBackend(threads=2), PyAVBackend(threads=2, skip_nonref=False), PyAVBackend(threads=0)]
bad, count = [], 0
jobs = []
for path in sys.argv[1:]:
    info = vl.probe_video(path)
    for s in range(0, info.num_frames - 8, 3):
        for b in threaded:
            jobs.append((info, list(range(s, s + 8, 2)), b))
def work(k):
    global count
    for info, clip, b in jobs[k::2]:
        if not np.array_equal(b.decode_clip(info, clip).frames, one.decode_clip(info, clip).frames):
            bad.append((info.path, clip, repr(b)))
        count += 1
ts = [threading.Thread(target=work, args=(k,)) for k in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
print("clips", count, "bad", bad)
"""


def test_frame_threads_in_two_workers_neither_hang_nor_change_frames(
    media: MediaLibrary, tmp_path: Path
) -> None:
    # Before the decoder was flushed ahead of being freed, this deadlocked within seconds (gdb: one thread
    # in avcodec_free_context holding the GIL, a frame thread in PyAV's log callback waiting for it). A
    # child process, so a regression fails this test instead of hanging the run.
    script = tmp_path / "frame_threads.py"
    script.write_text(_TWO_WORKERS)
    paths = [str(media.path(n)) for n in ("h264", "mpeg4", "vp9", "hevc")]
    try:
        out = subprocess.run(
            [sys.executable, str(script), *paths], capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        pytest.fail("two workers decoding with frame threads did not finish in 240 s (deadlock)")
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("clips ") and last.endswith("bad []"), last
    assert int(last.split()[1]) >= 100


def _corrupt_keyframe(src: Path, dst: Path, frame_index: int) -> None:
    """Flip the slice data of one keyframe (NAL length and header kept): demuxing sees nothing wrong."""
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size, p.is_keyframe) for p in c.demux(video=0) if p.size]
    pos, size, key = packets[frame_index]
    assert key
    data = bytearray(src.read_bytes())
    data[pos + 16 : pos + size] = bytes(b ^ 0x5A for b in data[pos + 16 : pos + size])
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize("threads", [2, 0])
def test_frame_threads_still_catch_damage(tmp_path: Path, threads: int) -> None:
    # The decoder's error messages come from its frame threads, out of the clip's log capture: the
    # frames' error flags must catch the damaged GOP instead, and the GOP before it stays exact.
    src = write_video(tmp_path / "src.mp4", textured_frames(60, 48, 64), gop=20)
    bad = tmp_path / "bad.mp4"
    _corrupt_keyframe(src, bad, 40)
    info = vl.probe_video(bad)
    backend = PyAVBackend(threads=threads)
    good = backend.decode_clip(info, list(range(20, 30))).frames
    np.testing.assert_array_equal(good, PyAVBackend().decode_clip(info, list(range(20, 30))).frames)
    for _ in range(2):
        with pytest.raises(vl.DecodeError) as err:
            backend.decode_clip(info, list(range(42, 50)))
        assert err.value.path == str(bad) and "decoder error" in err.value.reason
