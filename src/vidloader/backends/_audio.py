"""Audio next to a clip's frames: which audio a loader wants (AudioSpec) and the CPU decode of one time span.

Decoding stays at the stream's own sample rate; resampling and features happen per batch in the loader."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from .._errors import ConfigError, DecodeError
from .._validate import check_bool, check_choice, check_int, check_positive_float
from ..dataset import VideoInfo, enable_ffmpeg_log, ffmpeg_reason
from ._open import open_input

AudioFeatures = Literal["waveform", "log_mel"]
AUDIO_FEATURES: tuple[str, ...] = ("waveform", "log_mel")
# Seek this far before the span: AAC and friends need a frame or two of history before they decode cleanly,
# and a demuxer's seek may land on the packet just after the target.
_PREROLL = Fraction(1, 5)


@dataclass(frozen=True, kw_only=True)
class AudioSpec:
    """What audio a loader delivers with each clip (see docs/audio.md).

    ``stream`` is an absolute stream index (as in ``VideoInfo.audio_streams``); None takes the audio
    stream FFmpeg rates best. ``required`` makes a file without audio a decode error instead of silence.
    """

    sample_rate: int = 16000
    channels: int = 1
    features: AudioFeatures = "waveform"
    n_mels: int = 64
    n_fft: int = 400
    hop_length: int = 160
    stream: int | None = None
    required: bool = False
    # Seconds of audio per clip; None: the longest nominal clip span in the dataset (see docs/audio.md).
    duration: float | None = None

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_mels", "n_fft", "hop_length"):
            check_int(f"AudioSpec.{name}", getattr(self, name), minimum=1)
        check_choice("AudioSpec.channels", check_int("AudioSpec.channels", self.channels), (1, 2))
        check_choice("AudioSpec.features", self.features, AUDIO_FEATURES)
        if self.stream is not None:
            check_int("AudioSpec.stream", self.stream, minimum=0)
        check_bool("AudioSpec.required", self.required)
        seconds = check_positive_float("AudioSpec.duration", self.duration, allow_none=True)
        if seconds is not None and not math.isfinite(seconds):
            raise ConfigError(f"AudioSpec.duration must be a finite number of seconds, got {self.duration!r}")


@dataclass(frozen=True)
class AudioSpan:
    """Audio of one clip at the source stream's rate; ``present`` is False when the file has no audio."""

    samples: np.ndarray = field(repr=False)  # float32 [channels, n]
    rate: int
    present: bool

    def __post_init__(self) -> None:
        if self.samples.dtype != np.float32 or self.samples.ndim != 2:
            raise ValueError(
                f"AudioSpan.samples must be float32 [channels, n], got {self.samples.dtype} {self.samples.shape}"
            )
        if self.rate <= 0:
            raise ValueError(f"AudioSpan.rate must be > 0, got {self.rate}")


def clip_span(info: VideoInfo, frame_indices: Sequence[int]) -> tuple[Fraction, Fraction]:
    """[t0, t1) in seconds on the container clock: the first frame's pts to the last frame's end.

    A frame lasts until the next frame of the stream (so VFR gaps count as they are), the last one 1/fps.

    Args:
        info: the probed video.
        frame_indices: the clip's frames.

    Returns:
        ``(t0, t1)`` as Fractions of a second.
    """
    tb = info.time_base
    first, last = min(frame_indices), max(frame_indices)
    pts = info.frame_pts
    if last + 1 < len(pts):
        return pts[first] * tb, pts[last + 1] * tb
    fps = Fraction(info.fps if info.fps > 0 else 25).limit_denominator(1001)
    return pts[first] * tb, pts[last] * tb + 1 / fps


def _to_float_planar(frame: Any) -> np.ndarray:
    """float32 [channels, samples] in [-1, 1] from any FFmpeg sample format."""
    fmt = frame.format
    arr = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not fmt.is_planar:
        # Packed formats come back as one interleaved row.
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float64) / float(-np.iinfo(arr.dtype).min)).astype(np.float32)
    return arr.astype(np.float32, copy=False)


