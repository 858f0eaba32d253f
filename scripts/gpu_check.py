#!/usr/bin/env python3
"""Everything that needs a GPU, in one run: machine facts, the `cuda`-marked tests (with
VIDLOADER_REQUIRE_CUDA=1, so nothing passes by skipping), the fused-op benchmark and the loader benchmark
(vidloader-DALI vs a plain DALI reader vs torchcodec, plus the NVDEC ceiling). Prints one table at the end;
paste its output into docs/gpu-results.md together with the machine.

    python scripts/gpu_check.py            # full
    python scripts/gpu_check.py --quick    # tests + a short benchmark

Exit status: 0 only when every step ran and passed; 1 when any failed; 2 when there is no CUDA device (nothing
here can pass without one). The last line is a one-line summary either way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: int = 1800) -> tuple[int, str]:
    print(f"\n$ {' '.join(cmd)}", flush=True)
    t = time.time()
    try:
        res = subprocess.run(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
        )
        out, rc = res.stdout + res.stderr, res.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = f"{exc.stdout or ''}{exc.stderr or ''}\nTIMEOUT after {timeout}s", 124
    print(out[-6000:], flush=True)
    print(f"[rc={rc}, {time.time() - t:.0f}s]", flush=True)
    return rc, out


def machine() -> dict[str, str]:
    import torch

    facts = {"python": sys.version.split()[0], "torch": torch.__version__}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        facts.update(
            gpu=p.name, capability=f"{p.major}.{p.minor}", memory_gib=f"{p.total_memory / 2**30:.0f}"
        )
    ld = subprocess.run(["bash", "-c", "ldconfig -p | grep -c nvcuvid"], capture_output=True, text=True)
    facts["nvcuvid"] = "found" if ld.stdout.strip() not in ("", "0") else "MISSING"
    for mod in ("nvidia.dali", "av", "triton", "torchcodec"):
        try:
            m = __import__(mod, fromlist=["__version__"])
            facts[mod] = getattr(m, "__version__", "?")
        except Exception as exc:
            facts[mod] = f"missing ({type(exc).__name__})"
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version,name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        facts["nvidia-smi"] = smi.stdout.strip() or smi.stderr.strip() or "?"
    else:
        facts["nvidia-smi"] = "not found"
    return facts


@dataclass
class Report:
    """The final table's rows (check, result) and the steps that failed."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    report = Report()
    facts = machine()
    print(json.dumps(facts, indent=2))
    if "gpu" not in facts:
        print(
            "gpu_check: FAILED: no CUDA device (torch.cuda.is_available() is False); run it on a GPU machine"
        )
        return 2
    report.rows += [(f"machine: {k}", v) for k, v in facts.items()]
    if facts["nvcuvid"] != "found":
        report.failed.append("nvcuvid (NVDEC library) not found by ldconfig")
    cuda_tests(report)
    op_benchmark(report, quick=args.quick)
    ragged_benchmark(report, quick=args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        for wl in ["1080p-gop250"] if args.quick else ["1080p-gop250", "1080p-gop30"]:
            loader_benchmark(report, wl, Path(tmp) / f"{wl}.json", quick=args.quick)
        for backend in ("dali", "pyav"):
            training_stall(report, backend, Path(tmp) / f"train-{backend}", quick=args.quick)
    return print_summary(report)


def cuda_tests(report: Report) -> None:
    rc, out = run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests", "-p", "no:cacheprovider"],
        env={"VIDLOADER_REQUIRE_CUDA": "1"},
    )
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    report.rows.append(("cuda tests", (summary[-1] if summary else f"rc={rc}").strip("= ")))
    if rc != 0:
        report.failed.append(f"cuda tests (rc={rc})")


def op_benchmark(report: Report, *, quick: bool) -> None:
    rc, out = run(
        [
            sys.executable,
            "benchmarks/bench_ops.py",
            "--device",
            "cuda",
            "--repeats",
            "5" if quick else "20",
        ]
    )
    if rc != 0:
        report.failed.append(f"op benchmark (rc={rc})")
    for ln in out.splitlines():
        if ln.strip().startswith(("fused op", "torch chain", "torchvision", "GB/s", "copy bandwidth")):
            report.rows.append((f"ops: {ln.split('  ')[0].strip()}", " ".join(ln.split()[1:])))


