"""The unit of work sent to decode workers; top-level so spawned processes can unpickle it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..backends import Backend, DALIBackend, DecodedClip, PreparedClip, ResizeArg
from ..dataset import VideoInfo


def decode_task(
    backend: Backend,
    info: VideoInfo,
    frame_indices: Sequence[int],
    resize: ResizeArg,
    apply_rotation: bool,
    out: np.ndarray | None = None,
) -> DecodedClip:
    return backend.decode_clip(info, frame_indices, resize=resize, apply_rotation=apply_rotation, out=out)


def prepare_task(
    backend: DALIBackend, info: VideoInfo, frame_indices: Sequence[int], resize: ResizeArg
) -> PreparedClip:
    return backend.prepare_clip(info, frame_indices, resize=resize)
