"""What a decode backend is: decode the frames of one clip plan entry, nothing about iteration."""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from .._errors import ConfigError, DecodeError
from .._validate import check_int
from ..dataset import VideoInfo

if TYPE_CHECKING:
    from ._audio import AudioSpec

ResizeArg = int | tuple[int, int] | None


@dataclass(frozen=True)
class DecodedClip:
    """Frames of one clip, in the order asked for (repeated indices repeat frames)."""

    frames: np.ndarray = field(repr=False)  # uint8 [T, H, W, 3], RGB
    pts: tuple[int, ...]  # stream time base
    timestamps: tuple[float, ...]  # seconds

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [T,H,W,3], got {self.frames.dtype} {self.frames.shape}")
        if not len(self.pts) == len(self.timestamps) == self.frames.shape[0]:
            raise ValueError("frames, pts and timestamps disagree in length")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.frames.shape)

    def placed(self, out: np.ndarray) -> DecodedClip:
        """This clip with its frames copied into ``out`` (a batch row of the same shape)."""
        out[...] = self.frames
        return replace(self, frames=out)

    def swap_frames(self, swap: Callable[[Any], Any]) -> DecodedClip:
        """This clip with ``swap(frames)`` as its frames, nothing copied or checked: how a process worker
        sends frames it wrote into shared batch memory as a reference to them, and how the loader puts its
        own view of that memory back (``vidloader.loader``'s shared rows)."""
        out = copy.copy(self)
        object.__setattr__(out, "frames", swap(self.frames))
        return out


# A seek that lands past a needed frame (open GOP, an index that is off by a packet) is retried from at
# most this many earlier keyframes; stepping back one keyframe at a time down to frame 0 made a bad clip
# near the end of a long file cost a decode of the whole file per keyframe (quadratic).
MAX_KEYFRAME_RETRIES = 2


def keyframes_to_try(keyframe_pts: Sequence[int], first_pts: int) -> list[int]:
    """The keyframes (pts) a decode of a clip starting at ``first_pts`` starts from, in the order to try.

    Args:
        keyframe_pts: the video's keyframe timestamps, ascending.
        first_pts: the timestamp of the clip's first frame.

    Returns:
        The keyframe at or before ``first_pts`` followed by at most ``MAX_KEYFRAME_RETRIES`` earlier ones
        (never empty: ``[first_pts]`` when the index lists no keyframe).
    """
    if not keyframe_pts:
        return [first_pts]
    k = max(bisect.bisect_right(keyframe_pts, first_pts) - 1, 0)
    return [keyframe_pts[j] for j in range(k, max(k - MAX_KEYFRAME_RETRIES, 0) - 1, -1)]


def output_size(info: VideoInfo, resize: ResizeArg, *, apply_rotation: bool) -> tuple[int, int]:
    """(height, width) of decoded frames as delivered (after rotation, if applied, and resize).

    Args:
        info: the probed video.
        resize: None, a short side, or (height, width).
        apply_rotation: whether the display rotation is applied (90/270 swap height and width).

    Returns:
        ``(height, width)``.
    """
    h, w = info.height, info.width
    if apply_rotation and info.rotation in (90, 270):
        h, w = w, h
    if resize is None:
        return h, w
    if isinstance(resize, int):
        # Short side to `resize`, long side scaled and rounded; even sizes are not forced.
        if h <= w:
            return resize, max(1, round(w * resize / h))
        return max(1, round(h * resize / w)), resize
    return int(resize[0]), int(resize[1])


def check_resize(resize: object) -> ResizeArg:
    """Validate a ``resize=`` argument.

    Args:
        resize: None, a positive int (short side) or a (height, width) pair of positive ints.

    Returns:
        The value, a pair as a tuple.

    Raises:
        ConfigError: any other value.
    """
    if resize is None:
        return None
    try:
        if isinstance(resize, (tuple, list)) and len(resize) == 2:
            return (check_int("resize", resize[0], minimum=1), check_int("resize", resize[1], minimum=1))
        return check_int("resize", resize, minimum=1)
    except ConfigError:
        pass  # one message for every wrong shape of the argument
    raise ConfigError(
        f"resize={resize!r} is not allowed; give None, a positive int (short side) or (height, width)"
    )


