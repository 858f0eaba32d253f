"""Converted frames written straight into the output rows are the bytes ``to_ndarray`` gives: odd widths
(padded RGB rows), resizes, repeated indices, strided output views, rotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vidloader as vl
from vidloader.backends import PyAVBackend
from vidloader.dataset import textured_frames, write_video


def _sequential(info: vl.VideoInfo, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
    import av
    from av.video.reformatter import VideoReformatter

    r, got = VideoReformatter(), {}
    with av.open(info.path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if size is None:
                got[i] = f.to_ndarray(format="rgb24")
            else:
                rgb = r.reformat(f, format="rgb24", width=size[1], height=size[0], interpolation="BILINEAR")
                got[i] = rgb.to_ndarray()
            if i >= max(indices):
                break
    return np.stack([got[i] for i in indices])


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> vl.VideoInfo:
    root = tmp_path_factory.mktemp("sink")
    # 50 px wide: 150-byte RGB rows, which FFmpeg pads; B-frames by default, GOP 10.
    write_video(root / "c" / "odd.mp4", textured_frames(30, 34, 50, seed=5), gop=10)
    return vl.VideoDataset.from_folder(root)[0]


@pytest.mark.parametrize("size", [None, (27, 35), (64, 96)])
def test_frames_in_place_are_the_sequential_decode(odd: vl.VideoInfo, size) -> None:
    idx = [3, 3, 12, 14, 29, 12]
    want = _sequential(odd, idx, size)
    got = PyAVBackend().decode_clip(odd, idx, resize=size).frames
    np.testing.assert_array_equal(got, want)
    # A strided view (a row of an NTHWC batch laid out as NCTHW-like) gets the same bytes.
    h, w = want.shape[1:3]
    batch = np.zeros((2, h, len(idx), w, 3), dtype=np.uint8)
    row = batch[1].transpose(1, 0, 2, 3)
    out = PyAVBackend().decode_clip(odd, idx, resize=size, out=row)
    assert out.frames is row and not batch[0].any()
    np.testing.assert_array_equal(row, want)


def test_rotated_clip_rotates_the_same_frames(odd: vl.VideoInfo) -> None:
    import dataclasses

    rotated = dataclasses.replace(odd, rotation=90)
    idx = [0, 7, 7]
    got = PyAVBackend().decode_clip(rotated, idx, apply_rotation=True).frames
    want = np.stack([np.rot90(f, k=1) for f in _sequential(odd, idx, None)])
    np.testing.assert_array_equal(got, want)


def test_wrong_output_buffer_is_refused_before_decoding(odd: vl.VideoInfo, tmp_path: Path) -> None:
    with pytest.raises(vl.DecodeError, match="does not fit"):
        PyAVBackend().decode_clip(odd, [1, 2], out=np.zeros((2, 34, 49, 3), np.uint8))
