#!/usr/bin/env python3
"""How the costs of a dataset grow with its size: synthetic index rows (300 frames each, 25 fps, a keyframe
every 50 frames) at 10k, 100k and 1M videos, and probe throughput on real files.

Per size, every figure measured in a fresh process (so RSS is that of one process):
- index file size (Parquet, portable) and of the local memory-mapped Arrow copy;
- open: first open on a machine (Parquet -> Arrow copy) and a later open (memory map only), with
  ``check_files="none"``, and with the stat check of every file (``"all"``; the synthetic files do not
  exist, so each stat is a failed lookup in one folder's hot dentry cache: a best case);
- plan: ``VideoLoader`` construction (dataset fingerprint) and one epoch's clip plan at world size 1;
- RSS of the main process after open + plan;
- a worker process (spawn) that opens the index and reads 1000 random rows: its RSS growth over a bare
  worker that imported vidloader;
- bytes pickled per decode task (what a process worker receives per clip).

Probe throughput: files/s with 1 and 2 threads, 1 and 2 processes (forkserver) and Ray (2 CPUs), with
the probe cache off, on copies of the real clips in ../shared/media.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--probe-files 120] [--no-ray] [--vfr] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAMES = 300
TB_DEN = 12800  # 25 fps: 512 ticks a frame
ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT.parent / "shared" / "media"


def rss_mb(kind: str = "VmRSS") -> float:
    """VmRSS (all resident pages), RssAnon (private memory) or RssFile (mapped file pages: the index's
    pages are these, shared with every process mapping the same file and reclaimable by the OS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(kind)


def synthetic_index(n: int, path: Path, real_file: Path, vfr: bool = False) -> None:
    """n rows, as Parquet: distinct paths ``c<label>/v<i>.mp4`` (which do not exist), facts of ``real_file``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vidloader.dataset import INDEX_VERSION, index_schema

    schema = index_schema()
    meta = {"version": INDEX_VERSION, "classes": [f"c{i}" for i in range(700)], "skipped": [], "root": None}
    schema = schema.with_metadata({b"vidloader.index": json.dumps(meta).encode()})
    chunk = 65536
    st = real_file.stat()
    with pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        use_dictionary=["codec", "pix_fmt"],
        column_encoding={"frame_pts": "DELTA_BINARY_PACKED", "keyframe_pts": "DELTA_BINARY_PACKED"},
    ) as w:
        for s in range(0, n, chunk):
            cols = _index_rows(s, min(chunk, n - s), st, vfr)
            w.write_table(pa.table([cols[f.name] for f in schema], schema=schema), row_group_size=chunk)


def _index_rows(s: int, m: int, st: os.stat_result, vfr: bool) -> dict:
    """Columns of index rows s..s+m: 300 frames at 25 fps, a keyframe every 50, the real file's size/mtime."""
    import numpy as np
    import pyarrow as pa

    ids = np.arange(s, s + m)
    pts = np.arange(FRAMES, dtype=np.int64) * 512
    keys = pts[::50]

    def lists(values: np.ndarray) -> pa.Array:
        offsets = np.arange(m + 1, dtype=np.int32) * len(values)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.tile(values, m)))

    return {
        "path": pa.array([f"c{i % 700}/v{i:08d}.mp4" for i in range(s, s + m)]),
        "label": pa.array(ids % 700),
        "num_frames": pa.array(np.full(m, FRAMES)),
        "fps": pa.array(np.full(m, 25.0)),
        "duration": pa.array(np.full(m, FRAMES / 25.0)),
        "width": pa.array(np.full(m, 340, np.int32)),
        "height": pa.array(np.full(m, 256, np.int32)),
        "codec": pa.array(["h264"] * m),
        "pix_fmt": pa.array(["yuv420p"] * m),
        "rotation": pa.array(np.zeros(m, np.int32)),
        "has_audio": pa.array(np.ones(m, bool)),
        "start": pa.nulls(m, pa.float64()),
        "end": pa.nulls(m, pa.float64()),
        "stream_index": pa.array(np.zeros(m, np.int32)),
        "time_base_num": pa.array(np.ones(m, np.int64)),
        "time_base_den": pa.array(np.full(m, TB_DEN)),
        "first_frame": pa.array(np.zeros(m, np.int64)),
        "size_bytes": pa.array(np.full(m, st.st_size)),
        # Constant rate: stored as pts_start, pts_step; --vfr stores every pts, as a VFR stream needs.
        "frame_pts": lists(pts if vfr else pts[:0]),
        "keyframe_pts": lists(keys),
        "audio_streams": pa.ListArray.from_arrays(
            pa.array(np.arange(m + 1, dtype=np.int32)), pa.array(np.ones(m, np.int32))
        ),
        "pts_start": pa.array(np.zeros(m, np.int64)),
        "pts_step": pa.array(np.full(m, 0 if vfr else 512)),
        "total_frames": pa.array(np.full(m, FRAMES)),
        "mtime_ns": pa.array(np.full(m, st.st_mtime_ns)),
        "video_stream": pa.nulls(m, pa.int32()),
    }


