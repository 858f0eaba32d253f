#!/usr/bin/env python3
"""Foundation benchmark: random 16-frame clips (stride 2) from 10-second 640x360 H.264 files with GOP 250
(the `360p-gop250` workload): VideoLoader(backend="pyav", num_workers=2) against naive PyAV
decode-from-start and OpenCV VideoCapture with CAP_PROP_POS_FRAMES seeking, on the same clip list in the
same run, each checked for bit-exactness against a sequential PyAV decode.

    python benchmarks/bench_decode.py [--clips 64] [--repeats 3] [--workers 2] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vidloader.cli import main


def run() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="64")
    ap.add_argument("--repeats", default="3")
    ap.add_argument("--workers", default="2")
    ap.add_argument("--data-root", default="data/bench")
    ap.add_argument("--json")
    ap.add_argument("--plot")
    args = ap.parse_args()
    argv = [
        "bench",
        "--synthetic",
        "360p-gop250",
        "--data-root",
        args.data_root,
        "--backends",
        "vidloader-pyav,pyav-naive,opencv",
        "--frames",
        "16",
        "--stride",
        "2",
        "--batch-size",
        "8",
        "--workers",
        args.workers,
        "--clips",
        args.clips,
        "--repeats",
        args.repeats,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(args.json or Path(tmp) / "bench_decode.json")
        argv += ["--json", str(js)]
        if args.plot:
            argv += ["--plot", args.plot]
        rc = main(argv)
        if rc == 0:
            rows = json.loads(js.read_text())["backends"]
            checks = ", ".join(f"{n} {r.get('check', 'not run')}" for n, r in rows.items())
            print(f"bit-exactness vs a sequential PyAV decode: {checks}")
    return rc


if __name__ == "__main__":
    raise SystemExit(run())