def _mix(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[0] == channels:
        return x
    if channels == 1:
        return x.mean(axis=0, keepdims=True, dtype=np.float32)
    if x.shape[0] == 1:
        return np.repeat(x, 2, axis=0)
    # More than two channels to stereo: FFmpeg orders front left and front right first.
    return x[:2]


def _absent(info: VideoInfo, t0: Fraction, t1: Fraction, spec: AudioSpec, why: str) -> AudioSpan:
    if spec.required:
        raise DecodeError(info.path, f"{why} and AudioSpec(required=True)")
    n = max(0, round((t1 - t0) * spec.sample_rate))
    return AudioSpan(np.zeros((spec.channels, n), np.float32), spec.sample_rate, present=False)


def decode_audio_span(
    info: VideoInfo, t0: float | Fraction, t1: float | Fraction, spec: AudioSpec
) -> AudioSpan:
    """The audio of [t0, t1) seconds (container clock: pts x time base), cut at sample precision and mixed
    to ``spec.channels``; stretches the stream does not cover are zeros.

    Args:
        info: the probed video (its audio streams).
        t0: start, in seconds.
        t1: end, in seconds (exclusive).
        spec: which stream, channels and whether audio is required.

    Returns:
        The span at the stream's own sample rate (``present=False`` and zeros for a file without audio).

    Raises:
        DecodeError: the audio cannot be decoded, or is missing under ``spec.required``.
    """
    import av

    t0, t1 = Fraction(t0), Fraction(t1)
    if spec.stream is None and not info.has_audio:
        return _absent(info, t0, t1, spec, "the file has no audio stream")
    enable_ffmpeg_log()
    try:
        container = open_input(info)
    except (av.error.FFmpegError, OSError) as exc:
        raise DecodeError(info.path, f"cannot open for audio ({ffmpeg_reason(exc)})") from exc
    try:
        audio = [s.index for s in container.streams.audio]
        if spec.stream is not None:
            if spec.stream not in audio:
                n_streams = len(container.streams)
                what = (
                    f"stream {spec.stream} is a {container.streams[spec.stream].type} stream"
                    if spec.stream < n_streams
                    else f"the file has only {n_streams} streams"
                )
                raise DecodeError(
                    info.path,
                    f"AudioSpec(stream={spec.stream}) is not an audio stream ({what}); "
                    f"the file's audio streams are {audio or 'none'}",
                )
            stream: Any = container.streams[spec.stream]
        else:
            # Related to the clip's video stream, as ffmpeg's own stream choice: in a multi-program file
            # (MPEG-TS) the audio comes from the video's program.
            video = (
                container.streams[info.stream_index] if info.stream_index < len(container.streams) else None
            )
            stream = container.streams.best("audio", related=video)
            if stream is None:
                return _absent(info, t0, t1, spec, "the file has no audio stream")
        return _decode(container, stream, info, t0, t1, spec)
    except av.error.FFmpegError as exc:
        raise DecodeError(
            info.path, f"audio decode failed ({type(exc).__name__}: {ffmpeg_reason(exc)})"
        ) from exc
    finally:
        container.close()


def _decode(
    container: Any, stream: Any, info: VideoInfo, t0: Fraction, t1: Fraction, spec: AudioSpec
) -> AudioSpan:
    rate = int(stream.codec_context.sample_rate or stream.rate or 0)
    if rate <= 0:
        raise DecodeError(info.path, f"audio stream {stream.index} reports no sample rate")
    n = max(0, round((t1 - t0) * rate))
    out = np.zeros((spec.channels, n), np.float32)
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, rate)
    start = stream.start_time * tb if stream.start_time is not None else Fraction(0)
    for seek_to in (t0 - _PREROLL, None):
        got_first = _fill(container, stream, out, t0, t1, rate, tb, spec.channels, seek_to)
        # A seek that landed after t0 would leave a false silence at the clip's start: decode from the top.
        if seek_to is None or got_first is None or got_first <= max(t0, start) or seek_to <= start:
            break
        out[:] = 0
    return AudioSpan(out, rate, present=True)


def _fill(
    container: Any,
    stream: Any,
    out: np.ndarray,
    t0: Fraction,
    t1: Fraction,
    rate: int,
    tb: Fraction,
    channels: int,
    seek_to: Fraction | None,
) -> Fraction | None:
    """Decode from ``seek_to`` (None: the start) and place every frame at its own pts into ``out``; returns
    the time of the first decoded frame."""
    if seek_to is None:
        container.seek(0)
    else:
        container.seek(max(0, int(seek_to / tb)), stream=stream)
    first: Fraction | None = None
    pos: Fraction | None = None  # where the next frame starts when it carries no pts
    for frame in container.decode(stream):
        if frame.pts is not None:
            ftb = Fraction(frame.time_base) if frame.time_base else tb
            ft = frame.pts * ftb
        elif pos is not None:
            ft = pos
        else:
            continue
        fr = frame.sample_rate or rate
        pos = ft + Fraction(frame.samples, fr)
        if first is None:
            first = ft
        if ft >= t1:
            break
        if pos <= t0:
            continue
        x = _mix(_to_float_planar(frame), channels)
        off = round((ft - t0) * rate)
        lo, hi = max(off, 0), min(off + x.shape[1], out.shape[1])
        if hi > lo:
            out[:, lo:hi] = x[:, lo - off : hi - off]
    return first
