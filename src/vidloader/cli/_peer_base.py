"""What a benchmark peer is: a per-clip decoder or a batch reader, and how one says it cannot run here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypedDict, Unpack

import numpy as np

from ..dataset import VideoDataset, VideoInfo
from ..sampling import ClipSpec


class PeerUnavailable(Exception):
    """The peer cannot run here; the message says why in one line."""


class Peer(Protocol):
    """Decodes one clip. Optional class attributes the benchmark reads: ``threads`` (set to the codec
    threads vidloader's decoder gets, so every row has the same budget), ``package`` (distribution
    names, first installed one wins, whose version goes in the report) and ``isolated`` (True: run in a child process whose FFmpeg comes
    from PyAV's wheel, see ``_ffmpeg_shim``)."""

    name: str

    def decode(
        self, info: VideoInfo, indices: Sequence[int], resize: tuple[int, int] | None
    ) -> np.ndarray: ...


class BatchOptions(TypedDict):
    """The keywords of ``BatchPeer.batches``, written once for the protocol and its readers.

    ``batch_size``: clips per batch; ``resize``: (height, width) of the frames it returns, or None for the
    files' own size; ``workers``: the reader's threads."""

    batch_size: int
    resize: tuple[int, int] | None
    workers: int


class BatchPeer(Protocol):
    """A peer that decodes whole batches itself (a reader pipeline): it gets the clip list up front."""

    name: str

    def batches(
        self, dataset: VideoDataset, clips: Sequence[ClipSpec], **options: Unpack[BatchOptions]
    ) -> Iterator[Any]: ...


def import_or_skip(module: str, why: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except Exception as exc:  # not only ImportError: torchcodec raises RuntimeError/OSError on missing FFmpeg
        raise PeerUnavailable(f"{why}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc


def resize_frames(frames: np.ndarray, resize: tuple[int, int] | None) -> np.ndarray:
    """``cv2.resize`` (bilinear) of every frame, for peers without a resize of their own."""
    if resize is None or frames.shape[1:3] == resize:
        return frames
    import cv2

    return np.stack([cv2.resize(f, (resize[1], resize[0]), interpolation=cv2.INTER_LINEAR) for f in frames])


def package_version(names: str | Sequence[str] | None) -> str | None:
    """The installed version of the first of ``names`` that is installed, else None."""
    from importlib import metadata

    for n in [names] if isinstance(names, str) else names or ():
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None
