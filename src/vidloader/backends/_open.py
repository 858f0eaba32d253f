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
    those fields, opens files the normal way.

    ``codec_whitelist=none`` is used only for the codecs of ``NO_STREAM_INFO_DECODER``: a stream-info pass
    without a decoder also leaves out what that decoder would have told the container, and MPEG-1 needs
    one of those facts (see there). Decoded frames are unchanged either way (tests/test_open_input.py
    decodes every zoo file through ``open_input`` and compares it with a normal open's sequential decode;
    the decode, zoo and store tests do the same per clip)."""
    import av
    import av.logging

    source, options = _source(video)
    # Without the first frame FFmpeg warns that the pixel format is unspecified: true and harmless here
    # (the decoder reads it from the bitstream), so the stream-info pass's messages are not shown.
    with av.logging.Capture(local=True):
        return av.open(source, metadata_errors="ignore", options=options)


# Codecs whose decoders learn everything they need, the reorder delay included, from the bitstream they are
# given, so the stream-info pass may run without opening one (checked file by file against a normal open
# in tests/test_open_input.py). Not MPEG-1: its decoder has a one-frame reorder delay even with P-frames
# only, which FFmpeg records as the stream's has_b_frames only when the stream-info pass decodes; without
# it the decoder pairs every frame with the next packet's timestamp (a clip came back with the wrong
# frames, others with none). MPEG-2, MPEG-4 Part 2 and MJPEG gain nothing measurable from it (0.4-0.6 ms
# per open either way on the zoo files), so they open the plain way too.
NO_STREAM_INFO_DECODER = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})


def open_options(codec: str | None) -> dict[str, str]:
    """The ``av.open`` options that keep the stream-info pass from decoding a stream of ``codec``.

    Args:
        codec: the video codec's canonical name (``VideoInfo.codec``); None when not known.

    Returns:
        ``skip_frame=all`` for every codec, and ``codec_whitelist=none`` for those of
        ``NO_STREAM_INFO_DECODER``.
    """
    if codec in NO_STREAM_INFO_DECODER:
        return {"skip_frame": "all", "codec_whitelist": "none"}
    return {"skip_frame": "all"}


def _source(video: str | VideoInfo) -> tuple[Any, dict[str, str]]:
    if isinstance(video, str):
        source, options = open_source(video), open_options(None)
    else:
        source = open_source(video.path, gop_bytes=video.size_bytes // max(len(video.keyframe_pts), 1))
        options = open_options(video.codec)
    if isinstance(source, str):
        return source, options
    # Without its decoders the stream-info pass never completes a stream's facts, so it reads on for its
    # whole analyze duration (5 s of media: megabytes per open at 1080p). Remote reads stop it after the
    # first packets: the decoders PyAV opens take their parameters from the container and bitstream, and
    # the frames are unchanged (tests/test_store.py decodes every test codec both ways).
    return source, {**options, "analyzeduration": "1"}
