"""`vidloader index`: what a dataset holds, and which files cannot be used and why."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._errors import VidloaderError
from ..dataset import CHECK_FILES, DEFAULT_INDEX_NAME, ENGINES, VideoDataset


def format_summary(ds: VideoDataset) -> str:
    s = ds.summary()
    d = s["duration_s"]
    lines = [
        f"videos:      {s['videos']}",
        f"classes:     {s['classes']} ({', '.join(ds.classes[:8])}{', ...' if len(ds.classes) > 8 else ''})",
        f"codecs:      {s['codecs']}",
        f"resolutions: {s['resolutions']}",
        f"fps:         {s['fps']}",
        f"duration:    min {d['min']:.2f}s, max {d['max']:.2f}s, total {d['total']:.1f}s ({d['total'] / 3600:.2f}h)",
        f"unreadable:  {len(s['skipped'])}",
    ]
    lines += [f"  {f['path']}: {f['reason']}" for f in s["skipped"]]
    return "\n".join(lines)


def default_index_path(args: argparse.Namespace) -> Path:
    """Next to the data: ``<root>/vidloader-index.parquet``, or ``<manifest>-index.parquet``."""
    if getattr(args, "manifest", None):
        m = Path(args.manifest)
        return m.with_name(f"{m.stem}-index.parquet")
    if getattr(args, "synthetic", None):
        from ._workloads import ensure_workload

        return Path(ensure_workload(args.synthetic, args.data_root)) / DEFAULT_INDEX_NAME
    if not getattr(args, "data", None):
        raise VidloaderError("give DIR, --data DIR, --manifest FILE, --synthetic NAME or --index FILE")
    return Path(args.data) / DEFAULT_INDEX_NAME


def run_index(args: argparse.Namespace) -> tuple[VideoDataset, Path | None]:
    """Open ``--index`` (checking it against the files), or probe the dataset (only files that are new or
    changed since the index at the output path) and write the index. Returns the dataset and the path
    written (None when nothing was written)."""
    if getattr(args, "index", None):
        ds = VideoDataset.from_index(args.index, strict=args.strict, check_files=args.check_files)
        return ds, None
    out = Path(args.out) if args.out else default_index_path(args)
    probe = dict(
        on_error="skip",
        engine=args.engine,
        address=args.address,
        num_workers=args.workers,
        reuse_index=None if args.full else out,
    )
    if args.manifest:
        ds = VideoDataset.from_manifest(args.manifest, **probe)
    else:
        root = out.parent if args.synthetic and not args.data else args.data
        ds = VideoDataset.from_folder(root, **probe)
    if args.no_write:
        return ds, None
    return ds, ds.to_index(out)


def add_index_args(p: argparse.ArgumentParser) -> None:
    """The options of `vidloader index` that write and check index files."""
    p.add_argument("--out", help=f"index file to write (default: DIR/{DEFAULT_INDEX_NAME})")
    p.add_argument("--no-write", action="store_true", help="only summarise; write no index")
    p.add_argument("--full", action="store_true", help="probe every file again (default: only new/changed)")
    p.add_argument("--engine", choices=list(ENGINES), default="thread", help="how files are probed")
    p.add_argument("--address", help="Ray cluster address for --engine ray (default: a local Ray)")
    p.add_argument("--workers", type=int, help="probe threads or processes")
    p.add_argument("--strict", action="store_true", help="with --index: fail if files changed since")
    p.add_argument(
        "--check-files", choices=list(CHECK_FILES), default="all", help="with --index: what to compare"
    )
