#!/usr/bin/env python3
"""Correctness against peers on real-world files: the zoo of tests/zoo.py (containers, codecs and damage
found in training sets) plus ../shared/media, read by vidloader and by the peers the benchmark knows
(pyav-naive, opencv, decord, torchcodec), clip by clip, each frame checked against a sequential PyAV
decode of the intact file.

    PYTHONPATH=src python benchmarks/compat.py [--out docs/compat.md] [--json compat.json] [--zoo DIR]

Per case and reader: how many frames the reader's index says the file has, how many distinct frames it
served right over a sliding pass (clips of 4, every frame once) and 8 random clips with seeks, how many it
served WRONG (the frame of another index, or damaged content), and how many clips raised. A frame is right
when it equals the truth frame, or (for readers with their own YUV->RGB conversion: OpenCV) is within a
mean |diff| of 6 of it and closer to it than to any other frame within 3 indices.

The readers and the judging of their frames are in benchmarks/compat_readers.py. Each reader runs in its
own process, so a peer that crashes or hangs is a row, never the end of the run. torchcodec needs FFmpeg's shared libraries under their standard names: this script links PyAV's bundled
FFmpeg (the av wheel's av.libs) into <cache>/ffmpeg-shim and puts that folder on LD_LIBRARY_PATH of the
torchcodec process (a local shim; `vidloader bench` may grow its own).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compat_readers import run_reader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

READERS = ("vidloader", "pyav-naive", "opencv", "decord", "torchcodec")
SHARED = REPO.parent / "shared" / "media"


def cases(zoo_dir: Path) -> dict[str, tuple[Path, Path, str]]:
    """name -> (file, intact source, what it is)."""
    from zoo import ZOO, build_zoo

    paths = build_zoo(zoo_dir)
    out = {n: (paths[n], paths[c.source] if c.source else paths[n], c.what) for n, c in ZOO.items()}
    if SHARED.is_dir():
        for p in sorted(SHARED.glob("*.mp4")) + sorted(SHARED.glob("*.mkv")):
            out[f"shared:{p.name}"] = (p, p, "real clip from ../shared/media")
    return out


def worker(args: argparse.Namespace) -> int:
    """One reader over every case, in this process; writes JSON rows."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    todo = json.loads(Path(args.cases).read_text())
    out = {}
    for name, (path, source) in todo.items():
        t0 = time.perf_counter()
        out[name] = run_reader(args.reader, Path(path), Path(source))
        out[name]["seconds"] = round(time.perf_counter() - t0, 2)
        Path(args.json).write_text(json.dumps(out))  # what is done survives a crash later on
    return 0


def ffmpeg_shim() -> Path:
    """A folder of PyAV's bundled FFmpeg libraries under their standard names (libavutil.so.60, ...)."""
    import av

    from vidloader.dataset import default_cache_dir

    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    shim = default_cache_dir() / "ffmpeg-shim"
    shim.mkdir(parents=True, exist_ok=True)
    for lib in libs.glob("lib*.so*"):
        stem = lib.name.split("-")[0]  # libavutil-5809ad29.so.60.26.102 -> libavutil
        major = lib.name.split(".so.")[1].split(".")[0]
        link = shim / f"{stem}.so.{major}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(lib)
    return shim


def run_all(args: argparse.Namespace) -> dict:
    zoo_dir = Path(args.zoo or tempfile.mkdtemp(prefix="vidloader-zoo-"))
    all_cases = cases(zoo_dir)
    if args.only:
        keep = args.only.split(",")
        all_cases = {n: c for n, c in all_cases.items() if n in keep}
    results: dict = {"cases": {n: {"what": w} for n, (_, _, w) in all_cases.items()}, "readers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "cases.json"
        spec.write_text(json.dumps({n: [str(p), str(s)] for n, (p, s, _) in all_cases.items()}))
        for reader in args.readers.split(","):
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
            if reader == "torchcodec":
                shim = ffmpeg_shim()
                env["LD_LIBRARY_PATH"] = os.pathsep.join([str(shim), env.get("LD_LIBRARY_PATH", "")])
            out = Path(tmp) / f"{reader}.json"
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                "--reader",
                reader,
                "--cases",
                str(spec),
                "--json",
                str(out),
            ]
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
                status = (
                    "" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
                )
            except subprocess.TimeoutExpired:
                status = f"timed out after {args.timeout}s"
            rows = json.loads(out.read_text()) if out.exists() else {}
            for name in all_cases:
                rows.setdefault(name, {"error": status or "not run", "served": 0, "count": None})
            results["readers"][reader] = {"status": status, "rows": rows}
            print(f"{reader}: {status or 'ok'}", file=sys.stderr)
    return results


