"""The CPU half of DALI decoding: which files DALI can decode here, and a clip's packets cut out of its file
without decoding (into a small in-memory Matroska segment DALI decodes standalone)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._errors import DecodeError
from ..dataset import VideoInfo
from ._base import keyframes_to_try
from ._open import open_input
from ._walk import seek_keyframe

DALI_CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
NVDEC_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg"})
_EIGHT_BIT_420 = frozenset({"yuv420p", "yuvj420p", "nv12"})


@dataclass(frozen=True)
class PreparedClip:
    """A clip ready for DALI: the packets it needs as a small container, and frame positions inside it."""

    path: str
    encoded: np.ndarray = field(repr=False)  # uint8 [bytes]
    frames: np.ndarray = field(repr=False)  # int32 [T], indices into the segment's frames
    pts: tuple[int, ...]
    timestamps: tuple[float, ...]
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.pts), self.height, self.width, 3)


def unsupported_reason(
    info: VideoInfo, *, device_type: str, compute_capability: tuple[int, int] | None
) -> str | None:
    """Why DALI cannot decode this file on this device (None when it can)."""
    if device_type == "cpu":
        if info.codec not in DALI_CPU_CODECS:
            return f"DALI's CPU decoder has no {info.codec} (it handles VP8/VP9/MJPEG only)"
        return None
    if info.codec not in NVDEC_CODECS:
        return f"NVDEC has no {info.codec} decoder"
    if info.codec == "av1" and compute_capability is not None and compute_capability[0] == 9:
        return "Hopper's NVDEC has no AV1"
    if info.pix_fmt not in _EIGHT_BIT_420 and info.codec != "mjpeg":
        # NVDEC does 4:2:0 (and HEVC 10-bit), but H.264 10-bit / 4:2:2 / 4:4:4 are not decodable, and DALI's
        # RGB output path is validated on 8-bit 4:2:0 only; other formats take the exact CPU path.
        return f"pixel format {info.pix_fmt} is not decoded by NVDEC through DALI"
    return None


def remux_segment(info: VideoInfo, frame_indices: Sequence[int]) -> tuple[bytes, list[int]]:
    """Stream-copy the packets a clip needs into an in-memory Matroska file.

    Args:
        info: the probed video.
        frame_indices: the clip's frames.

    Returns:
        The segment's bytes and, for each requested frame, its index among the segment's frames
        (presentation order), which is what DALI's ``frames=`` counts.

    Raises:
        DecodeError: the packets of some frame are missing (damaged or truncated file).
    """
    import av

    wanted = sorted({info.frame_pts[i] for i in frame_indices})
    with open_input(info) as src:
        stream = src.streams[info.stream_index]
        first_key = info.keyframe_pts[0] if info.keyframe_pts else None
        for key in keyframes_to_try(info.keyframe_pts, wanted[0]):
            # From the first keyframe, seek to the start: MPEG-TS seeks by dts and lands past it.
            seek_keyframe(src, stream, None if key == first_key else key)
            packets = []
            seen: set[int] = set()
            started = False
            for packet in src.demux(stream):
                if packet.size == 0:
                    break
                if packet.is_discard:
                    continue
                p = packet.pts if packet.pts is not None else packet.dts
                if not started:
                    # The segment must open on the keyframe so DALI can decode it standalone.
                    if not (packet.is_keyframe and p is not None and p <= wanted[0]):
                        continue
                    started = True
                packets.append(packet)
                if p is not None:
                    seen.add(p)
                if seen.issuperset(wanted):
                    break
            if started and seen.issuperset(wanted):
                break
        if not seen.issuperset(wanted):
            raise DecodeError(
                info.path, "packets for the clip's frames are missing (damaged or truncated file?)"
            )
        buf = io.BytesIO()
        with av.open(buf, mode="w", format="matroska") as dst:
            out = dst.add_stream_from_template(stream)
            for packet in packets:
                packet.stream = out
                dst.mux(packet)
    seg_pts = sorted(seen)
    pos = {p: i for i, p in enumerate(seg_pts)}
    return buf.getvalue(), [pos[info.frame_pts[i]] for i in frame_indices]
