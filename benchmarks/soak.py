#!/usr/bin/env python3
"""Soak and fault run for VideoLoader.

Soak: RSS and open file descriptors of the main process and of every worker process, and batches per
second, after each of N epochs (thread workers, then spawned process workers). Growth is measured against
the end of epoch 1 (the first epoch builds caches, pools and pinned buffers).

Faults, each on a fresh loader with on_error="skip", reporting what the loader did (the first three with
max_skip_fraction=0.5, so that skipping what they break stays within the budget):
- sigkill: a process worker is killed with SIGKILL after the first batch;
- stuck: a decode that never returns (a backend stub for one file) under decode_timeout;
- deleted: a file is deleted mid-epoch;
- budget: 3 of 4 files deleted after indexing, under the default skip budget (max_skip_fraction=0.05);
- outage: every file goes away after batch 1 (a mount that vanished), the share lifted
  (max_skip_fraction=1.0) so that max_consecutive_failures (the default 16; 2 with --quick) names it;
- cache: the index cache cannot be written (the indexing process runs under RLIMIT_FSIZE=0, so every
  write to a file fails as on a full disk).

    python benchmarks/soak.py [--epochs 10] [--videos 24] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

import vidloader as vl
from vidloader.dataset import textured_frames, write_video

RELEASE = threading.Event()
WITHIN_BUDGET = {"max_skip_fraction": 0.5}  # the faults measure skipping, not the budget


class EpochLines(logging.Handler):
    """Collects the loader's end-of-epoch loss reports while installed."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("vidloader: epoch "):
            self.lines.append(record.getMessage())

    def __enter__(self) -> EpochLines:
        logger = logging.getLogger("vidloader")
        self._level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("vidloader")
        logger.removeHandler(self)
        logger.setLevel(self._level)


