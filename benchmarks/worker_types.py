#!/usr/bin/env python3
"""Thread workers against process workers: CPU per clip (this process and every child, psutil) and clips/s
of the same loader, interleaved round by round on a synthetic workload.

Thread workers write each clip straight into its batch row; process workers into the same rows of batch
memory shared with them (``vidloader/loader/_host_memory.py``), or, without room in /dev/shm, send the
frames back through the pool's result pipe. This measures what each costs.

    python benchmarks/worker_types.py --synthetic 360p-gop250 --workers 2 --batches 40 --rounds 2

``--workers 1,2`` runs every worker count with both types in each round, and prints how clips/s scales from
the first count to the others: threads take turns at the GIL around each FFmpeg call, processes do not.
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


def run(ds: vl.VideoDataset, worker_type: str, workers: int, args: argparse.Namespace) -> tuple[float, float]:
    """(CPU ms per clip, clips/s) over ``args.batches`` batches after two warm-up batches."""
    loader = vl.VideoLoader(
        ds,
        batch_size=args.batch_size,
        frames_per_clip=16,
        frame_stride=2,
        clips_per_video=64,
        shared_decode=False,
        num_workers=workers,
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
    p.add_argument("--data-root", default="data/bench")
    p.add_argument("--workers", default="2", help="worker counts, comma-separated (default 2)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    if min(counts) < 1:
        p.error(
            f"--workers {args.workers!r}: every count must be >= 1 (worker types differ only with workers)"
        )
    ds = vl.VideoDataset.from_folder(ensure_workload(args.synthetic, args.data_root))
    print(
        f"{args.synthetic}, {args.workers} workers, batch {args.batch_size}, {args.batches} batches per run"
    )
    for r in range(args.rounds):
        got = {(wt, w): run(ds, wt, w, args) for w in counts for wt in ("thread", "process")}
        for w in counts:
            line = ", ".join(
                f"{wt} {got[wt, w][0]:.1f} ms/clip {got[wt, w][1]:.0f} clips/s"
                for wt in ("thread", "process")
            )
            ratio = got["process", w][0] / got["thread", w][0]
            print(f"round {r + 1}, {w} workers: {line}; process / thread CPU {ratio:.2f}x")
        for w in counts[1:]:
            scale = {wt: got[wt, w][1] / got[wt, counts[0]][1] for wt in ("thread", "process")}
            print(
                f"round {r + 1}, clips/s at {w} workers over {counts[0]}: thread {scale['thread']:.2f}x, "
                f"process {scale['process']:.2f}x"
            )


if __name__ == "__main__":
    main()
