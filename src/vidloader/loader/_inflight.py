"""A batch while it is decoded: its tasks on the workers, what they returned, its decoded frames, and the
clips of later batches its decode passes serve (decoding ahead).

Decoding ahead: a backend decodes clips of one video that share a keyframe run in one pass (``shared=True``).
Within a batch that is the backend's business; across batches it is the loader's: when a batch is submitted,
clips of the same videos in the next ``window`` batches are offered to the backend with it, and a pass that
takes one of them *claims* it. The claimed clip's batch then waits for that pass instead of decoding the clip
again. Which clips a batch holds, their order and their frames never change (a shared pass returns the frames
a pass of its own would); only who decodes them. A claim whose pass fails, is abandoned or dies is *lost*, and
the clip's own batch decodes it by itself, as it would have without the claim.

Memory: a claimed clip's frames are held from the end of the earlier pass until its own batch is collected,
so at most ``window`` batches of clips wait at any time. It pays when clips of one video sit in neighbouring
batches (evaluation views and ``shuffle=False`` plans with ``clips_per_video > 1``, small datasets); shuffled
clips of a large dataset rarely meet within the window, and then nothing is claimed."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from ..backends import AudioSpan, ClipRequest, DecodeTask
from ..sampling import ClipSpec

# A batch tensor in each layout, seen as NTHWC.
TO_NTHWC = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 2, 3, 4, 1), "NTCHW": (0, 1, 3, 4, 2)}


@dataclass(eq=False)
class Running:
    """A task on the workers."""

    task: DecodeTask
    future: Future = field(repr=False)
    retried: bool = False  # already submitted again after its worker died
    # Members that are later batches' clips (claimed: decoding ahead, below), with the futures their
    # batches wait on.
    claims: dict[int, Future] = field(default_factory=dict, repr=False)
    borrowed: bool = False  # ``future`` is an earlier batch's claim on this clip; ``task`` decodes it alone


@dataclass
class PendingBatch:
    """A submitted batch: its clips, their requests, the host buffer its workers write into (or None)."""

    index: int
    clips: list[ClipSpec]
    requests: list[ClipRequest] = field(repr=False)
    buffer: torch.Tensor | None = field(repr=False)
    running: list[Running] = field(repr=False)


@dataclass
class CollectedBatch:
    """What the workers returned for a batch: the clips that got a result (in plan order), those results,
    and where each sits in the batch's host buffer."""

    index: int
    clips: list[ClipSpec]
    results: list[Any] = field(repr=False)
    buffer: torch.Tensor | None = field(repr=False)
    rows: list[int]


@dataclass
class DecodedBatch:
    """A batch's decoded clips: each clip's uint8 ``[T, H, W, 3]`` frames (host or device memory), and when
    every clip has one frame size, ``video``: all of them as one uint8 tensor laid out as ``layout`` (in its
    own memory order, so it moves to the device in one copy), where each clip whose frames live elsewhere
    (on the GPU, the tensor on the host) is still to be copied in."""

    clips: list[ClipSpec]
    timestamps: list[tuple[float, ...]]
    frames: list[torch.Tensor] = field(repr=False)
    video: torch.Tensor | None = field(repr=False)
    layout: str
    audio: list[AudioSpan] | None = field(repr=False)


class ClaimLost(Exception):
    """The earlier pass that claimed a clip did not deliver it (failed, abandoned, or its worker died)."""


@dataclass(frozen=True)
class Offer:
    """A clip of a later batch offered to an earlier batch's decode: its batch (position in the pass) and its
    position in that batch."""

    batch: int
    position: int
    clip: ClipSpec


class AheadClaims:
    """The claims of one pass over ``batches``: which later clips an earlier pass decodes, and a future per
    claim that the earlier pass resolves with the clip's result (or ``ClaimLost``).

    Args:
        batches: the pass's batches of clips.
        window: how many later batches a batch's decode may serve (0: none).
    """

    def __init__(self, batches: Sequence[list[ClipSpec]], window: int) -> None:
        self.batches, self.window = batches, window
        self._claims: dict[tuple[int, int], Future] = {}

    def offers(self, b: int) -> list[Offer]:
        """Unclaimed clips of the ``window`` batches after ``b`` whose videos batch ``b`` decodes."""
        videos = {c.video_index for c in self.batches[b]}
        return [
            Offer(j, p, c)
            for j in range(b + 1, min(b + 1 + self.window, len(self.batches)))
            for p, c in enumerate(self.batches[j])
            if c.video_index in videos and (j, p) not in self._claims
        ]

    def claim(self, offer: Offer) -> Future:
        """The future the claiming pass resolves with ``offer``'s result."""
        fut: Future = Future()
        self._claims[(offer.batch, offer.position)] = fut
        return fut

    def claimed(self, b: int) -> dict[int, Future]:
        """Batch ``b``'s claimed clips (by position) and their futures, forgotten here."""
        return {p: self._claims.pop((b, p)) for p in range(len(self.batches[b])) if (b, p) in self._claims}


def deliver(futures: Sequence[Future], results: Sequence[object] | None) -> None:
    """Resolve claims: with their results, or (``results`` None) as lost."""
    for i, fut in enumerate(futures):
        if results is None:
            fut.set_exception(ClaimLost())
        else:
            fut.set_result(results[i])
