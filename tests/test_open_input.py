"""How the decoders open a file (backends/_open.py): the stream-info pass runs without a decoder only for the
codecs where that changes no frame. The evidence: every zoo file (and ../shared/media) opened both ways and
decoded sequentially, against a plain ``av.open``; then every clip of the MPEG-1 program stream that needs
the decoder, through the backend, and what the backend does when frames and timestamps are mispaired."""

from __future__ import annotations

from typing import Any

import av
import av.logging
import numpy as np
import pytest

import vidloader as vl
from media import SHARED, probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import PyAVBackend, _open
from zoo import HEALTHY, Zoo, zoo_fixture  # noqa: F401  (fixture `zoo`)

SOURCES = [*HEALTHY, *(f"shared:{n}" for n in sorted(SHARED))]
WITH_DECODER = {"skip_frame": "all"}
WITHOUT_DECODER = {"skip_frame": "all", "codec_whitelist": "none"}


def sequential(path: str, options: dict[str, str], stream_index: int) -> list[tuple[int, Any]]:
    """(pts, rgb24 frame) of every frame, decoding from the start after an open with ``options``."""
    with av.logging.Capture(local=True):
        container = av.open(path, options=options, metadata_errors="ignore")
    with container:
        stream = container.streams[stream_index]
        return [(int(f.pts), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]


def same_frames(got: list[tuple[int, Any]], ref: dict[int, np.ndarray]) -> bool:
    return [p for p, _ in got] == sorted(ref) and all(np.array_equal(a, ref[p]) for p, a in got)


@pytest.mark.parametrize("name", SOURCES)
def test_open_options_decode_every_frame_as_a_plain_open(zoo: Zoo, name: str) -> None:
    path = zoo.path(name)
    info = vl.probe_video(path)
    ref = zoo.reference(name)
    chosen = _open.open_options(info.codec)
    assert chosen["skip_frame"] == "all"
    assert same_frames(sequential(str(path), chosen, info.stream_index), ref)
    if info.codec in _open.NO_STREAM_INFO_DECODER:
        assert chosen == WITHOUT_DECODER
    else:
        assert chosen == WITH_DECODER
    # The cheaper open (no decoder in the stream-info pass) is exact for every codec it is used for.
    without = same_frames(sequential(str(path), WITHOUT_DECODER, info.stream_index), ref)
    assert without or info.codec not in _open.NO_STREAM_INFO_DECODER
    if info.codec == "mpeg1video":
        # Why MPEG-1 is not in the set: without the pass's decoder, frames get their neighbours' pts.
        assert not without


def test_mpeg1_program_stream_every_clip_exact(zoo: Zoo) -> None:
    info = vl.probe_video(zoo.path("mpg_mpeg1"))
    assert info.codec == "mpeg1video" and info.has_audio and info.keyframe_pts == (info.frame_pts[0],)
    assert info.frame_pts[0] * info.time_base > 0.5  # the program stream's muxer delay
    ref = zoo.reference("mpg_mpeg1")
    backend = PyAVBackend()
    n = info.num_frames
    clips = [[6, 7, 8], list(range(30, 41)), [n - 1], [0, 1], *([i] for i in range(0, n, 7))]
    for clip in clips:
        got = backend.decode_clip(info, clip)
        for j, i in enumerate(clip):
            assert np.array_equal(got.frames[j], ref[info.frame_pts[i]]), f"frame {i} of clip {clip}"


def test_mispaired_timestamps_fail_the_clip_never_a_wrong_frame(
    zoo: Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force the open that loses MPEG-1's reorder delay: the decoder then gives one pts twice, and the walk
    # must refuse the clip instead of handing out the frame it paired with that pts.
    monkeypatch.setattr(_open, "open_options", lambda codec: dict(WITHOUT_DECODER))
    info = vl.probe_video(zoo.path("mpg_mpeg1"))
    ref = zoo.reference("mpg_mpeg1")
    backend = PyAVBackend()
    failed = []
    for start in range(0, info.num_frames - 4, 4):
        clip = list(range(start, start + 5))
        try:
            got = backend.decode_clip(info, clip)
        except vl.DecodeError as exc:
            failed.append(exc.reason)
            continue
        for j, i in enumerate(clip):
            assert np.array_equal(got.frames[j], ref[info.frame_pts[i]]), f"frame {i}: a wrong frame served"
    assert failed and all("gave two frames this timestamp" in r for r in failed)


def test_mpeg1_program_stream_through_loader_process_workers(zoo: Zoo) -> None:
    # Worker processes open the file themselves: the open options reach them too.
    ds = vl.VideoDataset.from_paths([zoo.path("mpg_mpeg1")])
    ref = zoo.reference("mpg_mpeg1")
    loader = vl.VideoLoader(
        ds,
        batch_size=4,
        frames_per_clip=6,
        sampling="sliding",
        num_workers=2,
        worker_type="process",
        output_layout="NTHWC",
        shuffle=False,
        decode_timeout=60,
    )
    try:
        batches = list(loader)
    finally:
        loader.close()
    info, rows = ds[0], 0
    for b in batches:
        for r in range(len(b)):
            for j, i in enumerate(b.frame_index[r].tolist()):
                assert np.array_equal(b.video[r, j].numpy(), ref[info.frame_pts[i]]), f"frame {i}"
            rows += 1
    assert rows == len(loader.clip_plan(0)) and loader.stats["skipped_clips"] == 0
