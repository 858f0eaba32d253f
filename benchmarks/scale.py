#!/usr/bin/env python3
"""How the costs of a dataset grow with its size, at 10k, 100k and 1M videos, each figure in a fresh process.

Two indexes per size N:

- *copied rows*: the rows of a real index (the six clips of ../shared/media, probed here) repeated N times,
  so every row names a real file (six distinct files). Measured: the first open on a machine (Parquet ->
  Arrow copy), a later open with the default file check, ``VideoLoader`` construction and its first batch
  with 2 thread workers and with 2 process workers (spawned), the VideoInfo objects built by construction,
  the RSS of each process worker after ``--batches`` batches, and of a bare spawned process that reads
  1000 random rows the way a worker does (pickled row references), against one that only imported
  vidloader.
- *distinct rows*: N synthetic rows (300 frames, 25 fps, a keyframe every 50 frames) with distinct paths
  that do not exist: the index's size, the default check at one stat per distinct file (each a failed
  lookup in one folder's hot dentry cache: a best case), one epoch's plan at world size 1, main RSS, and
  the bytes pickled per decode task.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--batches 20] [--probe-files 0] [--vfr] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAMES = 300
TB_DEN = 12800  # 25 fps: 512 ticks a frame
MEDIA = Path(__file__).resolve().parent.parent.parent / "shared" / "media"
LOADER = dict(batch_size=8, frames_per_clip=8, frame_stride=2, num_workers=2, backend="pyav", resize=(64, 64))


def rss_mb(kind: str = "VmRSS", pid: int | str = "self") -> float:
    """VmRSS (all resident pages), RssAnon (private memory) or RssFile (mapped file pages)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(kind)


def copied_index(n: int, folder: Path) -> Path:
    """``folder/copied-<n>.parquet``: the real rows of the media clips (copied into ``folder``) n times."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vidloader.dataset import VideoDataset

    small = folder / "real.parquet"
    if not small.exists():
        for i, clip in enumerate(sorted(p for p in MEDIA.iterdir() if p.suffix in (".mp4", ".mkv"))):
            (folder / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
            shutil.copy2(clip, folder / f"c{i % 3}" / clip.name)
        VideoDataset.from_folder(folder, progress=False, use_cache=False).to_index(small)
    table = pq.read_table(small)
    out = folder / f"copied-{n}.parquet"
    pq.write_table(table.take(pa.array(np.arange(n) % table.num_rows)), out, row_group_size=65536)
    return out


def synthetic_index(n: int, path: Path, vfr: bool = False) -> None:
    """n rows, as Parquet: distinct paths ``c<label>/v<i>.mp4`` (which do not exist)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vidloader.dataset import INDEX_VERSION, index_schema

    meta = {"version": INDEX_VERSION, "classes": [f"c{i}" for i in range(700)], "skipped": [], "root": None}
    schema = index_schema().with_metadata({b"vidloader.index": json.dumps(meta).encode()})
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=["codec", "pix_fmt"]) as w:
        for s in range(0, n, 65536):
            cols = _index_rows(s, min(65536, n - s), vfr)
            table = pa.table([cols[f.name].cast(f.type) for f in schema], schema=schema)
            w.write_table(table, row_group_size=65536)


def _index_rows(s: int, m: int, vfr: bool) -> dict:
    """Columns of rows s..s+m: 300 frames at 25 fps, a keyframe every 50."""
    import numpy as np
    import pyarrow as pa

    ids = np.arange(s, s + m)
    pts = np.arange(FRAMES, dtype=np.int64) * 512

    def lists(values: np.ndarray) -> pa.Array:
        offsets = np.arange(m + 1, dtype=np.int32) * len(values)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.tile(values, m)))

    full = dict(codec=["h264"] * m, pix_fmt=["yuv420p"] * m, width=340, height=256, fps=25.0)
    cols = {k: pa.array(v if isinstance(v, list) else np.full(m, v)) for k, v in full.items()}
    return cols | {
        "path": pa.array([f"c{i % 700}/v{i:08d}.mp4" for i in range(s, s + m)]),
        "label": pa.array(ids % 700),
        **{k: pa.array(np.full(m, FRAMES)) for k in ("num_frames", "total_frames")},
        "duration": pa.array(np.full(m, FRAMES / 25.0)),
        **{k: pa.array(np.zeros(m, np.int32)) for k in ("rotation", "stream_index")},
        "has_audio": pa.array(np.ones(m, bool)),
        # Healthy files as indexing records them without --verify (the damage columns' defaults).
        "frames_in_container": pa.array(np.full(m, FRAMES)),
        "frames_decoded": pa.array(np.full(m, -1)),
        "damage": pa.array([""] * m),
        **{k: pa.nulls(m, t) for k, t in (("start", pa.float64()), ("end", pa.float64()))},
        **{k: pa.nulls(m, t) for k, t in (("video_stream", pa.int32()), ("content_hash", pa.int64()))},
        "time_base_num": pa.array(np.ones(m, np.int64)),
        "time_base_den": pa.array(np.full(m, TB_DEN)),
        **{k: pa.array(np.zeros(m, np.int64)) for k in ("first_frame", "pts_start")},
        "size_bytes": pa.array(np.full(m, 20000)),
        "mtime_ns": pa.array(np.full(m, 1)),
        # Constant rate: stored as pts_start, pts_step; --vfr stores every pts, as a VFR stream needs.
        "frame_pts": lists(pts if vfr else pts[:0]),
        "keyframe_pts": lists(pts[::50]),
        "audio_streams": lists(np.ones(1, np.int32)),
        "pts_step": pa.array(np.full(m, 0 if vfr else 512)),
    }


