"""DALI's own video reader as a benchmark peer (a batch reader), and DALI's CPU codec check."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Unpack

from ..dataset import VideoDataset
from ..sampling import ClipSpec
from ._peer_base import BatchOptions, PeerUnavailable


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
    package = ("nvidia-dali-cuda130", "nvidia-dali-cuda120", "nvidia-dali-cuda110")

    def __init__(self) -> None:
        import torch

        from ..backends import dali_missing

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        missing = dali_missing(self.device)
        if missing:
            raise PeerUnavailable(missing)

    def batches(
        self, dataset: VideoDataset, clips: Sequence[ClipSpec], **options: Unpack[BatchOptions]
    ) -> Iterator[Any]:
        import tempfile

        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        batch_size = options["batch_size"]
        length, stride = _clip_shape(clips, batch_size)
        if self.device.type == "cpu":
            require_dali_cpu_codecs(dataset, {c.video_index for c in clips})
        with tempfile.TemporaryDirectory(prefix="vidloader-dali-reader-") as tmp:
            file_list = _write_file_list(dataset, clips, Path(tmp), length=length, stride=stride)
            pipe = _reader_pipeline(
                file_list, on_gpu=self.device.type == "cuda", options=options, length=length, stride=stride
            )
            it = DALIGenericIterator(
                [pipe],
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


def _clip_shape(clips: Sequence[ClipSpec], batch_size: int) -> tuple[int, int]:
    """(frames per clip, frame stride): the reader takes one of each for the whole list, in whole batches."""
    if len(clips) % batch_size:
        raise ValueError(f"dali-reader needs whole batches: {len(clips)} clips, batch {batch_size}")
    steps = {int(b - a) for c in clips for a, b in itertools.pairwise(c.frame_indices)}
    frames = {len(c.frame_indices) for c in clips}
    if len(steps) > 1 or len(frames) != 1:
        raise PeerUnavailable("dali-reader reads fixed-stride, fixed-length clips only")
    return frames.pop(), steps.pop() if steps else 1


def _write_file_list(
    dataset: VideoDataset, clips: Sequence[ClipSpec], tmp: Path, *, length: int, stride: int
) -> Path:
    """The reader's ``path label start end`` file list (frame numbers), one line per clip in order."""
    # The reader wants a window of length*stride frames ending before `end`; a clip that ends in
    # the file's last stride-1 frames is cut at the end and completed by pad_mode="edge", and the
    # frame numbers it returns are checked in `batches`, so padding can never pass for a real frame.
    lines = []
    for k, c in enumerate(clips):
        info = dataset[c.video_index]
        start = c.frame_indices[0]
        lines.append(f"{info.path} {k} {start} {min(start + length * stride, info.num_frames)}")
    file_list = tmp / "clips.txt"
    file_list.write_text("\n".join(lines) + "\n")
    return file_list


def _reader_pipeline(
    file_list: Path, *, on_gpu: bool, options: BatchOptions, length: int, stride: int
) -> Any:
    """The built DALI pipeline: the video reader over ``file_list``, then the resize when one is asked."""
    import torch
    from nvidia.dali import fn, pipeline_def

    device_id: Any = torch.cuda.current_device() if on_gpu else None  # None: CPU-only pipeline
    resize = options["resize"]

    @pipeline_def(
        batch_size=options["batch_size"],
        num_threads=max(1, options["workers"]),
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

    return pipe()
