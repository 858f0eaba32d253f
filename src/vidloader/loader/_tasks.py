"""The unit of work sent to decode workers; top-level so spawned processes can unpickle it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from ..backends import Backend, DALIBackend, DecodedClip, PreparedClip, PyAVBackend, ResizeArg
from ..backends._audio import AudioSpec, clip_span, decode_audio_span
from ..dataset import VideoInfo
from ._audio import WithAudio

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
