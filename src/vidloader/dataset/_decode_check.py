"""A full decode of a file at indexing: which frames decode with no error that can touch them, and FFmpeg's
first error. The probe makes one for a file whose demuxing FFmpeg reports damaged; ``verify`` for every
file, to find damage only the decoder sees."""

from __future__ import annotations

from dataclasses import dataclass

from ._ffmpeg_log import ffmpeg_errors, ffmpeg_reason


@dataclass(frozen=True)
class DecodeCheck:
    """What a full sequential decode found: ``good``, the sorted pts of the frames that decode with no error
    that can touch them; ``error``, the first error ("" when none)."""

    good: list[int]
    error: str


def decode_check(container, stream, listed: set[int]) -> DecodeCheck:
    """Decode ``stream`` from its first packet to its end.

    After a decoder error, every frame until the next keyframe may have been predicted from damaged data,
    so frames are not counted until then, and neither are that keyframe's leading frames (shown before it,
    predicted from the damaged GOP). Frames the decoder flags corrupt are not counted either, nor frames
    whose pts the demuxer did not list (``listed``).

    Args:
        container: the open file.
        stream: its video stream.
        listed: the pts the demuxer listed.

    Returns:
        The check.
    """
    import av

    seek_start(container, stream)
    cc = stream.codec_context
    if not cc.is_open:
        cc.thread_count = 1  # files are checked in parallel: one thread per decoder is enough
    cc.flush_buffers()
    good: list[int] = []
    errors: list[str] = []
    tainted, resume = False, None
    with av.logging.Capture(local=True) as logs:

        def keep(frames) -> None:
            for f in frames:
                p = f.pts
                if f.is_corrupt:
                    errors.append(f"the decoder flagged the frame at pts {p} corrupt")
                elif not tainted and p in listed and (resume is None or p >= resume):
                    good.append(int(p))

        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    break
                ppts = packet.pts if packet.pts is not None else packet.dts
                if tainted and packet.is_keyframe and ppts is not None:
                    tainted, resume = False, ppts
                frames, found = _decode(cc, packet, logs)
                if found:
                    errors += found
                    tainted = True
                keep(frames)
            keep(cc.decode(None))
        except av.error.FFmpegError as exc:
            # The rest of the file cannot be read: the frames so far are what decodes.
            errors.append(f"decoding stopped: {ffmpeg_reason(exc)}")
    return DecodeCheck(sorted(set(good)), errors[0] if errors else "")


def _decode(cc, packet, logs: list) -> tuple[list, list[str]]:
    """The frames one packet gives, and the decoder errors it raised or logged."""
    import av

    seen = len(logs)
    try:
        frames, errors = cc.decode(packet), []
    except av.error.InvalidDataError as exc:
        frames, errors = [], [ffmpeg_reason(exc)]
    return frames, errors + ffmpeg_errors(logs[seen:])


def seek_start(container, stream) -> None:
    """Back to the first packet: a seek by pts lands after it where the demuxer seeks by dts (MPEG-TS).

    Args:
        container: the open file.
        stream: the stream to seek in when the container cannot seek by AV_TIME_BASE.
    """
    import av

    try:
        container.seek(0, backward=True, any_frame=False)  # AV_TIME_BASE units: before every stream
    except av.error.FFmpegError:
        container.seek(-(1 << 40), stream=stream, backward=True, any_frame=False)
