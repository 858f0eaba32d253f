"""Probing one file with PyAV: exact frame count and timestamps from demuxing (no decode), stream facts."""

from __future__ import annotations

import logging
from pathlib import Path

from .._errors import ProbeError
from ._decode_check import decode_check, seek_start
from ._ffmpeg_log import enable_ffmpeg_log, ffmpeg_errors, ffmpeg_reason, forward_ffmpeg_log
from ._files import open_source, source_size
from ._info import VideoInfo

log = logging.getLogger("vidloader")

# FFmpeg log lines that mean the file is damaged even though demuxing did not raise
# (a truncated WebM only says "File ended prematurely").
_DAMAGE_MARKERS = ("ended prematurely", "truncat", "invalid data", "moov atom not found", "corrupt")


def probe_video(path: str | Path, *, video_stream: int | None = None, verify: bool = False) -> VideoInfo:
    """Index one file: every frame's pts from demuxing alone (no decode), stream facts.

    A file FFmpeg reports damaged while demuxing (cut off, resynced past bad bytes) is decoded once, and
    indexed with the frames that decode with no error that can touch them (a warning says how many).
    Damage only the decoder sees is found by ``verify``, which decodes every file once; without it, that
    damage is left to decode time, where the clips it touches fail. Either way the VideoInfo records it
    (``damage``, ``frames_decoded`` of ``frames_in_container``).

    Args:
        path: the media file.
        video_stream: index of the video stream to use (default: FFmpeg's best video stream).
        verify: decode every frame once; the index keeps every frame the container lists, and records
            how many decode and FFmpeg's first error.

    Returns:
        The file's VideoInfo.

    Raises:
        ProbeError: naming the file and the reason when it cannot be used (missing, empty, no video
            stream, unreadable, or no frame decodes).
    """
    import av

    path = str(path)
    size = source_size(path)
    logs: list = []
    enable_ffmpeg_log()
    try:
        with av.logging.Capture(local=True) as logs:
            container = av.open(open_source(path, cached=False), metadata_errors="ignore")
            try:
                return _probe_open(container, path, size, logs, video_stream=video_stream, verify=verify)
            finally:
                container.close()
    except ProbeError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        # PyAV appends "last error log" to its exceptions from a process-wide record, which a parallel
        # probe can overwrite or another process may not have: it is dropped, and this thread's own
        # capture says what FFmpeg logged for this file, so a reason reads the same in every engine.
        detail = ffmpeg_reason(exc)
        errors = ffmpeg_errors(logs)
        if errors:
            detail += f"; FFmpeg: {errors[-1]}"
        raise ProbeError(path, f"not a readable media file ({type(exc).__name__}: {detail})") from exc
    finally:
        forward_ffmpeg_log(path, logs)


def _damage(logs: list) -> str:
    """What FFmpeg logged that means the file is damaged, even though demuxing did not raise: demuxers
    resync silently past damaged bytes (losing frames) and only log it, at ERROR level; a truncated WebM
    logs a mere WARNING, recognised by its text."""
    import av.logging

    for level, _, msg in logs:
        text = str(msg).strip()
        if level is not None and (
            level <= av.logging.ERROR
            or (level <= av.logging.WARNING and any(m in text.lower() for m in _DAMAGE_MARKERS))
        ):
            return text
    return ""


def _probe_open(
    container, path: str, size: int, logs: list, *, video_stream: int | None, verify: bool
) -> VideoInfo:
    stream = _choose_stream(container, path, video_stream)
    cc = stream.codec_context
    if stream.time_base is None:
        raise ProbeError(path, "video stream has no time base")
    pts, keys, damage = _demux_index(container, stream, path, logs)
    listed, decoded = len(pts), -1
    if damage or verify:
        pts, keys, damage, (decoded, listed) = _checked(container, stream, path, (pts, keys), damage)
    if not pts:
        raise ProbeError(path, "video stream has no frames")
    if len(set(pts)) != len(pts):
        raise ProbeError(path, "video stream has repeated timestamps; frames cannot be addressed by pts")
    if not keys or keys[0] > pts[0]:
        # Some muxers do not flag the first frame; decoding always starts there, so it acts as one.
        keys.insert(0, pts[0])
    tb = stream.time_base
    n = len(pts)
    span = (pts[-1] - pts[0]) * tb
    if stream.average_rate:
        fps = float(stream.average_rate)
    elif n > 1 and span > 0:
        fps = float((n - 1) / span)
    else:
        fps = 0.0
    if fps <= 0:
        raise ProbeError(path, "cannot determine the frame rate")
    frame_dur = float(span) / (n - 1) if n > 1 else 1.0 / fps
    rotation = _first_frame_rotation(container, stream, path)
    return VideoInfo(
        path=path,
        label=-1,
        num_frames=n,
        fps=fps,
        duration=float(span) + frame_dur,
        width=int(cc.width),
        height=int(cc.height),
        codec=str(cc.codec.canonical_name),
        pix_fmt=str(cc.pix_fmt or "unknown"),
        rotation=rotation,
        has_audio=len(container.streams.audio) > 0,
        stream_index=int(stream.index),
        time_base_num=int(tb.numerator),
        time_base_den=int(tb.denominator),
        size_bytes=size,
        frame_pts=tuple(pts),
        keyframe_pts=tuple(keys),
        audio_streams=tuple(int(s.index) for s in container.streams.audio),
        frames_in_container=listed,
        frames_decoded=decoded,
        damage=damage,
    )


