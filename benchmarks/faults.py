#!/usr/bin/env python3
"""Faults that must end in a named error within a minute, never a skip, a hang or an orphaned process;
each is measured from the moment it is made to what the user sees (docs/soak.md, "Faults that stop a pass").

- request: one stat of an object on an S3 endpoint where nothing listens, with the default retries and
  with ``configure_store(retries=0)``.
- outage: the S3 server (moto, in its own process: tests/stores.py) is killed with SIGKILL after the first
  batch; thread and process workers, on_error "raise" and "skip".
- failing: every request to an HTTP store answers 503 from the second batch on (thread workers).
- unguarded: a script without ``if __name__ == "__main__":`` and process workers (tests/unguarded_script.py).
- orphans: the main process of a run with process workers is SIGKILLed, or ends with ``os._exit``, after
  its first batch (tests/orphan_script.py); how long its workers outlive it, and /dev/shm files left.

    python benchmarks/faults.py [--only outage,failing,unguarded,orphans] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

import vidloader as vl
from vidloader.dataset import clear_store_cache, configure_store, textured_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SCENARIOS = ("request", "outage", "failing", "unguarded", "orphans")
# How long a fault may go without a named error before the run gives up on it (and reports that).
GIVE_UP_S = 600


def make_media(root: Path, n: int, *, classes: int = 1) -> list[Path]:
    out = []
    for i in range(n):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = textured_frames(24, 64, 96, seed=i)
        out.append(write_video(folder / f"v{i:03d}.mp4", frames, gop=12, bframes=2))
    return out


@contextlib.contextmanager
def s3_process(root: Path) -> Iterator[subprocess.Popen]:
    """moto's S3 server in a child process (tests/stores.py), the AWS variables pointing at it."""
    cmd = [sys.executable, str(TESTS / "stores.py"), "--root", str(root)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ends = json.loads(proc.stdout.readline())
        os.environ.update(
            AWS_ENDPOINT_URL=ends["s3"],
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        fsspec.filesystem("s3").clear_instance_cache()
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


def run_pass(loader: vl.VideoLoader, fault: Any) -> dict[str, Any]:
    """Iterate one pass, making the fault (``fault()``) after the first batch; the clock runs from then to
    the pass's end or its error."""
    delivered, made, err = 0, None, None
    try:
        for batch in loader:
            delivered += len(batch)
            if made is None:
                fault()
                made = time.monotonic()
    except Exception as exc:  # what the user sees is the result here, whatever it is
        err = exc
    end = time.monotonic()
    stats = loader.stats
    loader.close()
    planned = loader.num_clips
    return {
        "seconds": round(end - (made or end), 1),
        "error": None if err is None else f"{type(err).__name__}: {err}"[:300],
        "clips_planned": planned,
        "clips_delivered": delivered,
        "clips_lost": planned - delivered,
        "skipped_clips": stats["skipped_clips"],
    }


def dead_request(retries: int | None) -> dict[str, Any]:
    sys.path.insert(0, str(TESTS))
    from stores import free_port

    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    fsspec.filesystem("s3").clear_instance_cache()
    clear_store_cache()
    if retries is not None:
        configure_store(retries=retries)
    t0 = time.monotonic()
    try:
        vl.probe_video("s3://bucket/video.mp4")
        err = "no error"
    except Exception as exc:  # the row reports whatever the user gets
        err = f"{type(exc).__name__}: {exc}"[:300]
    took = time.monotonic() - t0
    configure_store(retries=5)
    return {
        "fault": "request",
        "setting": f"stat on a dead S3 endpoint, retries={5 if retries is None else retries}",
        "seconds": round(took, 1),
        "error": err,
    }


def outage(work: Path, worker_type: str, on_error: str) -> dict[str, Any]:
    media = make_media(work / "media", 16)
    with s3_process(work / "served") as server:
        fs = fsspec.filesystem("s3")
        fs.mkdir("faults")
        for p in media:
            fs.put_file(str(p), f"faults/{p.name}")
        clear_store_cache()
        ds = vl.VideoDataset.from_paths([f"s3://faults/{p.name}" for p in media], use_cache=False)
        loader = vl.VideoLoader(
            ds, batch_size=2, frames_per_clip=4, num_workers=2, worker_type=worker_type, on_error=on_error
        )  # type: ignore[arg-type]
        row = run_pass(loader, server.kill)
    return {"fault": "outage", "setting": f"{worker_type} workers, on_error={on_error!r}", **row}


def failing(work: Path, on_error: str) -> dict[str, Any]:
    sys.path.insert(0, str(TESTS))
    from stores import RangeHTTPServer

    media = make_media(work / "media", 16)
    with RangeHTTPServer(work / "media") as http:
        clear_store_cache()
        ds = vl.VideoDataset.from_paths([f"{http.url}/class0/{p.name}" for p in media], use_cache=False)
        loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=4, num_workers=2, on_error=on_error)  # type: ignore[arg-type]

        def fail_all() -> None:
            http.fail_next = 10**9

        row = run_pass(loader, fail_all)
    return {"fault": "failing", "setting": f"every request 503, thread workers, on_error={on_error!r}", **row}


def unguarded(work: Path, on_error: str) -> dict[str, Any]:
    make_media(work / "media", 16)
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, str(TESTS / "unguarded_script.py"), str(work / "media"), on_error],
        capture_output=True,
        text=True,
        timeout=GIVE_UP_S,
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    return {
        "fault": "unguarded",
        "setting": f"no __main__ guard, process workers, on_error={on_error!r}",
        "seconds": round(time.monotonic() - t0, 1),
        "returncode": res.returncode,
        "stdout": res.stdout.strip()[-200:],
        "tracebacks": res.stderr.count("Traceback (most recent call last)"),
        "last_error": lines[-1][:300] if lines else "",
    }


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def orphans(work: Path, how: str, limit: float = 60.0) -> dict[str, Any]:
    make_media(work / "media", 16)
    mode = "exit" if how == "os._exit" else "wait"
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "orphan_script.py"), str(work / "media"), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    report = json.loads(proc.stdout.readline())
    if how == "SIGKILL":
        os.kill(report["main"], signal.SIGKILL)
    proc.wait(timeout=60)
    t0 = time.monotonic()
    below = report["below"]
    while any(alive(p) for p in below) and time.monotonic() - t0 < limit:
        time.sleep(0.1)
    left = [p for p in below if alive(p)]
    gone_after = None if left else round(time.monotonic() - t0, 1)
    time.sleep(1.0)  # the resource tracker removes what the gone processes left, then ends itself
    shm_left = [f for f in report["shm"] if Path(f).exists()]
    # The run must not leave them behind either: the workers first, so that multiprocessing's resource
    # tracker sees its last client go and removes the semaphores, then whatever is still there.
    for group in ([p for p in left if p in report["workers"]], left):
        for p in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(2.0)
    return {
        "fault": "orphans",
        "setting": f"main process ended by {how} after batch 1",
        "workers": report["workers"],
        "processes_below_main": len(below),
        "seconds_until_all_gone": gone_after,
        f"alive_after_{int(limit)}s": left,
        "shm_files_mapped": report["shm"],
        "shm_files_left": shm_left,
    }


def run(only: set[str], workdir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def fresh(name: str) -> Path:
        d = workdir / f"{name}-{len(rows)}"
        d.mkdir()
        return d

    for retries in (None, 0):
        if "request" in only:
            rows.append(dead_request(retries))
            print(json.dumps(rows[-1]), flush=True)
    for worker_type in ("thread", "process"):
        for on_error in ("raise", "skip"):
            if "outage" in only:
                rows.append(outage(fresh("outage"), worker_type, on_error))
                print(json.dumps(rows[-1]), flush=True)
    for on_error in ("raise", "skip"):
        if "failing" in only:
            rows.append(failing(fresh("failing"), on_error))
            print(json.dumps(rows[-1]), flush=True)
        if "unguarded" in only:
            rows.append(unguarded(fresh("unguarded"), on_error))
            print(json.dumps(rows[-1]), flush=True)
    for how in ("SIGKILL", "os._exit"):
        if "orphans" in only:
            rows.append(orphans(fresh("orphans"), how))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    ap.add_argument("--json")
    args = ap.parse_args()
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(only, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
