#!/usr/bin/env python3
"""What a pass broken off mid-epoch still costs: CPU (this process and its worker processes) spent after
the iterator is closed, and how long until the workers are quiet. A thread worker's decode stops at its
next packet once its pass has ended; a process worker's reads the same stop from shared memory.

    python benchmarks/break_cost.py --synthetic 1080p-gop250 --data-root data/bench --batch-size 2 \\
        --batches 6 --worker-type process --rounds 3
"""

from __future__ import annotations

import argparse
import time

import vidloader as vl
from vidloader.cli import ensure_workload
from vidloader.cli._measure import process_cpu_seconds, wait_until_quiet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic", default="360p-gop250")
    p.add_argument("--data-root", default="data/bench")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-type", default="process", choices=["thread", "process"])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--batches", type=int, default=12, help="batches taken before the break")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    ds = vl.VideoDataset.from_folder(ensure_workload(args.synthetic, args.data_root))
    loader = vl.VideoLoader(
        ds,
        backend="pyav",
        batch_size=args.batch_size,
        frames_per_clip=16,
        frame_stride=2,
        clips_per_video=max(1, 400 // len(ds)),
        num_workers=args.workers,
        worker_type=args.worker_type,
        shared_decode=False,
        output_layout="NTHWC",
    )
    try:
        warm = iter(loader)
        next(warm)  # workers started
        warm.close()
        wait_until_quiet()
        for r in range(args.rounds):
            loader.set_epoch(r)
            it = iter(loader)
            for _ in range(args.batches):
                next(it)
            cpu0, t0 = process_cpu_seconds(), time.perf_counter()
            it.close()
            quiet = wait_until_quiet()  # under 20% of a core over 50 ms, workers included
            cpu = process_cpu_seconds() - cpu0
            print(
                f"round {r + 1}: {args.worker_type} workers, after the break {1000 * cpu:.1f} ms of CPU, "
                f"quiet after {time.perf_counter() - t0:.2f} s (waited {quiet:.2f} s)"
            )
    finally:
        loader.close()


if __name__ == "__main__":
    main()
