"""The `vidloader` command: index, bench, shard, inspect."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import ConfigError, VidloaderError
from ..dataset import VideoDataset
from ._index import add_index_args
from ._workloads import WORKLOADS


def _dataset(args: argparse.Namespace, *, on_error: str = "skip") -> VideoDataset:
    if getattr(args, "index", None):
        return VideoDataset.from_index(args.index)
    if getattr(args, "manifest", None):
        return VideoDataset.from_manifest(args.manifest, on_error=on_error)  # type: ignore[arg-type]
    if getattr(args, "synthetic", None):
        from ._workloads import ensure_workload

        return VideoDataset.from_folder(ensure_workload(args.synthetic, args.data_root), on_error=on_error)  # type: ignore[arg-type]
    if not getattr(args, "data", None):
        raise VidloaderError("give --data DIR, --manifest FILE or --synthetic NAME")
    return VideoDataset.from_folder(args.data, on_error=on_error)  # type: ignore[arg-type]


def _resize(text: str | None) -> int | tuple[int, int] | None:
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.lower().replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise ConfigError(f"--resize {text!r} is not allowed; give a short side (224) or HxW (224x398)")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def cmd_index(args: argparse.Namespace) -> int:
    from ._index import format_summary, run_index

    if args.dir:
        args.data = args.dir
    ds, written = run_index(args)
    print(format_summary(ds))
    if written is not None:
        print(f"index:       {written}")
    if args.strict and (ds.skipped or ds.damaged):
        print(f"--strict: {len(ds.skipped)} unreadable, {len(ds.damaged)} damaged files", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ._bench import run_bench, write_json
    from ._bench_report import format_table, plot

    ds = _dataset(args)
    report = run_bench(
        ds,
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        frames=args.frames,
        stride=args.stride,
        batch_size=args.batch_size,
        resize=_resize(args.resize),
        workers=args.workers,
        worker_type=args.worker_type,
        clips=args.clips,
        sampling=args.sampling,
        clips_per_video=args.clips_per_video,
        repeats=args.repeats,
        seconds=args.seconds,
        seed=args.seed,
        profile=args.profile,
    )
    if args.ceiling:
        from ._ceiling import measure_ceiling
        from ._peers import PeerUnavailable

        try:
            report["ceiling"] = measure_ceiling(ds, seconds=args.ceiling_seconds)
        except PeerUnavailable as exc:
            report["ceiling"] = {"skipped": str(exc)}
        except Exception as exc:  # the ceiling is an extra: its failure is reported, the table still printed
            report["ceiling"] = {"error": f"{type(exc).__name__}: {exc}"}
    print(format_table(report))
    if args.json:
        write_json(report, args.json)
    if args.plot:
        plot(report, args.plot)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import vidloader as vl

    from ._inspect import contact_sheet

    ds = _dataset(args)
    transform: Any = None
    mean, std = None, None
    if args.transform == "train":
        transform = vl.transforms.TrainClipTransform(size=args.size, flip=True)
    elif args.transform == "eval":
        transform = vl.transforms.EvalClipTransform(size=args.size, crops=3)
    if transform is not None:
        mean, std = transform.mean, transform.std
    loader = vl.VideoLoader(
        ds,
        batch_size=args.batch_size,
        frames_per_clip=args.frames,
        frame_stride=args.stride,
        sampling=args.sampling,
        resize=_resize(args.resize),
        transform=transform,
        num_workers=0,
        seed=args.seed,
    )
    batches = []
    for i, batch in enumerate(loader):
        if i >= args.batches:
            break
        batches.append(batch)
    size = contact_sheet(batches, ds, args.out, mean=mean, std=std)
    print(f"wrote {args.out} ({size[0]}x{size[1]}, {sum(len(b) for b in batches)} clips)")
    return 0


def _bytes(text: str) -> int:
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    t = text.strip().upper()
    num = t.rstrip("KMGIB")
    try:
        value = float(num) * units[t[len(num) :]]
    except (ValueError, KeyError):
        raise ConfigError(
            f"--shard-size {text!r} is not allowed; give bytes or a size like 512MB, 1GB, 2GiB"
        ) from None
    if value < 1:
        raise ConfigError(f"--shard-size {text!r} must be at least one byte")
    return int(value)


def cmd_shard(args: argparse.Namespace) -> int:
    from ..dataset import write_shards

    ds = _dataset(args)
    report = write_shards(ds, args.out, shard_bytes=_bytes(args.shard_size), prefix=args.prefix)
    print(
        f"wrote {len(report.shards)} shard(s), {report.members} member(s), {report.rows} row(s), "
        f"{report.bytes / 1e6:.1f} MB into {args.out}; manifest: {report.manifest}"
    )
    for s in ds.skipped:
        print(f"skipped {s.path}: {s.reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vidloader", description="Index, benchmark and inspect video datasets.")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_index(sub)
    _add_bench(sub)
    _add_shard(sub)
    _add_inspect(sub)
    return ap


def _data_args(p: argparse.ArgumentParser) -> None:
    """Where a subcommand's videos come from: every subcommand takes the same options."""
    p.add_argument("--data", help="root/<class>/<video> folder")
    p.add_argument("--manifest", help="CSV or JSONL manifest")
    p.add_argument("--index", help="an index file written by `vidloader index` (no probing)")
    p.add_argument(
        "--synthetic",
        help=f"a generated workload: {', '.join(WORKLOADS)}",
    )
    p.add_argument("--data-root", default="data/bench", help="where synthetic workloads are generated")
    p.add_argument("--seed", type=int, default=0)