def ragged_benchmark(report: Report, *, quick: bool) -> None:
    """Ragged (mixed frame sizes) vs uniform batch of the same total pixels, Triton kernel (issue 14).
    Rows only: its exit status is not one of the checks."""
    _, out = run(
        [
            sys.executable,
            "benchmarks/bench_ragged.py",
            "--device",
            "cuda",
            "--repeats",
            "5" if quick else "50",
        ]
    )
    section = ""
    for ln in out.splitlines():
        if ln.startswith(("random resized", "whole frames")):
            section = ln.split(":")[0]
        elif ln.startswith("| ragged op (mixed input)"):
            report.rows.append(
                (f"ragged vs uniform: {section}", " ".join(ln.strip("| ").split("|")[1:]).strip())
            )


def loader_benchmark(report: Report, wl: str, js: Path, *, quick: bool) -> None:
    """vidloader-DALI vs a plain DALI reader vs torchcodec vs vidloader-PyAV on one workload, and the ceiling."""
    rc, _ = run(
        [
            sys.executable,
            "-m",
            "vidloader.cli",
            "bench",
            "--synthetic",
            wl,
            "--backends",
            "vidloader-dali,dali-reader,torchcodec,vidloader-pyav",
            "--frames",
            "16",
            "--stride",
            "2",
            "--batch-size",
            "8",
            "--resize",
            "224",
            "--workers",
            str(min(8, os.cpu_count() or 1)),
            "--seconds",
            "10" if quick else "30",
            "--ceiling",
            "--json",
            str(js),
        ]
    )
    if rc != 0 or not js.exists():
        report.failed.append(f"{wl} bench (rc={rc})")
    if not js.exists():
        report.rows.append((f"{wl}: bench", f"failed rc={rc}"))
        return
    data = json.loads(js.read_text())
    for name, r in data.get("backends", {}).items():
        if r.get("clips_per_s") is not None:
            speed = f"{r['clips_per_s']:.1f} clips/s, {r.get('frames_per_s', 0):.0f} frames/s"
            report.rows.append((f"{wl}: {name}", speed))
        else:
            report.rows.append((f"{wl}: {name}", str(r.get("skipped", r.get("error", "?")))))
    ceil = data.get("ceiling") or {}
    if "frames_per_s" in ceil:
        report.rows.append((f"{wl}: ceiling", f"{ceil['frames_per_s']:.0f} frames/s ({ceil['how']})"))
    elif ceil:
        report.rows.append((f"{wl}: ceiling", f"skipped: {ceil.get('skipped')}"))


def training_stall(report: Report, backend: str, out_dir: Path, *, quick: bool) -> None:
    """Issue 5's question: how long does an r2plus1d_18 16x112² batch-32 step wait for data, DALI vs CPU?"""
    rc, _ = run(
        [
            sys.executable,
            "train_example.py",
            "--config",
            "configs/demo_gpu.yaml",
            "--out",
            str(out_dir),
            "train.epochs=1" if quick else "train.epochs=2",
            "transform.size=112",
            f"loader.backend={backend}",
            f"loader.num_workers={min(8, os.cpu_count() or 1)}",
        ]
    )
    check = f"train r2plus1d_18 16x112 b32: {backend}"
    metrics = out_dir / "metrics.jsonl"
    if metrics.exists():
        last = json.loads(metrics.read_text().splitlines()[-1])
        report.rows.append((check, f"stall {last['stall_pct']:.1f}%, {last['clips_per_s']:.1f} clips/s"))
    else:
        report.rows.append((check, f"failed rc={rc}"))
    if rc != 0:
        report.failed.append(f"train {backend} (rc={rc})")


def print_summary(report: Report) -> int:
    """The table of every row and the one-line verdict; the exit status (0 passed, 1 failed)."""
    rows, failed = report.rows, report.failed
    width = max(len(k) for k, _ in rows)
    print("\n" + "=" * 100)
    print(f"{'check'.ljust(width)} | result")
    print("-" * 100)
    for k, v in rows:
        print(f"{k.ljust(width)} | {v}")
    if failed:
        print(f"gpu_check: FAILED: {len(failed)} of the checks: {'; '.join(failed)}")
        return 1
    print(f"gpu_check: PASSED: {len(rows)} rows, every step exited 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