def measure_size(index: str, cache: str) -> dict:
    """Run in a fresh process: open (cold, warm), check, plan, RSS, pickled task bytes."""
    import vidloader as vl
    from vidloader.dataset import VideoDataset

    base, base_anon = rss_mb(), rss_mb("RssAnon")
    out: dict = {}
    t = time.perf_counter()
    VideoDataset.from_index(index, check_files="none", cache_dir=cache)
    out["open_first_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ds = VideoDataset.from_index(index, check_files="none", cache_dir=cache)
    out["open_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with contextlib.suppress(vl.ConfigError):  # every file is missing: strict raises after all stats
        VideoDataset.from_index(index, check_files="all", strict=True, cache_dir=cache)
    out["open_checked_s"] = time.perf_counter() - t
    t = time.perf_counter()
    loader = vl.VideoLoader(
        ds, batch_size=32, frames_per_clip=16, frame_stride=2, num_workers=0, backend="pyav"
    )
    out["loader_init_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out["batches"] = len(loader)
    out["plan_s"] = time.perf_counter() - t
    out["rss_mb"] = rss_mb()
    out["rss_growth_mb"] = out["rss_mb"] - base
    out["anon_growth_mb"] = rss_mb("RssAnon") - base_anon
    out["file_mb"] = rss_mb("RssFile")
    clip = loader.clip_plan()[0]
    info = ds[clip.video_index]
    task = (loader.backend, info, clip.frame_indices, None, False, None, None)
    out["task_pickle_bytes"] = len(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
    out["row_task_pickle_bytes"] = len(
        pickle.dumps((loader.backend, clip.video_index, clip.frame_indices, None, False, None, None), 5)
    )
    return out


def measure_worker(index: str, cache: str) -> dict:
    """Run in a fresh process: RSS after imports, then after opening the index and reading 1000 rows."""
    import numpy as np

    import vidloader  # noqa: F401
    from vidloader.dataset import VideoDataset

    base, anon = rss_mb(), rss_mb("RssAnon")
    ds = VideoDataset.from_index(index, check_files="none", cache_dir=cache)
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(ds), 1000):
        ds[int(i)]
    return {
        "worker_base_mb": base,
        "worker_growth_mb": rss_mb() - base,
        "worker_anon_growth_mb": rss_mb("RssAnon") - anon,
    }


def in_child(fn: str, *args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", fn, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--probe-files", type=int, default=120)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--vfr", action="store_true", help="store every frame's pts (variable frame rate rows)")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn, *rest = args.child
        print(json.dumps({"size": measure_size, "worker": measure_worker}[fn](*rest)))
        return 0
    report: dict = {"sizes": [], "probe": []}
    with tempfile.TemporaryDirectory() as tmp:
        real = Path(tmp) / "real.mp4"
        shutil.copyfile(MEDIA / "h265_video.mp4", real)
        for n in [int(s) for s in args.sizes.split(",")]:
            index, cache = Path(tmp) / f"scale-{n}.parquet", Path(tmp) / f"cache-{n}"
            t = time.perf_counter()
            synthetic_index(n, index, real, vfr=args.vfr)
            row = {
                "videos": n,
                "write_s": time.perf_counter() - t,
                "parquet_mb": index.stat().st_size / 2**20,
            }
            row.update(in_child("size", str(index), str(cache)))
            row["arrow_mb"] = sum(p.stat().st_size for p in (cache / "index").iterdir()) / 2**20
            row.update(in_child("worker", str(index), str(cache)))
            report["sizes"].append(row)
            print(
                json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
                flush=True,
            )
            shutil.rmtree(cache)
            index.unlink()
    if args.probe_files:
        report["probe"] = probe_throughput(args.probe_files, not args.no_ray)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