def _add_index(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("index", help="probe a dataset, write its portable index file, list unreadable files")
    p.add_argument("dir", nargs="?")
    _data_args(p)
    add_index_args(p)
    p.set_defaults(func=cmd_index)


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="clips/s of vidloader vs peers on the same clip list")
    _data_args(p)
    p.add_argument(
        "--backends",
        default="vidloader-pyav,vidloader-dali,torchcodec,torchcodec-approx,spdl,decord,opencv,pyav-seek,"
        "pyav-naive,dali-reader",
        help="vidloader rows and peers, in the order they run (see docs/bench.md)",
    )
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--resize", help="short side (224) or HxW")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--worker-type",
        default="thread",
        choices=["thread", "process"],
        help="the vidloader rows' workers; process workers are started before the timed runs, and their CPU "
        "counts with the row's",
    )
    p.add_argument("--clips", type=int, default=64, help="clips per timed run")
    p.add_argument(
        "--sampling",
        default="random",
        choices=["random", "uniform", "multiview", "sliding"],
        help="the clip plan (random: shuffled; the others in video order, as an evaluation pass reads them)",
    )
    p.add_argument(
        "--clips-per-video",
        type=int,
        help="clips per video (default: enough random clips for --clips; multiview/uniform: 4; sliding: every window)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop each timed run after this much wall time (at least two batches); default: all --clips",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    p.add_argument("--plot")
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="also measure raw sequential decode throughput (NVDEC with a GPU, all CPU cores without)",
    )
    p.add_argument("--ceiling-seconds", type=float, default=10.0, help="how long the ceiling decodes")
    p.add_argument(
        "--profile",
        action="store_true",
        help="one more vidloader-pyav run with the decode profile on: CPU per clip by stage, the decode floor",
    )
    p.set_defaults(func=cmd_bench)


def _add_shard(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("shard", help="pack a folder or manifest into tar shards plus a manifest")
    _data_args(p)
    p.add_argument("--out", required=True, help="an empty local folder for the shards and manifest.jsonl")
    p.add_argument("--shard-size", default="1GB", help="target bytes per shard (512MB, 1GB, 2GiB, ...)")
    p.add_argument("--prefix", default="shard", help="shard file name prefix")
    p.set_defaults(func=cmd_shard)


def _add_inspect(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", help="contact sheet of what the loader yields")
    _data_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--sampling", default="random")
    p.add_argument("--resize")
    p.add_argument("--transform", choices=["none", "train", "eval"], default="none")
    p.add_argument("--size", type=int, default=112)
    p.set_defaults(func=cmd_inspect)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VidloaderError as exc:
        print(f"vidloader: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
