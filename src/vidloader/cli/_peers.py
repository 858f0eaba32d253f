"""Peer decoders the benchmark compares against: per clip (``decode(info, indices, resize)``, run on the
benchmark's thread pool) or per batch (``batches(dataset, clips, ...)``, a reader pipeline of its own).

``PEERS`` is the registry (name -> factory); a factory raises ``PeerUnavailable`` with a one-line reason when
its package or hardware is missing. Register your own peer by adding a factory here (a class whose
``__init__`` raises ``PeerUnavailable`` when it cannot run); the tests add a deliberately wrong one::

    from vidloader.cli import PEERS
    PEERS["mine"] = MyPeer   # then: vidloader bench --backends vidloader-pyav,mine
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..dataset import VideoInfo
from ._peer_base import BatchOptions, BatchPeer, Peer, PeerUnavailable, import_or_skip, resize_frames
from ._peer_dali import DALIReader, require_dali_cpu_codecs
from ._peer_ffmpeg import SPDL, TorchCodec, TorchCodecApprox


class PyAVNaive:
    """What most hand-written datasets do: decode from the start, convert every frame, keep the clip's."""

    name = "pyav-naive"
    package = "av"
    threads = 1

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        import av

        want, last, got = set(indices), max(indices), {}
        with av.open(info.path) as c:
            stream: Any = c.streams[info.stream_index]
            stream.thread_count = self.threads
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


class PyAVSeek:
    """A careful hand-written PyAV loader: seek to the keyframe before the clip's first frame (by the
    index's timestamps), decode forward, convert only the clip's frames."""

    name = "pyav-seek"
    package = "av"
    threads = 1

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        import av

        want = {info.frame_pts[i] for i in indices}
        last, got = max(want), {}
        size = {"width": resize[1], "height": resize[0]} if resize else {}
        with av.open(info.path) as c:
            stream: Any = c.streams[info.stream_index]
            stream.thread_count = self.threads
            c.seek(min(want), stream=stream, backward=True)
            frame: Any
            for frame in c.decode(stream):
                if frame.pts in want:
                    got[frame.pts] = frame.to_ndarray(format="rgb24", **size)
                if frame.pts is not None and frame.pts >= last:
                    break
        missing = [i for i in indices if info.frame_pts[i] not in got]
        if missing:
            raise RuntimeError(f"pyav-seek found no frame for {missing[:3]} of {info.path}")
        return np.stack([got[info.frame_pts[i]] for i in indices])


class OpenCVSeek:
    """The classic CPU approach: VideoCapture, CAP_PROP_POS_FRAMES seek, read forward."""

    name = "opencv"
    package = ("opencv-python", "opencv-python-headless", "opencv-contrib-python")
    threads = 1

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise PeerUnavailable("opencv-python is not installed (pip install '.[bench]')") from exc
        cv2.setNumThreads(1)

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        import cv2

        cap = cv2.VideoCapture(info.path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, self.threads])
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


class Decord:
    """decord's VideoReader (CPU), resizing inside the decoder when asked to."""

    name = "decord"
    package = ("decord2", "decord")
    threads = 1

    def __init__(self) -> None:
        self._decord = import_or_skip("decord", "decord is not installed")
        self._native_resize = True

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        ctx, n = self._decord.cpu(0), self.threads
        if resize and self._native_resize:
            try:
                vr = self._decord.VideoReader(
                    info.path, ctx=ctx, num_threads=n, width=resize[1], height=resize[0]
                )
                return np.asarray(vr.get_batch(list(indices)).asnumpy())
            except self._decord.DECORDError:
                # decord2 3.4 fails its own size check for some small outputs (96x64 -> 72x48): resize
                # after decoding instead, as a user would, from then on.
                self._native_resize = False
        vr = self._decord.VideoReader(info.path, ctx=ctx, num_threads=n)
        return resize_frames(np.asarray(vr.get_batch(list(indices)).asnumpy()), resize)


PEERS: dict[str, Callable[[], Peer | BatchPeer]] = {
    "torchcodec": TorchCodec,
    "torchcodec-approx": TorchCodecApprox,
    "spdl": SPDL,
    "decord": Decord,
    "opencv": OpenCVSeek,
    "pyav-seek": PyAVSeek,
    "pyav-naive": PyAVNaive,
    "dali-reader": DALIReader,
}

__all__ = [
    "PEERS",
    "SPDL",
    "BatchOptions",
    "BatchPeer",
    "DALIReader",
    "Decord",
    "OpenCVSeek",
    "Peer",
    "PeerUnavailable",
    "PyAVNaive",
    "PyAVSeek",
    "TorchCodec",
    "TorchCodecApprox",
    "require_dali_cpu_codecs",
]
