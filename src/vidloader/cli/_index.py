"""`vidloader index`: what a dataset holds (sizes, aspect ratios, frame rates, VFR, audio), which files
cannot be used and why, and which are damaged (how many of their frames decode, FFmpeg's first error)."""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

from .._errors import VidloaderError
from ..dataset import CHECK_FILES, DEFAULT_INDEX_NAME, ENGINES, VideoDataset, VideoInfo


def is_vfr(info: VideoInfo) -> bool:
    """Frame gaps that differ by more than timestamp rounding (2 ticks) and 10% of the median gap."""
    pts = info.frame_pts[info.first_frame : info.first_frame + info.num_frames]
    gaps = sorted(b - a for a, b in itertools.pairwise(pts))
    if len(gaps) < 2:
        return False
    return gaps[-1] - gaps[0] > max(2, 0.1 * gaps[len(gaps) // 2])


def _aspect(info: VideoInfo) -> str:
    ratio = Fraction(info.width, info.height).limit_denominator(20)
    return f"{ratio.numerator}:{ratio.denominator}"


def _top(counts: Counter[Any], n: int = 6) -> str:
    items = [f"{k} x{v}" for k, v in counts.most_common(n)]
    return ", ".join(items) + (f", ... ({len(counts)} distinct)" if len(counts) > n else "")


def mixed_summary(ds: VideoDataset) -> dict[str, Any]:
    """How mixed the dataset is: the numbers ``vidloader index`` prints, JSON-safe."""
    videos = list(ds)
    fps = [v.fps for v in videos]
    frames = [v.num_frames for v in videos]
    return {
        "resolutions": Counter(f"{v.width}x{v.height}" for v in videos),
        "aspect_ratios": Counter(_aspect(v) for v in videos),
        "orientation": Counter(
            "portrait" if v.height > v.width else "landscape" if v.width > v.height else "square"
            for v in videos
        ),
        "fps_range": (min(fps), max(fps)) if fps else None,
        "frames_range": (min(frames), max(frames)) if frames else None,
        "vfr": sum(is_vfr(v) for v in videos),
        "with_audio": sum(v.has_audio for v in videos),
    }


def _trouble(ds: VideoDataset) -> list[str]:
    """The summary's lines on unusable and damaged files, and how many files were decoded whole."""
    lines = [f"unreadable:  {len(ds.skipped)}", *(f"  {f.path}: {f.reason}" for f in ds.skipped)]
    lines += [f"damaged:     {len(ds.damaged)}", *(f"  {d.path}: {d.reason}" for d in ds.damaged)]
    verified = sum(n >= 0 for n in ds.column("frames_decoded"))
    lines.append(
        f"verified:    {verified} of {len(ds)} videos decoded whole"
        + ("" if verified == len(ds) else " (--verify decodes every frame, to find damage only decoders see)")
    )
    return lines


def format_summary(ds: VideoDataset) -> str:
    s = ds.summary()
    m = mixed_summary(ds)
    d = s["duration_s"]
    lines = [
        f"videos:      {s['videos']}",
        f"classes:     {s['classes']} ({', '.join(ds.classes[:8])}{', ...' if len(ds.classes) > 8 else ''})",
        f"codecs:      {s['codecs']}",
        f"resolutions: {_top(m['resolutions'])}",
        f"aspect:      {_top(m['aspect_ratios'])}; {', '.join(f'{k} {v}' for k, v in m['orientation'].items())}",
        f"fps:         {m['fps_range'][0]:.3g} to {m['fps_range'][1]:.3g} ({_top(Counter(s['fps']))})",
        f"vfr:         {m['vfr']}",
        f"frames:      min {m['frames_range'][0]}, max {m['frames_range'][1]}",
        f"audio:       {m['with_audio']} with audio, {s['videos'] - m['with_audio']} without",
        f"duration:    min {d['min']:.2f}s, max {d['max']:.2f}s, total {d['total']:.1f}s ({d['total'] / 3600:.2f}h)",
    ]
    return "\n".join(lines + _trouble(ds))


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
    """Open ``--index`` (checking it against the files: changed ones are listed as unreadable), or probe
    the dataset (only files that are new or changed since the index at the output path and the probe
    cache, unless ``--full``) and write the index. Returns the dataset and the path written (None when
    nothing was written)."""
    if getattr(args, "index", None):
        ds = VideoDataset.from_index(args.index, check_files=args.check_files)
        return ds, None
    out = Path(args.out) if args.out else default_index_path(args)
    probe = dict(
        on_error="skip",
        engine=args.engine,
        address=args.address,
        num_workers=args.workers,
        reuse_index=None if args.full else out,
        refresh=args.full,
        verify=args.verify,
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
    p.add_argument(
        "--full",
        action="store_true",
        help="probe every file again, reading neither the index nor the probe cache (default: only new or "
        "changed files)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="decode every frame of every file (in parallel) and record in the index how many decode and "
        "FFmpeg's first error: finds damage that only decoders see",
    )
    p.add_argument("--engine", choices=list(ENGINES), default="thread", help="how files are probed")
    p.add_argument("--address", help="Ray cluster address for --engine ray (default: a local Ray)")
    p.add_argument("--workers", type=int, help="probe threads or processes")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any file is unreadable or damaged, also when that was found on an "
        "earlier run (the probe cache and the index keep it); with --index: or changed since indexing",
    )
    p.add_argument(
        "--check-files", choices=list(CHECK_FILES), default="all", help="with --index: what to compare"
    )