def cell(row: dict) -> str:
    if "error" in row:
        return f"error: {row['error'][:70]}"
    text = f"{row['served']}/{row['frames_in_file']}"
    notes = []
    if row["wrong"]:
        notes.append(f"**{row['wrong']} WRONG**")
    if row["clip_errors"]:
        notes.append(f"{row['clip_errors']} clips failed")
    if not row["exact"]:
        notes.append("colour differs")
    if row.get("rotated"):
        notes.append("rotated")
    if row.get("count") is not None and row["count"] != row["frames_in_file"]:
        notes.append(f"says {row['count']}")
    return text + (f" ({', '.join(notes)})" if notes else "")


def versions() -> str:
    import importlib.metadata as md

    import av

    out = [f"PyAV {av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')})"]
    for dist in ("opencv-python-headless", "opencv-python", "decord2", "decord", "torchcodec"):
        try:
            out.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            continue
    return ", ".join(out)


def table(results: dict, command: str) -> str:
    readers = list(results["readers"])
    lines = [
        "# Real-world files: vidloader and peers, frame by frame",
        "",
        f"Made by `{command}` (benchmarks/compat.py; files from tests/zoo.py, built by PyAV at run time).",
        f"Readers: {results.get('versions') or versions()}.",
        "",
        "Each cell: distinct frames served right / frames in the file (sequential PyAV decode of the intact",
        "file), over a sliding pass of 4-frame clips and 8 random clips with seeks. **WRONG**: frames served that",
        "are another frame or damaged content. *clips failed*: clips that raised (a damaged file's clips that",
        "touch the damage should). *colour differs*: right frames through another YUV->RGB conversion.",
        "*rotated*: frames turned by the file's display matrix (a convention, not an error).",
        "*says N*: the reader's own frame count, when it is not the file's. For a damaged file the",
        "denominator is the intact file's count; vidloader is asked only for the frames its index holds.",
        "pyav-naive decodes every clip from the start of the file: the truth's own method, exact by",
        "construction on healthy files at the cost of decoding the whole file up to each clip; the",
        "seeking peers (opencv, decord, torchcodec) are what vidloader is measured against.",
        "",
        "| case | " + " | ".join(readers) + " |",
        "| --- | " + " | ".join("---" for _ in readers) + " |",
    ]
    for name in results["cases"]:
        cells = [cell(results["readers"][r]["rows"][name]) for r in readers]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The truth for every reader is the stream FFmpeg calls best (`shared:nasa_13013.mp4` has two video",
        "streams: OpenCV cannot choose and reads the first, 320x180, so its frames count as WRONG there).",
        "torchcodec loads PyAV's bundled FFmpeg through a folder of links under standard library names on",
        "LD_LIBRARY_PATH (made by the script under the vidloader cache folder).",
    ]
    lines += ["", "Cases:", ""]
    lines += [f"- `{n}`: {c['what']}" for n, c in results["cases"].items()]
    status = [f"- {r}: {v['status']}" for r, v in results["readers"].items() if v["status"]]
    if status:
        lines += ["", "Readers that stopped early:", "", *status]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readers", default=",".join(READERS))
    ap.add_argument("--only", help="comma-separated case names (default: every case)")
    ap.add_argument("--zoo", help="folder for the zoo files (default: a new temporary folder)")
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--json", help="write the raw rows here")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per reader")
    ap.add_argument("--from-json", help="render the table from a --json file of an earlier run")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--reader", help=argparse.SUPPRESS)
    ap.add_argument("--cases", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        command = results["command"]
    else:
        results = run_all(args)
        command = "PYTHONPATH=src python benchmarks/compat.py" + (f" --out {args.out}" if args.out else "")
        results["command"], results["versions"] = command, versions()
    md = table(results, command)
    if args.out:
        Path(args.out).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
