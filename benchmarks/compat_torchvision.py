#!/usr/bin/env python3
"""Drop-in fidelity: the torchvision port against torchvision itself, clip for clip.

    PYTHONPATH=src python benchmarks/compat_torchvision.py [--root DIR] [--json out.json]

On a Kinetics-style val tree (made here unless ``--root`` names one: 12 videos of 37-69 frames at 24, 25,
29.97 and 30 fps), the clips of a val pass of torchvision's references/video_classification/train.py:
``Kinetics(frames_per_clip=4, frame_rate=15, step_between_clips=1)`` read by ``UniformClipSampler(2)``, and
``DistributedSampler(UniformClipSampler(2), shuffle=False)`` at several world sizes. torchvision 0.26 runs in
a child process and decodes through torchcodec (which loads PyAV's bundled FFmpeg through vidloader's shim);
``vidloader.compat.torchvision`` runs here. Printed, and written as JSON: how many clips have the same video
and frame indices, the largest pixel difference among those, and per world size the lengths
(``len(sampler)``, ``len(sampler.dataset)``, clips over all ranks) and how many ranks got torchvision's
clips. Needs torchcodec (the bench extra).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

# (frames, rate) of the 12 videos, 3 per class: lengths whose last uniform clip falls off the video's end
# when placed by time, and rates torchcodec reports with rounding (e.g. 30.000000000000004 for 65 at 30).
TREE = [(45, 30), (59, 25), (65, 30), (41, 25), (50, Fraction(30000, 1001)), (60, 30)]
TREE += [(37, 25), (48, 24), (55, 25), (69, 30), (52, 30), (44, 25)]
CLIP, RATE, PER_VIDEO, WORLD_SIZES = 4, 15, 2, (1, 2, 3, 5)


def make_tree(root: Path) -> None:
    from vidloader.dataset import textured_frames, write_video

    for i, (n, fps) in enumerate(TREE):
        path = root / "val" / f"class{i // 3}" / f"v{i % 3}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, textured_frames(n, 32, 48, seed=i), fps=fps, gop=10)


def torchvision_side(root: Path, out: Path) -> None:
    """torchvision's val pass and DDP shares (child process): clip frames, pixels, lengths."""
    from torchvision.datasets import Kinetics
    from torchvision.datasets.samplers import DistributedSampler, UniformClipSampler

    ds = Kinetics(str(root), CLIP, split="val", frame_rate=RATE, extensions=("mp4",), output_format="THWC")
    vc = ds.video_clips

    def frames(indices: list[int]) -> list[list[int]]:
        located = [vc.get_clip_location(i) for i in indices]
        return [[v, *vc.clips[v][c].tolist()] for v, c in located]

    order = list(UniformClipSampler(vc, PER_VIDEO))
    pixels = np.stack([vc.get_clip(i)[0].numpy() for i in order])
    ddp = {}
    for w in WORLD_SIZES:
        shares = [
            DistributedSampler(UniformClipSampler(vc, PER_VIDEO), w, r, shuffle=False) for r in range(w)
        ]
        ddp[w] = {
            "len_sampler": len(shares[0]),
            "len_dataset": len(shares[0].dataset),
            "ranks": [frames(list(s)) for s in shares],
        }
    np.save(out.with_suffix(".npy"), pixels)
    out.write_text(json.dumps({"val": frames(order), "ddp": ddp}))


def port_side(root: Path) -> tuple[dict, np.ndarray]:
    """The same through vidloader.compat.torchvision (public names only, so it runs on older ports too)."""
    from vidloader.compat.torchvision import DataLoader, DistributedSampler, Kinetics, UniformClipSampler

    ds = Kinetics(root, CLIP, split="val", frame_rate=RATE, extensions=("mp4",), output_format="THWC")
    loader = DataLoader(
        ds, batch_size=4, sampler=UniformClipSampler(ds.video_clips, PER_VIDEO), num_workers=2
    )
    val, pixels = [], []
    for batch in loader:
        val += [[v, *f] for v, f in zip(batch.video_index.tolist(), batch.frame_index.tolist(), strict=True)]
        pixels.append(batch.video.numpy())
    ddp = {}
    for w in WORLD_SIZES:
        ranks, lengths = [], set()
        for r in range(w):
            sampler = DistributedSampler(UniformClipSampler(ds.video_clips, PER_VIDEO), w, r, shuffle=False)
            share = DataLoader(ds, batch_size=4, sampler=sampler, seed=0)  # one process plays every rank
            ranks.append([[c.video_index, *c.frame_indices] for c in share.clip_plan()])
            lengths.add((len(sampler), len(sampler.dataset)))
        (len_sampler, len_dataset), *other = sorted(lengths)
        ddp[w] = {
            "len_sampler": len_sampler,
            "len_dataset": len_dataset,
            "ranks": ranks,
            "varies": bool(other),
        }
    return {"val": val, "ddp": ddp}, np.concatenate(pixels)


def compare(tv: dict, tv_pixels: np.ndarray, port: dict, port_pixels: np.ndarray) -> dict:
    same = [i for i, (a, b) in enumerate(zip(tv["val"], port["val"], strict=False)) if a == b]
    diff = [int(np.abs(tv_pixels[i].astype(int) - port_pixels[i].astype(int)).max()) for i in same]
    report = {
        "val_clips": {"torchvision": len(tv["val"]), "port": len(port["val"]), "same_frames": len(same)},
        "val_max_pixel_diff_of_same": max(diff, default=None),
        "val_differing": [[a, b] for a, b in zip(tv["val"], port["val"], strict=False) if a != b],
        "ddp": {},
    }
    for w in WORLD_SIZES:
        t, p = tv["ddp"][str(w)], port["ddp"][w]
        report["ddp"][w] = {
            "len(sampler)": [t["len_sampler"], p["len_sampler"]],
            "len(sampler.dataset)": [t["len_dataset"], p["len_dataset"]],
            "clips over ranks": [sum(map(len, t["ranks"])), sum(map(len, p["ranks"]))],
            "ranks with torchvision's clips": sum(
                a == b for a, b in zip(t["ranks"], p["ranks"], strict=True)
            ),
        }
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--root", type=Path, help="a tree with val/<class>/<video>.mp4 (default: made in a temp dir)"
    )
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--torchvision-side", type=Path, help=argparse.SUPPRESS)  # the child's output file
    args = p.parse_args()
    if args.torchvision_side:
        torchvision_side(args.root, args.torchvision_side)
        return 0
    from vidloader.cli._ffmpeg_shim import ffmpeg_env

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "tree"
        make_tree(root)
        child = Path(tmp) / "torchvision.json"
        cmd = [sys.executable, __file__, "--root", str(root), "--torchvision-side", str(child)]
        subprocess.run(cmd, env=ffmpeg_env(), check=True, timeout=1800)
        tv, tv_pixels = json.loads(child.read_text()), np.load(child.with_suffix(".npy"))
        port, port_pixels = port_side(root)
    report = compare(tv, tv_pixels, port, port_pixels)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
