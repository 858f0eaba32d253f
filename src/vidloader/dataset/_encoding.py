"""How ``write_video`` drives PyAV's encoders: stream setup, deterministic encoder options, frame and
audio encoding."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import numpy as np


def peek(frames: Iterable[np.ndarray]) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """(the first frame, all the frames): frames are streamed (a 10-minute workload would not fit in
    memory as a list), and the first one gives the stream's size."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    return first, itertools.chain([first], it)


def add_audio_stream(out: Any, audio: np.ndarray, codec: str, rate: int) -> Any:
    """The audio stream, added with the video one: the container header is written at the first packet."""
    stream: Any = out.add_stream(codec, rate=rate)
    stream.layout = "mono" if audio.shape[0] == 1 else "stereo"
    return stream


def configure_video(
    vs: Any,
    *,
    codec: str,
    gop: int | None,
    bframes: int | None,
    options: dict[str, str] | None,
    time_base: Fraction | None,
    rotation: int | None,
) -> None:
    """Encoder options, time base and display rotation of the video stream, set before the first frame."""
    opts: dict[str, str] = dict(options or {})
    if codec in ("libx264", "libx265"):
        # Same bytes on every run and machine: one encoder thread, no scene-cut keyframes.
        opts.setdefault("threads", "1")
        key = "x264-params" if codec == "libx264" else "x265-params"
        params = ["scenecut=0"] if codec == "libx264" else ["scenecut=0", "log-level=error", "pools=1"]
        if gop is not None:
            params.append(f"keyint={gop}:min-keyint={gop}" if codec == "libx264" else f"keyint={gop}")
        if bframes is not None:
            params.append(f"bframes={bframes}")
        opts[key] = ":".join(params)
    elif gop is not None:
        vs.codec_context.gop_size = gop
    if bframes is not None and codec not in ("libx264", "libx265"):
        vs.codec_context.max_b_frames = bframes
    vs.options = opts
    if time_base is not None:
        # Encoders count pts in the codec's time base; without this, VFR pts would be read as 1/fps ticks.
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
    if rotation:
        vs.set_display_rotation(rotation)


def encode_frames(
    out: Any, vs: Any, frames: Iterable[np.ndarray], *, pts: Sequence[int] | None, time_base: Fraction | None
) -> None:
    """Encode and mux every RGB frame (with its ``pts`` when given), then flush the encoder."""
    import av

    for i, arr in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        if pts is not None:
            frame.pts = int(pts[i])
            frame.time_base = time_base
        for packet in vs.encode(frame):
            out.mux(packet)
    for packet in vs.encode():
        out.mux(packet)


def encode_audio(out, stream, audio: np.ndarray, rate: int) -> None:
    """Encode and mux ``audio`` in the encoder's frame size and sample format, then flush the encoder."""
    import av

    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    frame_size = stream.codec_context.frame_size or 1024
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    pos = 0
    while pos < audio.shape[1]:
        chunk = np.ascontiguousarray(audio[:, pos : pos + frame_size], dtype=np.float32)
        if chunk.shape[1] < frame_size:
            chunk = np.pad(chunk, ((0, 0), (0, frame_size - chunk.shape[1])))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = pos
        frame.time_base = Fraction(1, rate)
        if fmt != "fltp":
            frame = av.AudioResampler(format=fmt, layout=layout, rate=rate).resample(frame)[0]
        for packet in stream.encode(frame):
            out.mux(packet)
        pos += frame_size
    for packet in stream.encode():
        out.mux(packet)
