"""One rank of the torchrun tests in test_elastic.py (started by torchrun: RANK, WORLD_SIZE, MASTER_ADDR...).

Usage: elastic_worker.py INDEX OUT_DIR PHASE [BATCHES]
  PHASE "save":   take BATCHES batches, record their clips; rank 0 writes the loader state.
  PHASE "resume": load that state (saved at another world size), run the rest of the epoch.
  PHASE "full":   run the whole epoch.
Every rank records its clips to OUT_DIR/<phase>-rank<r>.json and checks, over gloo, that all ranks yielded
equally many batches (DDP steps in lockstep).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import vidloader as vl


def main() -> None:
    index, out, phase = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    ds = vl.VideoDataset.from_index(index)  # indexed once, opened by every rank without probing
    loader = vl.VideoLoader(
        ds,
        batch_size=2,
        frames_per_clip=4,
        frame_stride=2,
        clips_per_video=3,
        seed=5,
        num_workers=0,
        backend="pyav",
    )
    assert (loader.rank, loader.world_size) == (rank, world)
    if phase == "resume":
        loader.load_state_dict(json.loads((out / "state.json").read_text()))
    take = int(sys.argv[4]) if phase == "save" else None
    clips = []
    n = 0
    for batch in loader:
        clips += [
            [v, c, f]
            for v, c, f in zip(
                batch.video_index.tolist(), batch.clip_index.tolist(), batch.frame_index.tolist(), strict=True
            )
        ]
        n += 1
        if take is not None and n == take:
            break
    counts = torch.tensor([n, -n])
    dist.all_reduce(counts, op=dist.ReduceOp.MAX)
    assert counts[0] == -counts[1] == n, f"ranks yielded different batch counts ({counts.tolist()})"
    (out / f"{phase}-rank{rank}.json").write_text(json.dumps({"world_size": world, "clips": clips}))
    if phase == "save":
        state = loader.state_dict()
        states: list = [None] * world
        dist.all_gather_object(states, state)
        assert all(s == state for s in states), "every rank's state is the same"
        if rank == 0:
            (out / "state.json").write_text(json.dumps(state))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
