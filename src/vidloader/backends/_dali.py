"""DALI backend: clips decoded by NVIDIA DALI (NVDEC on the GPU; DALI's CPU decoder on device='cpu').

Mechanism, chosen by measurement and for ownership:
- Our sampler picks the frames. A CPU worker cuts the clip's GOPs out of the file *without decoding*
  (PyAV stream copy of the packets from the keyframe before the clip to the clip's last frame, into an
  in-memory Matroska segment), so a clip from a 10-minute file costs reading one or two GOPs, never the
  whole file, and DALI's per-sample index build scans only that segment.
- The batch of segments goes to ``decoders.video(frames=...)`` in DALI's dynamic mode, which returns
  tensors that own their memory: handing them to torch through DLPack is zero-copy, and the next batch can
  never overwrite a batch the training loop still holds (a pipeline's recycled output buffers would force a
  copy). Dynamic mode breaks forked children once it has run, so the loader's workers are threads or
  spawned processes, never forks.
- Files DALI cannot decode here (codec or pixel format, see ``unsupported_reason``) fall back to the PyAV
  backend per file, counted by the loader.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .._errors import DecodeError
from ..dataset import VideoInfo
from ._base import ResizeArg, keyframes_to_try, open_input, output_size
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


_OOM_MARKERS = ("out of memory", "cudaerrormemoryallocation", "allocation failed", "cuda_error_out_of_memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a decode error is the device (or host) running out of memory rather than a bad clip.

    Args:
        exc: the exception a decoder raised.

    Returns:
        True for ``torch.cuda.OutOfMemoryError``, ``MemoryError`` and DALI's allocation failures (which
        DALI reports as a plain ``RuntimeError`` naming the failed allocation).
    """
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return any(m in text for m in _OOM_MARKERS)


class DALIBackend:
    """Decodes batches of clips with DALI on ``device`` (a CUDA device: NVDEC; 'cpu': DALI's CPU decoder).

    ``prepare_clip`` runs in the loader's CPU workers; ``decode_batch`` runs once per batch on the loader's
    prefetch thread, on torch's current CUDA stream.

    Args:
        device: where frames are decoded and delivered.
    """

    name = "dali"

    def __init__(self, *, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.compute_capability = (
            torch.cuda.get_device_capability(self.device) if self.device.type == "cuda" else None
        )

    def __repr__(self) -> str:
        return f"DALIBackend(device={str(self.device)!r})"

    def __getstate__(self) -> dict:
        # Spawned workers only run prepare_clip; they need no CUDA state.
        return {"device": str(self.device), "compute_capability": self.compute_capability}

    def __setstate__(self, state: dict) -> None:
        self.device = torch.device(state["device"])
        self.compute_capability = state["compute_capability"]

    def unsupported_reason(self, info: VideoInfo) -> str | None:
        return unsupported_reason(
            info, device_type=self.device.type, compute_capability=self.compute_capability
        )

    def prepare_clip(
        self,
        info: VideoInfo,
        frame_indices: Sequence[int],
        *,
        resize: ResizeArg = None,
        apply_rotation: bool = False,
    ) -> PreparedClip:
        import av

        try:
            data, rel = remux_segment(info, frame_indices)
        except av.error.FFmpegError as exc:
            raise DecodeError(
                info.path, f"cannot cut the clip's packets ({type(exc).__name__}: {exc})"
            ) from exc
        h, w = output_size(info, resize, apply_rotation=False)
        pts = tuple(info.frame_pts[i] for i in frame_indices)
        tb = info.time_base
        return PreparedClip(
            path=info.path,
            encoded=np.frombuffer(data, dtype=np.uint8),
            frames=np.asarray(rel, dtype=np.int32),
            pts=pts,
            timestamps=tuple(float(p * tb) for p in pts),
            height=h,
            width=w,
        )

    def decode_batch(self, clips: Sequence[PreparedClip], *, resize: ResizeArg = None) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] on this backend's device, owned by torch (zero-copy from DALI)."""
        import nvidia.dali.experimental.dynamic as ndd
        from nvidia.dali.types import DALIInterpType

        on_gpu = self.device.type == "cuda"
        if on_gpu:
            # Work goes on torch's current stream, so torch ops queued after it see finished frames.
            ndd.set_current_stream(torch.cuda.current_stream(self.device))
        enc = ndd.as_batch([c.encoded for c in clips])
        frames = ndd.as_batch([c.frames for c in clips])
        try:
            video = ndd.decoders.video(enc, frames=frames, device="gpu" if on_gpu else "cpu")
            if resize is not None:
                h, w = clips[0].height, clips[0].width
                video = ndd.resize(
                    video, size=[h, w], interp_type=DALIInterpType.INTERP_LINEAR, antialias=False
                )
            out = video.torch(copy=False)
        except RuntimeError as exc:  # DALI reports FFmpeg/NVDEC failures as RuntimeError
            if is_out_of_memory(exc):
                raise  # not a property of the clips: under on_error="skip" it must not drop them
            paths = ", ".join(sorted({c.path for c in clips}))
            raise DecodeError(
                paths, f"DALI failed to decode the batch ({type(exc).__name__}: {exc})"
            ) from exc
        if out.device.type != self.device.type:
            out = out.to(self.device)
        return out
