"""The calls a loader's workers run (top-level, so spawned processes can unpickle them): decode one clip,
decode several clips of one video in one pass, or cut a clip's packets for DALI; each with the clip's audio
decoded alongside when the loader wants it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from ..dataset import VideoInfo
from ._audio import AudioSpan, AudioSpec, clip_span, decode_audio_span
from ._base import DecodedClip, ResizeArg


class ClipDecoder(Protocol):
    """What the decode tasks call: a CPU decoder of one clip, or of several clips of one video in one pass."""

    def decode_clip(
        self,
        info: VideoInfo,
        frame_indices: Sequence[int],
        *,
        resize: ResizeArg = None,
        apply_rotation: bool = False,
        out: np.ndarray | None = None,
    ) -> DecodedClip: ...

    def decode_clips(
        self,
        info: VideoInfo,
        clips: Sequence[Sequence[int]],
        *,
        resize: ResizeArg = None,
        apply_rotation: bool = False,
        outs: Sequence[np.ndarray | None] | None = None,
    ) -> list[DecodedClip]: ...


class ClipPreparer(Protocol):
    """What the prepare task calls: cut a clip's packets for a device decoder."""

    def prepare_clip(
        self, info: VideoInfo, frame_indices: Sequence[int], *, resize: ResizeArg = None
    ) -> Any: ...


@dataclass(frozen=True)
class WithAudio:
    """A task's result when the loader wants audio: the frame result and the clip's audio."""

    frames: Any  # a DecodedClip, or what a device backend decodes later (a PreparedClip)
    audio: AudioSpan

    def placed(self, out: np.ndarray) -> WithAudio:
        """This result with its frames copied into ``out`` (a batch row; host-decoded frames only)."""
        return replace(self, frames=self.frames.placed(out))

    def swap_frames(self, swap: Callable[[Any], Any]) -> WithAudio:
        """This result with its frame result's ``swap_frames(swap)``."""
        return replace(self, frames=self.frames.swap_frames(swap))


def with_audio(result: Any, info: VideoInfo, frame_indices: Sequence[int], audio: AudioSpec | None) -> Any:
    """``result`` as it is without ``audio``, else in a WithAudio with the clip's audio span."""
    if audio is None:
        return result
    t0, t1 = clip_span(info, frame_indices)
    return WithAudio(result, decode_audio_span(info, t0, t1, audio))


def decode_task(
    backend: ClipDecoder,
    info: VideoInfo,
    frame_indices: Sequence[int],
    resize: ResizeArg,
    apply_rotation: bool,
    out: np.ndarray | None = None,
    audio: AudioSpec | None = None,
) -> DecodedClip | WithAudio:
    """One clip through ``backend.decode_clip`` (on the instance given: tests swap in instrumented ones)."""
    clip = backend.decode_clip(info, frame_indices, resize=resize, apply_rotation=apply_rotation, out=out)
    return with_audio(clip, info, frame_indices, audio)


def decode_group_task(
    backend: ClipDecoder,
    info: VideoInfo,
    clips: Sequence[Sequence[int]],
    resize: ResizeArg,
    apply_rotation: bool,
    outs: Sequence[np.ndarray | None],
    audio: AudioSpec | None = None,
) -> list[DecodedClip | WithAudio]:
    """Several clips of one video in one decode pass (``backend.decode_clips``), one result per clip."""
    decoded = backend.decode_clips(info, clips, resize=resize, apply_rotation=apply_rotation, outs=outs)
    return [with_audio(d, info, c, audio) for d, c in zip(decoded, clips, strict=True)]


def prepare_task(
    backend: ClipPreparer,
    info: VideoInfo,
    frame_indices: Sequence[int],
    resize: ResizeArg,
    audio: AudioSpec | None = None,
) -> Any:
    """A clip's packets cut for a device decode (``backend.prepare_clip``); DALI decodes only video, so the
    clip's audio is decoded here on the CPU, in the same task."""
    return with_audio(backend.prepare_clip(info, frame_indices, resize=resize), info, frame_indices, audio)
