"""Decode tasks: the calls sent to workers (top-level, so spawned processes can unpickle them) and how a
batch's clips become tasks (one per clip, or one per group of clips a single decode pass serves)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..backends import (
    AudioSpec,
    Backend,
    DALIBackend,
    DecodedClip,
    PreparedClip,
    PyAVBackend,
    ResizeArg,
    clip_span,
    decode_audio_span,
    shared_decode_groups,
)
from ..dataset import VideoDataset, VideoInfo
from ..sampling import ClipSpec
from ._audio import WithAudio
from ._config import LoaderConfig
from ._stats import LoaderStats

_Clip = TypeVar("_Clip", DecodedClip, PreparedClip)


def decode_task(
    backend: Backend,
    info: VideoInfo,
    frame_indices: Sequence[int],
    resize: ResizeArg,
    apply_rotation: bool,
    out: np.ndarray | None = None,
    audio: AudioSpec | None = None,
) -> DecodedClip | WithAudio:
    clip = backend.decode_clip(info, frame_indices, resize=resize, apply_rotation=apply_rotation, out=out)
    return _with_audio(clip, info, frame_indices, audio)


def decode_group_task(
    backend: PyAVBackend,
    info: VideoInfo,
    clips: Sequence[Sequence[int]],
    resize: ResizeArg,
    apply_rotation: bool,
    outs: Sequence[np.ndarray | None],
    audio: AudioSpec | None = None,
) -> list[DecodedClip | WithAudio]:
    decoded = backend.decode_clips(info, clips, resize=resize, apply_rotation=apply_rotation, outs=outs)
    return [_with_audio(d, info, c, audio) for d, c in zip(decoded, clips, strict=True)]


def prepare_task(
    backend: DALIBackend,
    info: VideoInfo,
    frame_indices: Sequence[int],
    resize: ResizeArg,
    audio: AudioSpec | None = None,
) -> PreparedClip | WithAudio:
    # DALI decodes only video; the clip's audio is decoded here on the CPU, in the same task.
    return _with_audio(backend.prepare_clip(info, frame_indices, resize=resize), info, frame_indices, audio)


def _with_audio(
    result: _Clip, info: VideoInfo, frame_indices: Sequence[int], audio: AudioSpec | None
) -> _Clip | WithAudio:
    if audio is None:
        return result
    t0, t1 = clip_span(info, frame_indices)
    return WithAudio(result, decode_audio_span(info, t0, t1, audio))


@dataclass(eq=False)  # compared by identity: its args hold numpy rows
class DecodeUnit:
    """One call for the workers and the batch positions (``members``) it decodes, in order.

    A unit of several members returns a list (one result per member); a unit of one, the result."""

    members: list[int]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    retried: bool = False  # already submitted again after its worker died
    future: Future | None = field(default=None, repr=False)

    @property
    def shared(self) -> bool:
        return len(self.members) > 1


class TaskMaker:
    """Turns a batch's clips into DecodeUnits for one pass (one backend, chosen when the pass starts).

    With the PyAV backend, clips of one video that a single decode pass serves (multiview, sliding,
    several clips per video) share it: one task decodes their union from the keyframe once, instead of a
    seek-and-decode per clip. With DALI, workers only cut the clip's packets (``prepare_task``); files
    DALI cannot decode here fall back to PyAV per clip."""

    def __init__(self, *, dataset: VideoDataset, backend: Any, config: LoaderConfig, stats: LoaderStats):
        self.dataset = dataset
        self.backend = backend
        self.config = config
        self.stats = stats
        self._fallback = PyAVBackend()

    def units(self, clips: list[ClipSpec], rows: list[np.ndarray | None]) -> list[DecodeUnit]:
        """The units decoding ``clips`` (``rows``: where each clip's frames go, or None)."""
        by_video: dict[int, list[int]] = {}
        for i, c in enumerate(clips):
            by_video.setdefault(c.video_index, []).append(i)
        units = []
        for v, idxs in by_video.items():
            groups = [[k] for k in range(len(idxs))]
            if len(idxs) > 1 and self.config.shared_decode and isinstance(self.backend, PyAVBackend):
                groups = shared_decode_groups(self.dataset[v], [clips[i].frame_indices for i in idxs])
            for group in groups:
                members = [idxs[k] for k in group]
                if len(members) == 1:
                    units.append(self.single(clips, rows, members[0]))
                    continue
                self.stats.counts["shared_decode_clips"] += len(members)
                args = (
                    self.backend,
                    self.dataset[v],
                    [clips[m].frame_indices for m in members],
                    self.config.resize,
                    self.config.apply_rotation,
                    [rows[m] for m in members],
                    self.config.audio,
                )
                units.append(DecodeUnit(members, decode_group_task, args))
        return units

    def single(self, clips: list[ClipSpec], rows: list[np.ndarray | None], m: int) -> DecodeUnit:
        """The unit decoding clip ``m`` by itself."""
        clip, cfg = clips[m], self.config
        info = self.dataset[clip.video_index]
        backend = self.backend
        args: tuple[Any, ...]
        if isinstance(backend, DALIBackend):
            reason = backend.unsupported_reason(info) if not cfg.apply_rotation else "apply_rotation=True"
            if reason is None:
                args = (backend, info, clip.frame_indices, cfg.resize, cfg.audio)
                return DecodeUnit([m], prepare_task, args)
            self.stats.fallback(info.path, reason)
            backend = self._fallback
        args = (backend, info, clip.frame_indices, cfg.resize, cfg.apply_rotation, rows[m], cfg.audio)
        return DecodeUnit([m], decode_task, args)
