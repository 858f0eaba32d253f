"""Peer decoders the benchmark compares against, each decoding one clip: ``decode(info, indices, resize)``.

``PEERS`` is the registry (name -> factory); a factory raises ``PeerUnavailable`` with a one-line reason when
its package or hardware is missing. Register your own peer by adding a factory here (a class whose
``__init__`` raises ``PeerUnavailable`` when it cannot run); the tests add a deliberately wrong one::

    from vidloader.cli import PEERS
    PEERS["mine"] = MyPeer   # then: vidloader bench --backends vidloader-pyav,mine
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..dataset import VideoInfo


class PeerUnavailable(Exception):
    """The peer cannot run here; the message says why in one line."""


class Peer(Protocol):
    name: str

    def decode(
        self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None
    ) -> np.ndarray: ...


class PyAVNaive:
    """What most hand-written datasets do: decode from the start, convert every frame, keep the clip's."""

    name = "pyav-naive"

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        import av

        want, last, got = set(indices), max(indices), {}
        with av.open(info.path) as c:
            stream = c.streams[info.stream_index]
            frame: Any
            for i, frame in enumerate(c.decode(stream)):
                if resize:
                    arr = frame.to_ndarray(format="rgb24", width=resize[1], height=resize[0])
                else:
                    arr = frame.to_ndarray(format="rgb24")
                if i in want:
                    got[i] = arr
                if i >= last:
                    break
        return np.stack([got[i] for i in indices])


class OpenCVSeek:
    """The classic CPU approach: VideoCapture, CAP_PROP_POS_FRAMES seek, read forward."""

    name = "opencv"

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise PeerUnavailable("opencv-python is not installed (pip install '.[bench]')") from exc
        cv2.setNumThreads(1)

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        import cv2

        cap = cv2.VideoCapture(info.path)
        try:
            first, last, got = min(indices), max(indices), {}
            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            want = set(indices)
            for i in range(first, last + 1):
                ok = cap.grab()
                if not ok:
                    break
                if i in want:
                    _, bgr = cap.retrieve()
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    if resize:
                        rgb = cv2.resize(rgb, (resize[1], resize[0]), interpolation=cv2.INTER_LINEAR)
                    got[i] = rgb
        finally:
            cap.release()
        missing = [i for i in indices if i not in got]
        if missing:
            raise RuntimeError(f"opencv returned no frame for {missing[:3]} of {info.path}")
        return np.stack([got[i] for i in indices])


def _import_or_skip(module: str, why: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except Exception as exc:  # not only ImportError: torchcodec raises RuntimeError/OSError on missing FFmpeg
        raise PeerUnavailable(f"{why}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc


def _resize_frames(frames: np.ndarray, resize: tuple[int, int] | None) -> np.ndarray:
    if resize is None or frames.shape[1:3] == resize:
        return frames
    import cv2

    return np.stack([cv2.resize(f, (resize[1], resize[0]), interpolation=cv2.INTER_LINEAR) for f in frames])


class TorchCodec:
    """torchcodec's VideoDecoder in exact seek mode, on the GPU (NVDEC) when CUDA is there."""

    name = "torchcodec"

    def __init__(self) -> None:
        import torch

        decoders = _import_or_skip("torchcodec.decoders", "torchcodec is not importable")
        self._decoder = decoders.VideoDecoder
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        dec = self._decoder(info.path, stream_index=info.stream_index, seek_mode="exact", device=self.device)
        frames = dec.get_frames_at(indices=list(indices)).data  # uint8 [T, C, H, W]
        return _resize_frames(frames.permute(0, 2, 3, 1).cpu().numpy(), resize)


class Decord:
    """decord's VideoReader (CPU), resizing inside the decoder when asked to."""

    name = "decord"

    def __init__(self) -> None:
        self._decord = _import_or_skip("decord", "decord is not installed")

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        kw = {"width": resize[1], "height": resize[0]} if resize else {}
        vr = self._decord.VideoReader(info.path, ctx=self._decord.cpu(0), num_threads=1, **kw)
        return np.asarray(vr.get_batch(list(indices)).asnumpy())


def _dali_reader() -> Peer:
    import torch

    if not torch.cuda.is_available():
        raise PeerUnavailable(
            "a plain DALI fn.readers.video pipeline decodes on the GPU only; no CUDA device here"
        )
    # fn.readers.video decodes whole batches of sequences it picks from a file list; it has no per-clip
    # call to fit this harness, which hands every peer the same clips one at a time.
    raise PeerUnavailable("dali-reader: a batch-level DALI reader adapter is not part of this harness yet")


PEERS: dict[str, Callable[[], Peer]] = {
    "pyav-naive": PyAVNaive,
    "opencv": OpenCVSeek,
    "torchcodec": TorchCodec,
    "decord": Decord,
    "dali-reader": _dali_reader,
}
