#!/usr/bin/env python3
"""What writing decoded frames into a fresh batch buffer costs, against a buffer already touched: the
`copy` stage of `profile_decode.py` is mostly the kernel faulting in (and zeroing) the new pages.

    python benchmarks/first_touch.py [--height 1080 --width 1920 --frames 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    src = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    for _ in range(args.trials):
        batch = torch.empty((4, args.frames, args.height, args.width, 3), dtype=torch.uint8).numpy()
        t = time.thread_time()
        for j in range(args.frames):
            batch[0, j] = src
        fresh = time.thread_time() - t
        t = time.thread_time()
        for j in range(args.frames):
            batch[0, j] = src
        touched = time.thread_time() - t
        print(
            f"{args.frames} frames: fresh buffer {1000 * fresh:.1f} ms CPU, touched {1000 * touched:.1f} ms"
        )


if __name__ == "__main__":
    main()
