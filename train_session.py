"""Where a train_example.py run lives: its rank among the ranks torchrun started, its device, its output
folder; the process group under torchrun is set up here and left at the end."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from train_config import dump_config


@dataclass(frozen=True)
class Session:
    """This process's place in the run: its rank of ``world``, its device and the output folder."""

    rank: int
    world: int
    device: torch.device
    out: Path

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the files and shows the progress."""
        return self.rank == 0


def start_session(cfg: dict[str, Any], *, write_config: bool) -> Session:
    """Threads, the process group (under torchrun), the output folder with the run's config.yaml, the seed."""
    tr = cfg["train"]
    if tr["threads"]:
        torch.set_num_threads(int(tr["threads"]))
    rank, world, device = setup_distributed(tr["device"])
    session = Session(rank, world, device, Path(tr["out"] or f"runs/{cfg['name']}"))
    if session.is_main:
        session.out.mkdir(parents=True, exist_ok=True)
        if write_config:  # the training run's config.yaml stays the one its checkpoints were made with
            dump_config(cfg, session.out / "config.yaml")
    torch.manual_seed(cfg["loader"].get("seed", 0))
    return session


def setup_distributed(device_pref: str) -> tuple[int, int, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; NCCL on GPU, gloo on CPU."""
    use_cuda = torch.cuda.is_available() if device_pref == "auto" else device_pref == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def shutdown_distributed() -> None:
    """Leave the process group once ``run``'s locals (the DDP model) are gone.

    Gloo's worker threads drop finished work, whose tensors need the GIL, a moment after the caller moved
    on, and a process group's destructor joins those threads while holding the GIL. Destroying the group
    inside ``run`` left DDP's reducer holding the last reference, so freeing the model at return could
    deadlock the process at exit (seen here: 1 run in ~10 of the 2-rank test hung; pytorch/pytorch#56297).
    Here the reducer is already gone, the barrier plus a short sleep (GIL released) let the threads finish
    their last work, and the registry drops the last reference."""
    if not dist.is_initialized():
        return
    dist.barrier()
    time.sleep(0.2)
    dist.destroy_process_group()