def _choose_stream(container, path: str, video_stream: int | None):
    videos = list(container.streams.video)
    if not videos:
        raise ProbeError(path, "has no video stream")
    if video_stream is None:
        return container.streams.best("video") or videos[0]
    matches = [s for s in videos if s.index == video_stream]
    if not matches:
        raise ProbeError(
            path,
            f"video_stream={video_stream} is not a video stream; video streams: {[s.index for s in videos]}",
        )
    return matches[0]


def _demux_index(container, stream, path: str, logs: list) -> tuple[list[int], list[int], str]:
    """Sorted pts of every frame and of the keyframes, from demuxing alone, and what FFmpeg logged that
    says the file is damaged ("" when nothing)."""
    import av

    pts: list[int] = []
    keys: list[int] = []
    stopped = ""
    try:
        for packet in container.demux(stream):
            # Size-0 packets flush the demuxer; discard-flagged ones are dropped by the decoder (edit lists).
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                if packet.dts is None:
                    raise ProbeError(
                        path, "video packets carry no timestamps; remux the file into a container"
                    )
                packet_pts = packet.dts
            else:
                packet_pts = packet.pts
            pts.append(int(packet_pts))
            if packet.is_keyframe:
                keys.append(int(packet_pts))
    except av.error.FFmpegError as exc:
        if not pts:
            raise
        stopped = f"demuxing stopped: {exc}"  # a cut-off file can end in an error after good packets
    pts.sort()
    keys.sort()
    return pts, keys, _damage(logs) or stopped  # from the open on: header damage counts too


def _checked(
    container, stream, path: str, index: tuple[list[int], list[int]], damage: str
) -> tuple[list[int], list[int], str, tuple[int, int]]:
    """A full decode of the file: (pts, keyframe pts, damage, (frames that decode, frames in the container)).

    A file damaged in its container (``damage`` from demuxing) is indexed with only the frames that decode;
    one whose damage only the decoder sees keeps every listed frame (clips over the damage fail at decode
    time), with the damage recorded."""
    pts, keys = index
    check = decode_check(container, stream, set(pts))
    if not check.good:
        raise ProbeError(
            path, f"no frame decodes: file is damaged or truncated (FFmpeg: {damage or check.error})"
        )
    listed, decoded = len(pts), len(check.good)
    if damage:
        # A cut-off MP4 whose index is at the front still lists every frame it had.
        listed = max(listed, int(stream.frames or 0))
        log.warning(
            "vidloader: %s is damaged (FFmpeg: %s); indexed the %d of %d frames that decode",
            path,
            damage,
            decoded,
            listed,
        )
        return check.good, sorted(set(keys).intersection(check.good)), damage, (decoded, listed)
    damage = check.error
    if not damage and decoded < listed:
        damage = f"the decoder gave no frame for {listed - decoded} of the {listed} listed frames"
    if damage:
        log.warning(
            "vidloader: %s is damaged (FFmpeg: %s); %d of its %d frames decode, clips over the others fail",
            path,
            damage,
            decoded,
            listed,
        )
    return pts, keys, damage, (decoded, listed)


def _first_frame_rotation(container, stream, path: str) -> int:
    """Decode the first frame: proves a decoder exists for the codec, and the display matrix (rotation)
    is only exposed on decoded frames."""
    import av

    seek_start(container, stream)
    stream.codec_context.flush_buffers()
    try:
        with av.logging.Capture(local=True):  # decode messages here are not damage of the file
            for frame in container.decode(stream):
                return round(frame.rotation or 0) % 360
    except av.error.FFmpegError as exc:
        raise ProbeError(path, f"first frame cannot be decoded ({stream.codec_context.name}: {exc})") from exc
    raise ProbeError(path, f"no frame could be decoded ({stream.codec_context.name})")
