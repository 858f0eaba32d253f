"""Peer decoders the benchmark compares against, each decoding one clip: ``decode(info, indices, resize)``.

``PEERS`` is the registry (name -> factory); a factory raises ``PeerUnavailable`` with a one-line reason when
its package or hardware is missing. Tests register extra peers here (e.g. a deliberately wrong one).
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


def _needs(module: str, why: str) -> Callable[[], Peer]:
    def factory() -> Peer:
        try:
            __import__(module)
        except Exception as exc:
            raise PeerUnavailable(f"{why}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc
        raise PeerUnavailable(f"{module} imports, but its benchmark adapter is GPU-only or not written yet")

    return factory


def _dali_reader() -> Peer:
    import torch

    if not torch.cuda.is_available():
        raise PeerUnavailable(
            "a plain DALI fn.readers.video pipeline decodes on the GPU only; no CUDA device here"
        )
    raise PeerUnavailable("dali-reader adapter runs only in scripts/gpu_check.py on a GPU machine")


PEERS: dict[str, Callable[[], Peer]] = {
    "pyav-naive": PyAVNaive,
    "opencv": OpenCVSeek,
    "torchcodec": _needs("torchcodec", "torchcodec is not importable (it needs system FFmpeg libraries)"),
    "decord": _needs("decord", "decord is not installed"),
    "dali-reader": _dali_reader,
}
