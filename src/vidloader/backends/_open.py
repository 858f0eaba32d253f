"""Opening a video for decoding: a local path as it is, a URL or tar member through the store layer's range
reads, with FFmpeg's stream-info pass kept from decoding what the probe already recorded."""

from __future__ import annotations

from typing import Any

from ..dataset import VideoInfo, open_source


def open_input(video: str | VideoInfo) -> Any:
    """``av.open`` for a file the probe already indexed: a local path as it is, a URL or tar member through
    the store layer's range reads (``vidloader.dataset.open_source``; given the VideoInfo, its read blocks
    are sized from the file's GOPs).

    The stream-info pass FFmpeg runs in every open decodes the first frames to learn what the probe has
    already recorded. ``skip_frame=all`` stops that for H.264 (65 ms -> 3 ms per open of a 1080p MP4,
    8 -> 1.7 ms at 360p, on every clip), but FFmpeg's VP9 decoder still decodes the keyframe (6.5 ms per
    open of a 360p WebM); ``codec_whitelist=none`` keeps the pass from opening a decoder at all: 0.2 ms
    (VP9) and 0.3 ms (360p H.264). Both options reach only the stream-info pass's own decoders, not the one
    PyAV opens afterwards from the container's parameters and the bitstream. The probe, which does need
    those fields, opens files the normal way; decoded frames are unchanged (the decode, zoo and store
    tests compare them with a normal open's sequential decode)."""
    import av
    import av.logging

    source, options = _source(video)
    # Without the first frame FFmpeg warns that the pixel format is unspecified: true and harmless here
    # (the decoder reads it from the bitstream), so the stream-info pass's messages are not shown.
    with av.logging.Capture(local=True):
        return av.open(source, metadata_errors="ignore", options=options)


_NO_STREAM_INFO_DECODE = {"skip_frame": "all", "codec_whitelist": "none"}


def _source(video: str | VideoInfo) -> tuple[Any, dict[str, str]]:
    if isinstance(video, str):
        source = open_source(video)
    else:
        source = open_source(video.path, gop_bytes=video.size_bytes // max(len(video.keyframe_pts), 1))
    if isinstance(source, str):
        return source, dict(_NO_STREAM_INFO_DECODE)
    # Without its decoders the stream-info pass never completes a stream's facts, so it reads on for its
    # whole analyze duration (5 s of media: megabytes per open at 1080p). Remote reads stop it after the
    # first packets: the decoders PyAV opens take their parameters from the container and bitstream, and
    # the frames are unchanged (tests/test_store.py decodes every test codec both ways).
    return source, {**_NO_STREAM_INFO_DECODE, "analyzeduration": "1"}