@dataclass(frozen=True)
class ClipRequest:
    """One clip of a batch, as the loader asks a backend for it: the video, its frames, and the host batch row
    the frames are to be written into (a uint8 ``[T, H, W, 3]`` view), or None for frames of their own."""

    info: VideoInfo
    frame_indices: Sequence[int]
    out: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DecodeSettings:
    """What every clip of a loader is decoded with: ``resize``, ``apply_rotation`` and the audio wanted with
    each clip (an ``AudioSpec``, or None)."""

    resize: ResizeArg = None
    apply_rotation: bool = False
    audio: AudioSpec | None = None


@dataclass(frozen=True, eq=False)  # compared by identity: its args hold numpy rows
class DecodeTask:
    """One call for the loader's workers: ``fn(*args)`` (``fn`` top-level, so spawned processes unpickle it)
    decodes the requests at positions ``members``. A task of one member returns its result, one of several
    a list of them (``results`` unpacks both). A result has the clip's ``timestamps``; with audio wanted it
    is a ``WithAudio``. ``fallback`` says why the clip decodes some other way than the backend's own (a file
    it cannot take), for the loader to count; None when it does not."""

    members: tuple[int, ...]
    fn: Callable[..., Any] = field(repr=False)
    args: tuple[Any, ...] = field(repr=False)
    fallback: str | None = None

    def results(self, returned: Any) -> list[Any]:
        """What ``fn`` returned, as one result per member."""
        return list(returned) if len(self.members) > 1 else [returned]


@dataclass(frozen=True)
class BatchFrames:
    """What a backend's ``finish_batch`` gives: the positions that decoded, in order, each one's uint8
    ``[T, H, W, 3]`` frames (host or device memory), and, when the backend made one, all of them as one
    ``[B', T, H, W, 3]`` tensor (frames born together on the device: handed on without a copy)."""

    kept: list[int]
    frames: list[torch.Tensor] = field(repr=False)
    stacked: torch.Tensor | None = field(default=None, repr=False)


def group_by_video(requests: Sequence[ClipRequest]) -> list[list[int]]:
    """Positions of ``requests``, grouped by video (a path and its segment), videos in order of first use."""
    groups: dict[tuple[str, int, int, int], list[int]] = {}
    for i, r in enumerate(requests):
        key = (r.info.path, r.info.stream_index, r.info.first_frame, r.info.num_frames)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


class Backend(Protocol):
    """A decoder, as the loader drives it per batch: ``tasks`` turns the batch's clips into calls for its
    workers, and ``finish_batch`` turns what those returned into frames, once per batch on the loader's
    producing thread (on torch's current CUDA stream). ``PyAVBackend`` decodes on the CPU in the tasks
    (``decode_clip`` per clip) and has nothing left to finish; ``DALIBackend`` cuts packets in the tasks
    and decodes the batch on the device in ``finish_batch``.

    ``writes_host_rows`` says whether its tasks write decoded frames into host batch rows given in the
    requests (``ClipRequest.out``); a backend whose frames are born on a device says False.
    """

    name: str
    writes_host_rows: bool

    def tasks(
        self, requests: Sequence[ClipRequest], settings: DecodeSettings, *, shared: bool
    ) -> list[DecodeTask]:
        """The worker calls that decode ``requests``.

        Args:
            requests: the clips, in batch order.
            settings: resize, rotation and audio.
            shared: whether clips of one video may share one decode pass (where the backend has them).

        Returns:
            Tasks whose ``members`` cover every position of ``requests`` once.
        """
        ...

    def finish_batch(
        self,
        results: Sequence[Any],
        settings: DecodeSettings,
        fail: Callable[[int, DecodeError], None],
    ) -> BatchFrames:
        """The frames of a batch's task results (audio already taken off), in one step for the batch.

        Args:
            results: one task result per clip that decoded so far.
            settings: resize, rotation and audio.
            fail: told of each position that fails here, with the error (it may raise).

        Returns:
            The positions that decoded and their frames.
        """
        ...
