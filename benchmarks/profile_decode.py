#!/usr/bin/env python3
"""Where a clip's CPU goes, and how much of it is the decode floor: VideoLoader(backend="pyav") over the
benchmark's random plan (16 frames, stride 2, one clip's own seek and decode each, as `vidloader bench`
runs it), with the backend's profile on (vidloader.backends.profiling, the same stages as
VIDLOADER_PROFILE=1; see vidloader/backends/_profile.py).

Per workload and worker count: each stage's wall and thread CPU per clip (open, seek, demux, pre-roll
decode, clip decode, colour conversion, copies, close, the backend's Python), the workers' waiting, the
process CPU per clip, and the decode floor (pre-roll + clip decode: the decoder's calls on the frames a
clip needs) with its share of the process CPU; then one summary line per run.

    python benchmarks/profile_decode.py --synthetic 360p-gop250,ucf-like --workers 1,2 [--clips 64]
        [--resize 224] [--batch-size 8] [--warmup 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import vidloader as vl
from vidloader.cli import ensure_workload
from vidloader.cli._bench_profile import format_profile, profile_loader


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
    try:
        # Warm-up batches: pool start, first file reads, and the batch buffers in flight being allocated
        # once (the loader recycles them after that; see HostBuffers in vidloader/loader/_host_memory.py).
        return profile_loader(loader, batches=max(clips // batch, 1), warmup=warmup)
    finally:
        loader.close()


def summary(runs: list[tuple[str, dict]]) -> str:
    lines = [
        "| workload | workers | process CPU ms/clip | decode floor ms/clip | floor share | frames decoded/clip |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in runs:
        lines.append(
            f"| {name} | {r['workers']} | {r['cpu_ms_per_clip']:.2f} | {r['floor_ms_per_clip']:.2f} | "
            f"{100 * r['floor_share']:.0f}% | {r['frames_decoded_per_clip']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", default="360p-gop250", help="workloads, comma-separated")
    ap.add_argument("--data-root", default="data/bench")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--resize", help="short side (224) or HxW (224x224)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=8, help="batches before the timed ones (default 8)")
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    resize = None
    if args.resize:
        parts = [int(p) for p in args.resize.lower().split("x")]
        resize = parts[0] if len(parts) == 1 else (parts[0], parts[1])
    runs = []
    for name in args.synthetic.split(","):
        ds = vl.VideoDataset.from_folder(ensure_workload(name, args.data_root, progress=False))
        for w in (int(x) for x in args.workers.split(",")):
            r = profile(ds, w, args.clips, resize, args.warmup, args.batch_size)
            runs.append((name, r))
            print(format_profile(name, r))
            print()
    print(summary(runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"workload": n, **r} for n, r in runs], f, indent=2)


if __name__ == "__main__":
    main()