def make_media(root: Path, n: int, frames: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    return [
        write_video(root / f"v{i:03d}.mp4", textured_frames(frames, 64, 96, seed=i), gop=12, bframes=2)
        for i in range(n)
    ]


def usage(pids: list[int]) -> dict[str, Any]:
    """RSS (MB) and open fds of each process in ``pids`` (gone processes are left out)."""
    out = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            out[str(pid)] = {"rss_mb": round(p.memory_info().rss / 2**20, 1), "fds": p.num_fds()}
        except psutil.NoSuchProcess:
            continue
    return out


def worker_pids() -> list[int]:
    return [c.pid for c in psutil.Process().children(recursive=True)]


def loader_kw() -> dict[str, Any]:
    return dict(batch_size=4, frames_per_clip=8, frame_stride=2, clips_per_video=2, seed=1, decode_timeout=60)


def soak(paths: list[Path], epochs: int, worker_type: str, quick: bool) -> dict[str, Any]:
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    loader = vl.VideoLoader(ds, num_workers=2, worker_type=worker_type, prefetch=2, **loader_kw())  # type: ignore[arg-type]
    rows = []
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            n = sum(1 for _ in loader)
            dt = time.perf_counter() - t0
            main = usage([os.getpid()])[str(os.getpid())]
            workers = usage(worker_pids())
            rows.append(
                {
                    "epoch": epoch + 1,
                    "batches": n,
                    "batches_per_s": round(n / dt, 2),
                    "main_rss_mb": main["rss_mb"],
                    "main_fds": main["fds"],
                    "worker_rss_mb": round(sum(w["rss_mb"] for w in workers.values()), 1),
                    "worker_fds": sum(w["fds"] for w in workers.values()),
                    "threads": threading.active_count(),
                }
            )
    finally:
        loader.close()
    first, last = rows[0], rows[-1]

    def growth(key: str) -> float:
        return round(100 * (last[key] - first[key]) / first[key], 2) if first[key] else 0.0

    return {
        "worker_type": worker_type,
        "epochs": rows,
        "growth_pct": {k: growth(k) for k in ("main_rss_mb", "main_fds", "worker_rss_mb", "worker_fds")},
    }


def fault_sigkill(paths: list[Path]) -> dict[str, Any]:
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    kw = {**loader_kw(), **WITHIN_BUDGET}
    loader = vl.VideoLoader(ds, num_workers=2, worker_type="process", on_error="skip", **kw)  # type: ignore[arg-type]
    plan = {(c.video_index, c.clip_index) for c in loader.clip_plan(0)}
    got: list[tuple[int, int]] = []
    try:
        it = iter(loader)
        first = next(it)
        # The pool's own decode processes (the main process's children also include multiprocessing's
        # resource tracker, which is not a worker).
        victim = loader._pool.workers.pids()[0]
        os.kill(victim, signal.SIGKILL)
        for b in [first, *it]:
            got += list(zip(b.video_index.tolist(), b.clip_index.tolist(), strict=True))
        after = loader._pool.workers.pids()
    finally:
        loader.close()
    return {
        "fault": "sigkill",
        "what": f"worker {victim} killed with SIGKILL after batch 1",
        "clips_planned": len(plan),
        "clips_delivered": len(got),
        "duplicates": len(got) - len(set(got)),
        "missing": len(plan - set(got)),
        "killed_worker_replaced": victim not in after and len(after) > 0,
        "skipped_clips": loader.stats["skipped_clips"],
    }


class StuckBackend(vl.PyAVBackend):
    """Never returns for one file (until the run is over)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def decode_clip(self, info, frame_indices, **kw):  # type: ignore[no-untyped-def]
        if info.path == self.path:
            RELEASE.wait()
        return super().decode_clip(info, frame_indices, **kw)


def fault_stuck(paths: list[Path], timeout: float) -> dict[str, Any]:
    ds = vl.VideoDataset.from_paths(paths, use_cache=False)
    kw = {**loader_kw(), "decode_timeout": timeout, **WITHIN_BUDGET}
    loader = vl.VideoLoader(ds, num_workers=2, on_error="skip", **kw)  # type: ignore[arg-type]
    loader.backend = StuckBackend(str(paths[1]))
    t0 = time.perf_counter()
    clips = sum(len(b) for b in loader)
    dt = time.perf_counter() - t0
    stats = loader.stats
    live = loader._pool.workers.alive()
    loader.close()
    RELEASE.set()
    return {
        "fault": "stuck",
        "what": f"decode of {Path(paths[1]).name} never returns; decode_timeout={timeout}s",
        "epoch_s": round(dt, 2),
        "clips_delivered": clips,
        "skipped_clips": stats["skipped_clips"],
        "abandoned_decodes": stats["abandoned_decodes"],
        "live_workers_after": live,
        "reason": stats["decode_failures"][0]["reason"] if stats["decode_failures"] else None,
    }


def fault_deleted(paths: list[Path], tmp: Path) -> dict[str, Any]:
    copies = []
    for p in paths:
        dst = tmp / p.name
        dst.write_bytes(p.read_bytes())
        copies.append(dst)
    ds = vl.VideoDataset.from_paths(copies, use_cache=False)
    kw = {**loader_kw(), "shuffle": False, **WITHIN_BUDGET}
    # No decode ahead (num_workers=0: one batch at a time, when asked for), so the deleted file's clips are
    # read after the deletion: with workers running ahead, a busy machine let them decode the last batch
    # before the main thread deleted the file (2 of 4 CI runs of the test on 2026-12-07).
    loader = vl.VideoLoader(ds, num_workers=0, on_error="skip", **kw)  # type: ignore[arg-type]
    with EpochLines() as report:
        it = iter(loader)
        clips = len(next(it))
        copies[-1].unlink()  # the last video's clips come at the end of the epoch
        clips += sum(len(b) for b in it)
    stats = loader.stats
    loader.close()
    return {
        "fault": "deleted",
        "what": f"{copies[-1].name} deleted after batch 1",
        "clips_planned": len(loader.clip_plan(0)),
        "clips_delivered": clips,
        "skipped_clips": stats["skipped_clips"],
        "reason": stats["decode_failures"][0]["reason"] if stats["decode_failures"] else None,
        "epoch_report": report.lines,
    }


def _until_budget(loader: vl.VideoLoader, fault: Any = None) -> dict[str, Any]:
    """Iterate until the pass ends or raises, calling ``fault`` after the first batch: the seconds from the
    fault (or the start) to the end, the clips delivered, and the error."""
    t0, clips, err = time.perf_counter(), 0, None
    try:
        for i, batch in enumerate(loader):
            clips += len(batch)
            if i == 0 and fault is not None:
                fault()
                t0 = time.perf_counter()
    except vl.SkipBudgetError as exc:
        err = exc
    out: dict[str, Any] = {
        "seconds_to_error": round(time.perf_counter() - t0, 3),
        "clips_delivered": clips,
    }
    if err is not None:
        out.update(error=type(err).__name__, message=str(err), lost=err.lost, planned=err.planned)
    out["skipped_clips"] = loader.stats["skipped_clips"]
    loader.close()
    return out


def fault_budget(paths: list[Path], tmp: Path) -> dict[str, Any]:
    folder = tmp / "budget"
    folder.mkdir()
    copies = [Path(shutil.copy(p, folder / p.name)) for p in paths[:4]]
    index = vl.VideoDataset.from_paths(copies, use_cache=False).to_index(folder / "index.parquet")
    ds = vl.VideoDataset.from_index(index)
    for p in copies[1:]:
        p.unlink()
    loader = vl.VideoLoader(ds, num_workers=2, on_error="skip", **loader_kw())  # type: ignore[arg-type]
    out = {"fault": "budget", "what": "3 of 4 files deleted after indexing; default skip budget"}
    out.update(clips_planned=len(loader.clip_plan(0)), **_until_budget(loader))
    return out


def fault_outage(paths: list[Path], tmp: Path, max_consecutive: int) -> dict[str, Any]:
    folder = tmp / "mount"
    folder.mkdir()
    copies = [Path(shutil.copy(p, folder / p.name)) for p in paths]
    ds = vl.VideoDataset.from_paths(copies, use_cache=False)
    # The share lifted, so the bound that names the outage is the run of failing files.
    budget = {"max_skip_fraction": 1.0, "max_consecutive_failures": max_consecutive}
    kw = {**loader_kw(), "batch_size": 2, **budget}
    loader = vl.VideoLoader(ds, num_workers=2, prefetch=1, on_error="skip", **kw)  # type: ignore[arg-type]

    def vanish() -> None:
        folder.rename(tmp / "mount-gone")

    out = {"fault": "outage", "what": f"all {len(paths)} files gone after batch 1; {budget}"}
    out.update(clips_planned=len(loader.clip_plan(0)), **_until_budget(loader, vanish))
    return out


_CACHE_CHILD = """
import json, os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
import vidloader as vl
paths = json.loads(sys.argv[1])
ds = vl.VideoDataset.from_paths(paths)
loader = vl.VideoLoader(ds, batch_size=4, frames_per_clip=8, num_workers=2)
clips = sum(len(b) for b in loader)
cache = os.environ["VIDLOADER_CACHE_DIR"]
db = [f for f in os.listdir(cache)] if os.path.isdir(cache) else []
sizes = {f: os.path.getsize(os.path.join(cache, f)) for f in db}
print(json.dumps({"videos": len(ds), "clips": clips, "cache_files": sizes}))
"""


def fault_cache(paths: list[Path], tmp: Path) -> dict[str, Any]:
    env = {**os.environ, "VIDLOADER_CACHE_DIR": str(tmp / "cache")}
    res = subprocess.run(
        [sys.executable, "-c", _CACHE_CHILD, json.dumps([str(p) for p in paths])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out: dict[str, Any] = {
        "fault": "cache",
        "what": "index cache unwritable (RLIMIT_FSIZE=0: writes fail as on a full disk)",
    }
    out["returncode"] = res.returncode
    if res.returncode == 0:
        out.update(json.loads(res.stdout.strip().splitlines()[-1]))
    else:
        out["stderr"] = res.stderr[-2000:]
    return out


def run(*, epochs: int, videos: int, quick: bool, workdir: Path) -> dict[str, Any]:
    paths = make_media(workdir / "media", videos, 16 if quick else 60)
    report: dict[str, Any] = {"epochs": epochs, "videos": videos, "soak": [], "faults": []}
    report["soak"].append(soak(paths, epochs, "thread", quick))
    if not quick:
        report["soak"].append(soak(paths, epochs, "process", quick))
    report["faults"].append(fault_stuck(paths[:4], timeout=1.0))
    report["faults"].append(fault_deleted(paths[:6], workdir))
    report["faults"].append(fault_cache(paths[:4], workdir))
    report["faults"].append(fault_budget(paths, workdir))
    report["faults"].append(fault_outage(paths, workdir, 2 if quick else 16))
    if not quick:
        report["faults"].append(fault_sigkill(paths[:8]))
    return report


def show(report: dict[str, Any]) -> None:
    for s in report["soak"]:
        print(f"\nsoak, {s['worker_type']} workers: growth after epoch 1 (%) {s['growth_pct']}")
        keys = list(s["epochs"][0])
        print(" | ".join(keys))
        for row in s["epochs"]:
            print(" | ".join(str(row[k]) for k in keys))
    print()
    for f in report["faults"]:
        print(json.dumps(f))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--quick", action="store_true", help="short run for CI: threads only, no SIGKILL")
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(epochs=args.epochs, videos=args.videos, quick=args.quick, workdir=Path(tmp))
    show(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
