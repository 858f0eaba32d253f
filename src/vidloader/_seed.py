"""A loader's seed when none is given: drawn once, the same on every rank, and the saved one on resume.

``seed=None`` must not mean "the same clips every run" (a fixed default did), must not move the caller's
random numbers, and must give every rank of one run the same seed (ranks shard one shuffled epoch). So it
is torch's initial seed (new every run unless torch was seeded; ``torch.manual_seed(s)`` makes it ``s``),
rank 0's under ``torch.distributed``. A resumed run takes the seed its state was saved under.

Used by ``loader`` (``LoaderConfig.seed``, ``VideoLoader.load_state_dict``); it knows configs only as
dataclasses with a ``seed`` and a ``seed_drawn``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar, Protocol, TypeVar

import torch

from ._errors import ConfigError
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


# How long a rank waits for rank 0's drawn seed: rank 0 may still be indexing its dataset, but a rank 0
# that never builds this loader must end in a named error, not a hang.
SEED_WAIT_S = 60.0
_drawn = itertools.count()  # loaders of this process that drew a seed: the n-th of each rank pair up


def drawn_seed(world_size: int) -> int:
    """The seed of a loader built with ``seed=None``.

    Under an initialised ``torch.distributed`` with ``world_size > 1`` rank 0's seed is shared through the
    process group's store (rank 0 writes it, the others wait for it), not a collective: a rank that builds
    a loader another rank never builds (an evaluation loader on rank 0 only) cannot hang the others.

    Args:
        world_size: the loader's number of ranks.

    Returns:
        ``torch.initial_seed()`` (as a 63-bit int) of this process, or of rank 0 (its n-th seed-drawing
        loader's, for this process's n-th one).

    Raises:
        ConfigError: rank 0 did not share a seed within ``SEED_WAIT_S`` seconds (it builds no such loader).
    """
    seed = torch.initial_seed() & (2**63 - 1)
    if world_size == 1:
        return seed
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return _rank_zeros(dist, seed)
    log.warning(
        "vidloader: seed=None with world_size=%d outside torch.distributed: this rank drew seed %d from "
        "torch's initial seed, and ranks shard one epoch only if they agree; pass the same seed= on every "
        "rank (or seed torch alike)",
        world_size,
        seed,
    )
    return seed


def _rank_zeros(dist: Any, seed: int) -> int:
    # The default group's store is what torch.distributed itself rendezvoused through; torch names it
    # privately only, so a missing one falls back to the collective every rank must then join.
    key = f"vidloader/seed/{next(_drawn)}"
    store_of = getattr(dist.distributed_c10d, "_get_default_store", None)
    if store_of is None:
        shared = [seed]
        dist.broadcast_object_list(shared, src=0)
        return int(shared[0])
    store = store_of()
    if dist.get_rank() == 0:
        store.set(key, str(seed))
        return seed
    try:
        store.wait([key], timedelta(seconds=SEED_WAIT_S))
    except dist.DistStoreError as exc:  # the wait timed out
        raise ConfigError(
            f"seed=None under torch.distributed takes rank 0's seed, and rank 0 did not build this loader "
            f"within {SEED_WAIT_S:.0f} s ({type(exc).__name__}); build it on every rank in the same order, or "
            "pass the same seed= on every rank"
        ) from None
    return int(store.get(key))


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
