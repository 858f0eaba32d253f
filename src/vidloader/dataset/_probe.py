"""Probing one file with PyAV: exact frame count and timestamps from demuxing (no decode), stream facts."""

from __future__ import annotations

from pathlib import Path

from .._errors import ProbeError
from ._files import open_source, source_size
from ._info import VideoInfo

# FFmpeg log lines that mean the file is damaged even though demuxing did not raise
# (a truncated WebM only says "File ended prematurely").
_DAMAGE_MARKERS = ("ended prematurely", "truncat", "invalid data", "moov atom not found", "corrupt")


def enable_ffmpeg_log() -> None:
    import av.logging

    # PyAV installs no FFmpeg log callback by default; without one, damage that FFmpeg only logs (a
    # truncated WebM) would go unnoticed. Captures are per thread, so parallel probes do not mix.
    level = av.logging.get_level()
    if level is None or level < av.logging.WARNING:
        av.logging.set_level(av.logging.WARNING)
    # PyAV's de-duplication of repeated messages is global across threads and files: a message equal to
    # the previous one (a second truncated WebM) is swallowed, and the held-back "(repeated N times)" tally
    # lands in whichever capture logs next, so one file's damage would be blamed on another.
    if av.logging.get_skip_repeated():
        av.logging.set_skip_repeated(False)


def probe_video(path: str | Path, *, video_stream: int | None = None) -> VideoInfo:
    """Index one file. Raises ProbeError naming the file and the reason when it cannot be used."""
    import av

    path = str(path)
    size = source_size(path)
    messages: list[tuple[int, str]] = []
    logs: list = []
    enable_ffmpeg_log()
    try:
        with av.logging.Capture(local=True) as logs:
            container = av.open(open_source(path, cached=False), metadata_errors="ignore")
            try:
                info = _probe_open(container, path, size, video_stream)
            finally:
                container.close()
        messages = [(m[0], str(m[2])) for m in logs if m[0] is not None and m[0] <= av.logging.WARNING]
    except ProbeError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        # PyAV appends "last error log" to its exceptions from a process-wide record, which a parallel
        # probe can overwrite; this thread's own capture says what FFmpeg logged for this file.
        detail = str(exc)
        errors = [str(m[2]).strip() for m in logs if m[0] is not None and m[0] <= av.logging.ERROR]
        if errors and errors[-1] not in detail:
            detail += f"; FFmpeg: {errors[-1]}"
        raise ProbeError(path, f"not a readable media file ({type(exc).__name__}: {detail})") from exc
    for level, msg in messages:
        # Demuxers resync silently past damaged bytes (losing frames) and only log it, at ERROR level;
        # a truncated WebM logs a mere WARNING, recognised by its text.
        if level <= av.logging.ERROR or any(marker in msg.lower() for marker in _DAMAGE_MARKERS):
            raise ProbeError(path, f"file is damaged or truncated (FFmpeg: {msg.strip()})")
    return info


def _probe_open(container, path: str, size: int, video_stream: int | None) -> VideoInfo:

    videos = list(container.streams.video)
    if not videos:
        raise ProbeError(path, "has no video stream")
    if video_stream is None:
        stream = container.streams.best("video") or videos[0]
    else:
        matches = [s for s in videos if s.index == video_stream]
        if not matches:
            raise ProbeError(
                path,
                f"video_stream={video_stream} is not a video stream; video streams: {[s.index for s in videos]}",
            )
        stream = matches[0]
    cc = stream.codec_context
    if stream.time_base is None:
        raise ProbeError(path, "video stream has no time base")
    pts: list[int] = []
    keys: list[int] = []
    for packet in container.demux(stream):
        # Size-0 packets flush the demuxer; discard-flagged ones are dropped by the decoder (edit lists).
        if packet.size == 0 or packet.is_discard:
            continue
        if packet.pts is None:
            if packet.dts is None:
                raise ProbeError(path, "video packets carry no timestamps; remux the file into a container")
            packet_pts = packet.dts
        else:
            packet_pts = packet.pts
        pts.append(int(packet_pts))
        if packet.is_keyframe:
            keys.append(int(packet_pts))
    if not pts:
        raise ProbeError(path, "video stream has no frames")
    pts.sort()
    if len(set(pts)) != len(pts):
        raise ProbeError(path, "video stream has repeated timestamps; frames cannot be addressed by pts")
    keys.sort()
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
    rotation = _first_frame_rotation(container, stream, path, keys[0])
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
    )


def _first_frame_rotation(container, stream, path: str, first_key_pts: int) -> int:
    """Decode the first frame: proves a decoder exists for the codec, and the display matrix (rotation)
    is only exposed on decoded frames."""
    import av

    container.seek(first_key_pts, stream=stream, backward=True)
    try:
        for frame in container.decode(stream):
            return round(frame.rotation or 0) % 360
    except av.error.FFmpegError as exc:
        raise ProbeError(path, f"first frame cannot be decoded ({stream.codec_context.name}: {exc})") from exc
    raise ProbeError(path, f"no frame could be decoded ({stream.codec_context.name})")
