"""Peers that load FFmpeg's shared libraries by their standard names: torchcodec and SPDL.

Both are ``isolated``: the benchmark runs them in a child process whose ``LD_LIBRARY_PATH`` points at the
FFmpeg of PyAV's wheel (``_ffmpeg_shim``), so they run on a machine without a system FFmpeg. Each decodes
with ``threads`` FFmpeg threads, the same number vidloader's decoder gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dataset import VideoInfo
from ._peer_base import PeerUnavailable, import_or_skip, resize_frames


class TorchCodec:
    """torchcodec's VideoDecoder in exact seek mode (it scans the file to build its frame index), on the
    GPU (NVDEC) when CUDA is there."""

    name = "torchcodec"
    package = "torchcodec"
    isolated = True
    threads = 1
    seek_mode = "exact"

    def __init__(self) -> None:
        import torch

        try:
            import torchcodec.decoders as decoders
        except ImportError as exc:
            raise PeerUnavailable("torchcodec is not installed (pip install '.[bench]')") from exc
        except Exception as exc:  # it loads FFmpeg at import and raises RuntimeError/OSError when it can't
            raise PeerUnavailable(
                "torchcodec cannot load FFmpeg 4-8 shared libraries (none loadable here, and no shim from"
                f" PyAV's wheel: {type(exc).__name__})"
            ) from exc
        self._decoder = decoders.VideoDecoder
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        dec = self._decoder(
            info.path,
            stream_index=info.stream_index,
            seek_mode=self.seek_mode,
            num_ffmpeg_threads=self.threads,
            device=self.device,
            dimension_order="NHWC",
        )
        frames = dec.get_frames_at(indices=list(indices)).data  # uint8 [T, H, W, C]
        return resize_frames(frames.cpu().numpy(), resize)


class TorchCodecApprox(TorchCodec):
    """torchcodec in approximate seek mode: frame positions from the container's metadata, no scan."""

    name = "torchcodec-approx"
    seek_mode = "approximate"


class SPDL:
    """SPDL (``spdl.io``): demux the file's video packets, then ``sample_decode_video`` by frame index,
    RGB through its FFmpeg filter graph (``scale`` bilinear when resizing)."""

    name = "spdl"
    package = "spdl-io"
    isolated = True
    threads = 1

    def __init__(self) -> None:
        self._io = import_or_skip("spdl.io", "spdl-io is not installed or cannot load FFmpeg")

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        io: Any = self._io
        if info.stream_index != 0:
            # demux_video takes the file's default video stream, which need not be the indexed one.
            raise RuntimeError(f"spdl peer reads the default video stream, not stream {info.stream_index}")
        packets = io.demux_video(info.path)
        cfg = io.decode_config(decoder_options={"threads": str(self.threads)})
        size: dict[str, Any] = {}
        if resize is not None:
            size = {"scale_width": resize[1], "scale_height": resize[0], "scale_algo": "bilinear"}
            size["scale_mode"] = None
        desc = io.get_video_filter_desc(pix_fmt="rgb24", **size)
        frames = io.sample_decode_video(packets, list(indices), decode_config=cfg, filter_desc=desc)
        return np.asarray(io.to_numpy(io.convert_frames(frames)))
