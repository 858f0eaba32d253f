"""A loader's seed when none is given: drawn once, the same on every rank, and the saved one on resume.

``seed=None`` must not mean "the same clips every run" (a fixed default did), must not move the caller's
random numbers, and must give every rank of one run the same seed (ranks shard one shuffled epoch). So it
is torch's initial seed (new every run unless torch was seeded; ``torch.manual_seed(s)`` makes it ``s``),
rank 0's under ``torch.distributed``. A resumed run takes the seed its state was saved under.

Used by ``loader`` (``LoaderConfig.seed``, ``VideoLoader.load_state_dict``); it knows configs only as
dataclasses with a ``seed`` and a ``seed_drawn``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, ClassVar, Protocol, TypeVar

import torch

from ._validate import is_int

log = logging.getLogger("vidloader")


class SeededConfig(Protocol):
    """A frozen config dataclass with a seed that may have been drawn (``LoaderConfig``)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def seed(self) -> int: ...

    @property
    def seed_drawn(self) -> bool: ...


Config = TypeVar("Config", bound=SeededConfig)


def drawn_seed(world_size: int) -> int:
    """The seed of a loader built with ``seed=None``.

    Args:
        world_size: the loader's number of ranks.

    Returns:
        ``torch.initial_seed()`` (as a 63-bit int) of this process, or of rank 0 under an initialised
        ``torch.distributed`` with ``world_size > 1`` (one broadcast: every rank builds its loader).
    """
    seed = torch.initial_seed() & (2**63 - 1)
    if world_size == 1:
        return seed
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        shared = [seed]
        dist.broadcast_object_list(shared, src=0)
        return int(shared[0])
    log.warning(
        "vidloader: seed=None with world_size=%d outside torch.distributed: this rank drew seed %d from "
        "torch's initial seed, and ranks shard one epoch only if they agree; pass the same seed= on every "
        "rank (or seed torch alike)",
        world_size,
        seed,
    )
    return seed


def resume_seed(config: Config, state: Any) -> Config:
    """``config`` with the seed a saved loader state was made under, where ``config``'s was drawn: the
    resumed run goes on with the same clips. A seed given explicitly stays (a state saved under another one
    is then refused by the state check, which names the field).

    Args:
        config: the loader's config.
        state: a ``state_dict()`` (anything else is left to the state check to refuse).

    Returns:
        ``config`` itself, or a copy with the saved seed (still counted as drawn).
    """
    saved = state.get("config") if isinstance(state, dict) else None
    seed: Any = saved.get("seed") if isinstance(saved, dict) else None
    if not config.seed_drawn or not is_int(seed) or seed < 0 or seed == config.seed:
        return config
    resumed = replace(config, seed=seed)
    object.__setattr__(resumed, "_seed_drawn", True)  # frozen; it stays a seed this run did not choose
    return resumed
