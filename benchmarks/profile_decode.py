#!/usr/bin/env python3
"""Where a clip's time goes: VideoLoader(backend="pyav") over the benchmark's random plan (16 frames,
stride 2, batch 8, one clip's own seek and decode each, as `vidloader bench` runs it), with the backend's
timing hook on (VIDLOADER_PROFILE=1, see vidloader/backends/_profile.py).

Per clip, in ms of worker time: open, seek, demux, pre-roll decode, clip decode, colour conversion,
copies, the backend's Python; then the workers' waiting (num_workers x wall time - time in clips: the
loader's own work, batch assembly, prefetch stalls, and CPU time other processes took).

    python benchmarks/profile_decode.py --synthetic 360p-gop250 --workers 1,2 [--clips 64] [--resize 224]
        [--warmup 8]   (batches left out first: pool start, first reads, batch buffers allocated once)
"""

from __future__ import annotations

import argparse
import os
import time

os.environ["VIDLOADER_PROFILE"] = "1"

import vidloader as vl
from vidloader.backends import STAGES, profile_totals, reset_profile
from vidloader.cli import ensure_workload


def profile(
    ds: vl.VideoDataset,
    workers: int,
    clips: int,
    resize: int | tuple[int, int] | None,
    warmup: int,
    batch: int,
) -> dict:
    loader = vl.VideoLoader(
        ds,
        backend="pyav",
        batch_size=batch,
        frames_per_clip=16,
        frame_stride=2,
        clips_per_video=max(1, -(-(clips + batch * warmup) // len(ds))),
        num_workers=workers,
        shared_decode=False,
        output_layout="NTHWC",
        resize=resize,
    )
    n = clips // batch
    it = iter(loader)
    # Warm-up batches: pool start, first file reads, and the batch buffers in flight being allocated once
    # (the loader recycles them after that; see HostBuffers in vidloader/loader/_batch.py).
    for _ in range(warmup):
        next(it)
    reset_profile()
    t0, c0 = time.perf_counter(), time.process_time()
    for k, _ in enumerate(it):
        if k + 1 >= n:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    loader.close()
    tot = profile_totals()
    return {"wall": wall, "cpu": cpu, "workers": workers, **tot}


def table(name: str, r: dict) -> str:
    n = max(r["clips"], 1)
    busy = sum(r["seconds"].values())
    waiting = max(r["workers"], 1) * r["wall"] - busy
    rows = [*((s, r["seconds"][s], r["cpu_seconds"][s]) for s in STAGES), ("waiting", waiting, 0.0)]
    total = busy + waiting
    lines = [
        f"{name}, {r['workers']} worker(s): {n} clips in {r['wall']:.2f} s ({n / r['wall']:.1f} clips/s), "
        f"process CPU {r['cpu'] / r['wall']:.2f} cores, {r['frames_decoded'] / n:.0f} frames decoded and "
        f"{r['frames_kept'] / n:.0f} kept per clip",
        "| stage | wall ms per clip | share of worker time | thread CPU ms per clip |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {s} | {1000 * v / n:.1f} | {100 * v / total:.0f}% | {1000 * c / n:.1f} |" for s, v, c in rows
    ]
    cpu = r["cpu_seconds"]
    # The frames decoded are the clip's references from its keyframe on, no more (non-reference frames
    # nobody asked for are dropped): their decode CPU is what any exact loader on FFmpeg's decoders pays.
    floor = cpu["decode_preroll"] + cpu["decode_clip"]
    lines.append(
        f"decode floor (pre-roll + clip decode, thread CPU): {1000 * floor / n:.1f} ms per clip of "
        f"{1000 * sum(cpu.values()) / n:.1f} ms in clips"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", default="360p-gop250")
    ap.add_argument("--data-root", default="data/bench")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--resize", help="short side (224) or HxW (224x224)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=8, help="batches before the timed ones (default 8)")
    args = ap.parse_args()
    ds = vl.VideoDataset.from_folder(ensure_workload(args.synthetic, args.data_root, progress=False))
    resize = None
    if args.resize:
        parts = [int(p) for p in args.resize.lower().split("x")]
        resize = parts[0] if len(parts) == 1 else (parts[0], parts[1])
    for w in (int(x) for x in args.workers.split(",")):
        print(table(args.synthetic, profile(ds, w, args.clips, resize, args.warmup, args.batch_size)))
        print()


if __name__ == "__main__":
    main()
