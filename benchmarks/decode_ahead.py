#!/usr/bin/env python3
"""What decoding ahead saves: a batch's shared decode passes also serving clips of one video in the next
batches (``vidloader/loader/_inflight.py``), against the same loader with those offers switched off (in-batch
sharing only), interleaved round by round in one process, threads as workers (so getrusage counts every
decode).

Plans: evaluation order (``--sampling uniform`` or ``multiview``, ``shuffle=False``: a video's clips are
neighbours, so a video straddling a batch boundary was decoded from its keyframe once per batch) and, with
``--sampling random``, shuffled training clips (``clips_per_video`` clips per video spread over the epoch:
claims need a clip of the same video within ``prefetch`` batches, so they fall as the dataset grows).

    python benchmarks/decode_ahead.py --synthetic kinetics-like --sampling uniform --clips-per-video 10 \
        --batch-size 8 --workers 1,2 --rounds 3 [--json out.json]

Per run: CPU ms per clip (process, every thread), clips/s, clips served by an earlier batch's pass, and
the CPU ratio off / on (above 1: decoding ahead saves). Frames are compared between the two arms.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

import vidloader as vl
from vidloader.cli import ensure_workload
from vidloader.loader import _inflight


@contextmanager
def offers_off() -> Iterator[None]:
    """The loader with no clip offered to an earlier batch's pass: in-batch sharing only."""
    saved = _inflight.AheadClaims.offers
    _inflight.AheadClaims.offers = lambda self, b: []  # type: ignore[method-assign]
    try:
        yield
    finally:
        _inflight.AheadClaims.offers = saved  # type: ignore[method-assign]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run(ds: vl.VideoDataset, args: argparse.Namespace, workers: int) -> tuple[dict, list[torch.Tensor]]:
    loader = vl.VideoLoader(
        ds,
        backend="pyav",
        batch_size=args.batch_size,
        frames_per_clip=16,
        frame_stride=2,
        sampling=args.sampling,
        clips_per_video=args.clips_per_video,
        shuffle=args.sampling == "random",
        num_workers=workers,
        output_layout="NTHWC",
        seed=0,
    )
    c0, t0 = _cpu(), time.perf_counter()
    videos = [b.video.clone() for b in loader]
    cpu, wall = _cpu() - c0, time.perf_counter() - t0
    n = loader.stats["clips"]
    ahead = loader.stats["clips_decoded_ahead"]
    loader.close()
    return {"cpu_ms_per_clip": 1000 * cpu / n, "clips_per_s": n / wall, "clips": n, "ahead": ahead}, videos


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic", default="kinetics-like")
    p.add_argument("--data-root", default="data/bench")
    p.add_argument("--sampling", default="uniform", choices=["uniform", "multiview", "random"])
    p.add_argument("--clips-per-video", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args()
    ds = vl.VideoDataset.from_folder(ensure_workload(args.synthetic, args.data_root))
    out = []
    for workers in (int(w) for w in args.workers.split(",")):
        one_run(ds, args, workers)  # warm-up: imports, page cache, the pool
        for r in range(args.rounds):
            on, frames_on = one_run(ds, args, workers)
            with offers_off():
                off, frames_off = one_run(ds, args, workers)
            same = all(torch.equal(a, b) for a, b in zip(frames_on, frames_off, strict=True))
            ratio = off["cpu_ms_per_clip"] / on["cpu_ms_per_clip"]
            row = {"workers": workers, "round": r, "on": on, "off": off, "cpu_ratio": ratio, "same": same}
            out.append(row)
            print(
                f"workers={workers} round={r}: on {on['cpu_ms_per_clip']:.1f} ms/clip "
                f"{on['clips_per_s']:.1f} clips/s ({on['ahead']} of {on['clips']} clips decoded ahead); "
                f"off {off['cpu_ms_per_clip']:.1f} ms/clip {off['clips_per_s']:.1f} clips/s; "
                f"off/on CPU {ratio:.2f}x; frames identical: {same}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": out}, f, indent=1)


if __name__ == "__main__":
    main()
