"""Peer decoders the benchmark compares against: per clip (``decode(info, indices, resize)``, run on the
benchmark's thread pool) or per batch (``batches(dataset, clips, ...)``, a reader pipeline of its own).

``PEERS`` is the registry (name -> factory); a factory raises ``PeerUnavailable`` with a one-line reason when
its package or hardware is missing. Register your own peer by adding a factory here (a class whose
``__init__`` raises ``PeerUnavailable`` when it cannot run); the tests add a deliberately wrong one::

    from vidloader.cli import PEERS
    PEERS["mine"] = MyPeer   # then: vidloader bench --backends vidloader-pyav,mine
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..dataset import VideoDataset, VideoInfo
from ..sampling import ClipSpec


class PeerUnavailable(Exception):
    """The peer cannot run here; the message says why in one line."""


class Peer(Protocol):
    name: str

    def decode(
        self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None
    ) -> np.ndarray: ...


class BatchPeer(Protocol):
    """A peer that decodes whole batches itself (a reader pipeline): it gets the clip list up front."""

    name: str

    def batches(
        self,
        dataset: VideoDataset,
        clips: Sequence[ClipSpec],
        *,
        batch_size: int,
        resize: tuple[int, int] | None,
        workers: int,
    ) -> Iterator[Any]: ...


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

        try:
            import torchcodec.decoders as decoders
        except ImportError as exc:
            raise PeerUnavailable("torchcodec is not installed (pip install '.[bench]')") from exc
        except Exception as exc:  # it loads FFmpeg at import and raises RuntimeError/OSError when it can't
            raise PeerUnavailable(
                "torchcodec cannot load FFmpeg: it needs the system's FFmpeg 4-8 shared libraries"
                f" (e.g. apt install ffmpeg), none loadable here ({type(exc).__name__})"
            ) from exc
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
        self._native_resize = True

    def decode(self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None) -> np.ndarray:
        if resize and self._native_resize:
            try:
                vr = self._decord.VideoReader(
                    info.path, ctx=self._decord.cpu(0), num_threads=1, width=resize[1], height=resize[0]
                )
                return np.asarray(vr.get_batch(list(indices)).asnumpy())
            except self._decord.DECORDError:
                # decord2 3.4 fails its own size check for some small outputs (96x64 -> 72x48): resize
                # after decoding instead, as a user would, from then on.
                self._native_resize = False
        vr = self._decord.VideoReader(info.path, ctx=self._decord.cpu(0), num_threads=1)
        return _resize_frames(np.asarray(vr.get_batch(list(indices)).asnumpy()), resize)


def require_dali_cpu_codecs(dataset: VideoDataset, videos: Iterable[int]) -> None:
    """Raise PeerUnavailable unless DALI's CPU decoder (VP8/VP9/MJPEG only) has every codec used."""
    from ..backends import DALI_CPU_CODECS

    codecs = sorted({dataset[v].codec for v in videos} - DALI_CPU_CODECS)
    if codecs:
        raise PeerUnavailable(
            f"DALI's CPU decoder has no {'/'.join(codecs)} (VP8/VP9/MJPEG only; the rest need NVDEC on a GPU)"
        )


class DALIReader:
    """A plain DALI reader pipeline, as DALI's docs and PyTorch plugin teach it: one
    ``fn.experimental.readers.video`` over a file list of ``path label start end`` lines (the benchmark's
    clips, in order, frame numbers), read through ``DALIGenericIterator``. On the GPU (NVDEC) when CUDA is
    there; else DALI's CPU decoder, which only has VP8/VP9/MJPEG, so H.264 workloads skip it on a CPU box.

    The experimental reader is used rather than ``fn.readers.video`` because it has the same file-list
    interface and runs on the CPU too, so the adapter itself is exercised by CPU tests (VP9 media)."""

    name = "dali-reader"

    def __init__(self) -> None:
        import torch

        from ..backends import dali_missing

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        missing = dali_missing(self.device)
        if missing:
            raise PeerUnavailable(missing)

    def batches(
        self,
        dataset: VideoDataset,
        clips: Sequence[ClipSpec],
        *,
        batch_size: int,
        resize: tuple[int, int] | None,
        workers: int,
    ) -> Iterator[Any]:
        import tempfile

        import torch
        from nvidia.dali import fn, pipeline_def
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        if len(clips) % batch_size:
            raise ValueError(f"dali-reader needs whole batches: {len(clips)} clips, batch {batch_size}")
        steps = {int(b - a) for c in clips for a, b in itertools.pairwise(c.frame_indices)}
        frames = {len(c.frame_indices) for c in clips}
        if len(steps) > 1 or len(frames) != 1:
            raise PeerUnavailable("dali-reader reads fixed-stride, fixed-length clips only")
        length, stride = frames.pop(), steps.pop() if steps else 1
        if self.device.type == "cpu":
            require_dali_cpu_codecs(dataset, {c.video_index for c in clips})
        with tempfile.TemporaryDirectory(prefix="vidloader-dali-reader-") as tmp:
            # The reader wants a window of length*stride frames ending before `end`; a clip that ends in
            # the file's last stride-1 frames is cut at the end and completed by pad_mode="edge", and the
            # frame numbers it returns are checked below, so padding can never pass for a real frame.
            lines = []
            for k, c in enumerate(clips):
                info = dataset[c.video_index]
                start = c.frame_indices[0]
                lines.append(f"{info.path} {k} {start} {min(start + length * stride, info.num_frames)}")
            file_list = Path(tmp) / "clips.txt"
            file_list.write_text("\n".join(lines) + "\n")
            on_gpu = self.device.type == "cuda"

            device_id: Any = torch.cuda.current_device() if on_gpu else None  # None: CPU-only pipeline

            @pipeline_def(
                batch_size=batch_size,
                num_threads=max(1, workers),
                device_id=device_id,
                prefetch_queue_depth=2,
            )
            def pipe() -> Any:
                outs: Any = fn.experimental.readers.video(
                    device="gpu" if on_gpu else "cpu",
                    file_list=str(file_list),
                    file_list_format="frames",
                    sequence_length=length,
                    stride=stride,
                    step=length * stride,
                    pad_mode="edge",
                    random_shuffle=False,
                    enable_frame_num="sequence",
                    name="reader",
                )
                video, label, frame_num = outs
                if resize is not None:
                    video = fn.resize(video, resize_y=resize[0], resize_x=resize[1], antialias=False)
                return video, label, frame_num

            it = DALIGenericIterator(
                [pipe()],
                ["video", "label", "frame_num"],
                reader_name="reader",
                last_batch_policy=LastBatchPolicy.DROP,
                auto_reset=False,
            )
            for b, out in enumerate(it):
                got = out[0]["frame_num"].cpu().tolist()
                want = [list(c.frame_indices) for c in clips[b * batch_size : (b + 1) * batch_size]]
                if got != want:
                    raise RuntimeError(
                        f"dali-reader returned frames {got[:2]} for batch {b}, wanted {want[:2]}"
                    )
                yield out[0]["video"]


PEERS: dict[str, Callable[[], Peer | BatchPeer]] = {
    "pyav-naive": PyAVNaive,
    "opencv": OpenCVSeek,
    "torchcodec": TorchCodec,
    "decord": Decord,
    "dali-reader": DALIReader,
}
