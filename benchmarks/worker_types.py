#!/usr/bin/env python3
"""Thread workers against process workers: CPU per clip (this process and every child, psutil) and clips/s
of the same loader, interleaved round by round on a synthetic workload.

Thread workers write each clip straight into its batch row; process workers into the same rows of batch
memory shared with them (``vidloader/loader/_host_memory.py``), or, without room in /dev/shm, send the
frames back through the pool's result pipe. This measures what each costs.

    python benchmarks/worker_types.py --synthetic 360p-gop250 --workers 2 --batches 40 --rounds 2
"""

from __future__ import annotations

import argparse
import time

import psutil

import vidloader as vl
from vidloader.cli import ensure_workload


def cpu_s() -> float:
    """CPU seconds of this process and its live children (the worker processes)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue  # gone between the listing and the read: its time is not counted either way
    return total


def run(ds: vl.VideoDataset, worker_type: str, args: argparse.Namespace) -> tuple[float, float]:
    """(CPU ms per clip, clips/s) over ``args.batches`` batches after two warm-up batches."""
    loader = vl.VideoLoader(
        ds,
        batch_size=args.batch_size,
        frames_per_clip=16,
        frame_stride=2,
        clips_per_video=64,
        shared_decode=False,
        num_workers=args.workers,
        worker_type=worker_type,
        output_layout="NTHWC",
        backend="pyav",
        seed=0,
    )
    try:
        it = iter(loader)
        next(it), next(it)  # workers started, batch memory allocated
        c0, t0, clips = cpu_s(), time.perf_counter(), 0
        for batch in it:
            clips += len(batch)
            if clips >= args.batches * args.batch_size:
                break
        cpu, wall = cpu_s() - c0, time.perf_counter() - t0
    finally:
        loader.close()
    return 1000 * cpu / clips, clips / wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic", default="360p-gop250")
    p.add_argument("--data-root", default="bench-data")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    ds = vl.VideoDataset.from_folder(ensure_workload(args.synthetic, args.data_root))
    print(
        f"{args.synthetic}, {args.workers} workers, batch {args.batch_size}, {args.batches} batches per run"
    )
    for r in range(args.rounds):
        got = {wt: run(ds, wt, args) for wt in ("thread", "process")}
        line = ", ".join(f"{wt} {ms:.1f} ms/clip {cps:.0f} clips/s" for wt, (ms, cps) in got.items())
        print(f"round {r + 1}: {line}; process / thread CPU {got['process'][0] / got['thread'][0]:.2f}x")


if __name__ == "__main__":
    main()