def _timed(fn, out: dict, key: str):
    c, t = time.process_time(), time.perf_counter()
    try:
        return fn()
    finally:  # also when it raises (a strict open of missing files raises after checking them all)
        out[key + "_s"], out[key + "_cpu_s"] = time.perf_counter() - t, time.process_time() - c


def measure_copied(index: str, cache: str, batches: str) -> dict:
    """Fresh process: open (first, default check), construction and first batch with threads, then with
    process workers (and their RSS after ``batches`` batches), VideoInfo objects built by construction."""
    import vidloader as vl

    out: dict = {"load": os.getloadavg()[0]}
    _timed(lambda: vl.VideoDataset.from_index(index, check_files="none", cache_dir=cache), out, "open_first")
    ds = _timed(lambda: vl.VideoDataset.from_index(index, cache_dir=cache), out, "open")
    built = []
    real = vl.VideoInfo.__post_init__
    vl.VideoInfo.__post_init__ = lambda self: (built.append(1), real(self))[1]  # type: ignore[method-assign]
    for kind in ("thread", "process"):
        before = len(built)
        loader = _timed(lambda k=kind: vl.VideoLoader(ds, worker_type=k, **LOADER), out, f"init_{kind}")
        out[f"videoinfo_built_{kind}"] = len(built) - before
        it = iter(loader)
        _timed(lambda it=it: next(it), out, f"first_batch_{kind}")
        if kind == "process":
            for _ in range(int(batches)):
                next(it)
            pids = loader._pool.workers.pids()
            out["worker_rss_mb"] = [rss_mb("VmRSS", p) for p in pids]
            out["worker_rss_file_mb"] = [rss_mb("RssFile", p) for p in pids]
        loader.close()
    out["main_rss_mb"] = rss_mb()
    return out


def measure_distinct(index: str, cache: str) -> dict:
    """Fresh process: open (none, default check of N distinct missing files), plan, RSS, task bytes."""
    import vidloader as vl

    out: dict = {"load": os.getloadavg()[0]}
    base = rss_mb()
    _timed(lambda: vl.VideoDataset.from_index(index, check_files="none", cache_dir=cache), out, "open_first")
    ds = _timed(lambda: vl.VideoDataset.from_index(index, check_files="none", cache_dir=cache), out, "open")
    with contextlib.suppress(vl.ConfigError):  # every file is missing: strict raises after all stats
        _timed(lambda: vl.VideoDataset.from_index(index, strict=True, cache_dir=cache), out, "open_checked")
    loader = _timed(lambda: vl.VideoLoader(ds, **{**LOADER, "num_workers": 0}), out, "loader_init")
    out["batches"] = _timed(lambda: len(loader), out, "plan")
    out["rss_mb"], out["rss_growth_mb"] = rss_mb(), rss_mb() - base
    clip = loader.clip_plan()[0]
    task = (loader.backend, ds[clip.video_index], clip.frame_indices, None, False, None, None)
    out["task_pickle_bytes"] = len(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def measure_reader(index: str, cache: str) -> dict:
    """A spawned process's RSS growth over 1000 random rows read as a decode worker reads them (after its
    first row: the imports and the map of the file)."""
    import vidloader as vl

    ds = vl.VideoDataset.from_index(index, check_files="none", cache_dir=cache)
    rng = random.Random(0)
    wires = [pickle.dumps(ds[rng.randrange(len(ds))]) for _ in range(1000)]
    code = (
        "import pickle, sys, pyarrow, vidloader\nfrom scale import rss_mb\nwires = pickle.load(sys.stdin.buffer)\n"
        "pickle.loads(wires[0])\nbase = rss_mb()\nfor w in wires:\n    pickle.loads(w)\nprint(rss_mb() - base, base)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    res = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(wires), capture_output=True, check=True, env=env
    )
    growth, base = map(float, res.stdout.split())
    return {"reader_base_mb": base, "reader_growth_mb": growth}


def in_child(fn: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", fn, *args], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def one_size(n: int, tmp: Path, args: argparse.Namespace) -> dict:
    row: dict = {"videos": n}
    copied, cache = copied_index(n, tmp / "data"), tmp / f"cache-{n}"
    row["copied"] = in_child("copied", str(copied), str(cache), str(args.batches))
    row["copied"].update(in_child("reader", str(copied), str(cache)))
    distinct = tmp / f"distinct-{n}.parquet"
    synthetic_index(n, distinct, vfr=args.vfr)
    row["distinct"] = in_child("distinct", str(distinct), str(cache))
    row["parquet_mb"] = distinct.stat().st_size / 2**20
    row["arrow_mb"] = max(p.stat().st_size for p in (cache / "index").iterdir()) / 2**20
    shutil.rmtree(cache)
    copied.unlink()
    distinct.unlink()
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--batches", type=int, default=20, help="batches before the workers' RSS is read")
    ap.add_argument("--probe-files", type=int, default=0, help="also probe this many files (scale_probe.py)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--vfr", action="store_true", help="distinct rows store every frame's pts")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn, *rest = args.child
        measures = {"copied": measure_copied, "distinct": measure_distinct, "reader": measure_reader}
        print(json.dumps(measures[fn](*rest)))
        return 0
    report: dict = {"sizes": [], "probe": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            report["sizes"].append(one_size(n, Path(tmp), args))
            print(json.dumps(report["sizes"][-1]), flush=True)
    if args.probe_files:
        from scale_probe import probe_throughput

        report["probe"] = probe_throughput(args.probe_files, not args.no_ray)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
