"""The benchmark's dataset-shaped workloads (`vidloader bench --synthetic ucf-like|kinetics-like|ssv2-like`):
each file has the codec, container, size, rate and GOP structure of the dataset it stands for, and
vidloader decodes its clips exactly. Made shorter and fewer here than the benchmark makes them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

import vidloader as vl
from vidloader.backends import PyAVBackend
from vidloader.cli import WORKLOADS
from vidloader.cli._check import reference
from vidloader.cli._workloads import ensure_workload

# name: (codec, suffix, width, height, fps, frames between keyframes (None: one keyframe), B-frames)
SHAPES = {
    "ucf-like": ("mpeg4", ".avi", 320, 240, 25, 12, True),
    "kinetics-like": ("h264", ".mp4", 340, 256, 30, None, True),
    "ssv2-like": ("vp9", ".webm", 426, 240, 12, None, False),
}


def _nonref_frames(path: str) -> int:
    """Frames a decoder told to drop non-reference frames leaves out."""
    with av.open(path) as c:
        every = sum(1 for _ in c.decode(video=0))
    with av.open(path) as c:
        c.streams.video[0].codec_context.skip_frame = "NONREF"
        kept = sum(1 for _ in c.decode(video=0))
    return every - kept


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_dataset_shaped_workload(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codec, suffix, width, height, fps, gop, bframes = SHAPES[name]
    short = replace(WORKLOADS[name], files=1, seconds=2.5)
    monkeypatch.setitem(WORKLOADS, name, short)
    folder = ensure_workload(name, tmp_path, progress=False)
    (path,) = sorted((folder / "videos").iterdir())
    assert path.suffix == suffix
    info = vl.probe_video(path)
    assert (info.codec, info.width, info.height) == (codec, width, height)
    assert round(info.fps) == fps and info.num_frames == int(2.5 * fps)
    keys = [info.frame_pts.index(p) for p in info.keyframe_pts]
    assert keys == (list(range(0, info.num_frames, gop)) if gop else [0])
    # B-frames where the dataset has them: frames nothing refers to, which vidloader does not decode.
    assert (_nonref_frames(str(path)) > 0) == bframes
    backend = PyAVBackend()
    for start in (0, 5, info.num_frames - 16):
        clip = list(range(start, start + 16, 2))
        np.testing.assert_array_equal(backend.decode_clip(info, clip).frames, reference(info, clip))
