"""Where a loader runs: its torch device and its shard (rank, world size), from what it was given and,
for what it was not, from torch.distributed."""

from __future__ import annotations

from typing import Any

import torch

from ._errors import ConfigError

__all__ = ["check_device", "rank_and_world"]


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` with its index (``"cuda"`` is the current CUDA device).

    Raises:
        ConfigError: not a CPU or CUDA device, or CUDA asked for where torch sees none.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        # torch's own error for an unknown device string lists every backend it knows, not ours.
        raise ConfigError(f"device={str(device)!r} is not allowed; choose 'cpu' or 'cuda[:N]'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={str(device)!r} is not allowed; choose 'cpu' or 'cuda[:N]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size): the ones given, else torch.distributed's when it is initialised, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return (dist.get_rank() if rank is None else rank), (
            dist.get_world_size() if world_size is None else world_size
        )
    return (0 if rank is None else rank), (1 if world_size is None else world_size)
