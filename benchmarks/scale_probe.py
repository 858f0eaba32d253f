"""Probe throughput for benchmarks/scale.py: files/s with 1 and 2 threads, 1 and 2 processes (forkserver) and
Ray (2 CPUs), probe cache off, on copies of the real clips in ../shared/media."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

MEDIA = Path(__file__).resolve().parent.parent.parent / "shared" / "media"


def probe_throughput(n_files: int, ray: bool) -> list[dict]:
    from vidloader.dataset import probe_many

    clips = sorted(p for p in MEDIA.iterdir() if p.suffix in (".mp4", ".mkv"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n_files):
            src = clips[i % len(clips)]
            dst = Path(tmp) / f"{i:05d}{src.suffix}"
            shutil.copyfile(src, dst)
            paths.append(str(dst))
        mb = sum(os.path.getsize(p) for p in paths) / 2**20
        runs = [("thread", 1), ("thread", 2), ("process", 1), ("process", 2)] + ([("ray", 2)] if ray else [])
        for engine, workers in runs:
            if engine == "ray":
                import ray as ray_mod

                ray_mod.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            # All files (overall, Ray's workers starting cold), then a quarter and all again: the difference
            # of those two is the rate once workers are up (process and Ray workers import vidloader, torch
            # included, before their first file; a process pool starts anew in each call, so it cancels).
            times = []
            for part in (paths, paths[: n_files // 4], paths):
                t = time.perf_counter()
                res = probe_many(part, use_cache=False, num_workers=workers, engine=engine, progress=False)  # type: ignore[arg-type]
                times.append(time.perf_counter() - t)
                assert all(not isinstance(r, Exception) for r in res)
            if engine == "ray":
                ray_mod.shutdown()
            steady = (n_files - n_files // 4) / max(times[2] - times[1], 1e-9)
            rows.append(
                {
                    "engine": engine,
                    "workers": workers,
                    "files": n_files,
                    "MB": round(mb, 1),
                    "s": times[0],
                    "files_per_s": n_files / times[0],
                    "steady_files_per_s": steady,
                }
            )
            print(
                f"probe {engine:7s} x{workers}: {n_files / times[0]:7.1f} files/s overall ({times[0]:.2f} s), "
                f"{steady:7.1f} files/s once started",
                flush=True,
            )
    return rows
