"""Elastic resume: the rest of an epoch, split again when the world size changed since the state was saved.

An epoch is a sequence of stages. Stage 0 is the plan every rank had at the world size the epoch started
with (``plan_epoch``). When training restarts at another world size, the clips no rank had consumed yet
(every rank consumed the same number: DDP ranks step in lockstep) are gathered in a fixed order and dealt
round-robin to the new ranks; that is the next stage. Like ``plan_epoch``, a stage gives every rank equally
many clips, so the last few clips of a stage whose count does not divide by the world size are dealt twice
(at most ``world_size - 1`` of them); no clip is lost, and none already consumed comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .._errors import ConfigError
from .._validate import check_index, is_int
from ._clips import ClipPlan, ClipSpec

PlanFn = Callable[[int, int], Sequence[ClipSpec]]


def _dealt(clips: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Positions of ``rank``'s share of ``clips`` dealt round-robin, padded from the start."""
    if not len(clips):
        return clips
    per_rank = -(-len(clips) // world_size)
    return clips[(rank + np.arange(per_rank) * world_size) % len(clips)]


def _left(shares: np.ndarray, consumed: int) -> np.ndarray:
    """What ranks holding the rows of ``shares`` had not consumed, position by position."""
    return shares[:, consumed:].T.ravel()


def deal(clips: Sequence[ClipSpec], *, rank: int, world_size: int) -> list[ClipSpec]:
    """One rank's share of ``clips``, dealt round-robin, every rank padded to the same length.

    Args:
        clips: the clips to deal, in order.
        rank: this rank.
        world_size: the number of ranks.

    Returns:
        ``clips[rank::world_size]``, padded with clips from the start to ``ceil(len(clips) / world_size)``.

    Raises:
        ConfigError: ``rank`` is outside ``[0, world_size)``.
    """
    check_index("rank", rank, world_size)
    return [clips[i] for i in _dealt(np.arange(len(clips)), rank, world_size).tolist()]


def _check_equal(lengths: Sequence[int]) -> None:
    if len(set(lengths)) > 1:
        raise ConfigError(f"ranks of one stage must hold equally many clips, got {list(lengths)}")


def remaining(shares: Sequence[Sequence[ClipSpec]], consumed: int) -> list[ClipSpec]:
    """What the ranks of one stage had not consumed.

    Args:
        shares: every rank's clips in the stage (equally many each).
        consumed: clips each rank had consumed.

    Returns:
        The rest, position by position (every rank's next clip, then the one after).

    Raises:
        ConfigError: the ranks hold different numbers of clips.
    """
    _check_equal([len(s) for s in shares])
    length = len(shares[0]) if shares else 0
    left = _left(np.arange(len(shares) * length).reshape(len(shares), length), consumed)
    return [shares[i // length][i % length] for i in left.tolist()]


def check_stages(stages: object) -> list[tuple[int, int]]:
    """Validate the stages saved in a loader state.

    Args:
        stages: the saved value: a list of ``[world_size, clips consumed per rank]``.

    Returns:
        The stages as (world_size, consumed) tuples.

    Raises:
        ConfigError: the value is not such a list.
    """
    if not isinstance(stages, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(is_int(x) for x in s) and s[0] >= 1 and s[1] >= 0
        for s in stages
    ):
        raise ConfigError(f"stages must be a list of [world_size >= 1, clips >= 0] pairs, got {stages!r}")
    return [(int(w), int(c)) for w, c in stages]


def resume_plan(
    plan: PlanFn, stages: Sequence[tuple[int, int]], *, rank: int, world_size: int
) -> Sequence[ClipSpec]:
    """The clips ``rank`` yields in the current stage of an epoch.

    Args:
        plan: ``plan(rank, world_size)``, the epoch's plan of one rank (stage 0).
        stages: (world size, clips each rank consumed) of every earlier stage of the epoch, oldest first;
            empty when the epoch never changed world size.
        rank, world_size: this rank now.

    Returns:
        This rank's clips of the current stage, in order (all ranks get equally many).

    Raises:
        ConfigError: ``rank`` is outside ``[0, world_size)``, or the ranks of a stage hold different
            numbers of clips.
    """
    check_index("rank", rank, world_size)
    if not stages:
        return plan(rank, world_size)
    # Clips are followed as positions in stage 0's plans (arrays), not as ClipSpec objects.
    w0, consumed = stages[0]
    shares = [plan(r, w0) for r in range(w0)]
    _check_equal([len(s) for s in shares])
    length = len(shares[0])
    left = _left(np.arange(w0 * length).reshape(w0, length), consumed)
    for w, consumed in stages[1:]:
        left = _left(np.stack([_dealt(left, r, w) for r in range(w)]), consumed)
    return ClipPlan.concat(shares).take(_dealt(left, rank, world_size))
