"""Run a peer in a child process: for peers (torchcodec, SPDL) that need FFmpeg's shared libraries on
``LD_LIBRARY_PATH``, which the dynamic loader reads only at process start.

The parent writes the job (peer class, the videos' index records, the clip list, the settings) to a
folder and starts ``python -m vidloader.cli._isolated FOLDER`` with ``ffmpeg_env()``; the child checks and
times the peer exactly as the parent would (``run_peer``) and writes back the row and the check clips'
frames. A peer that cannot load or fails is a row with ``skipped`` or ``error``, and so is a child that
dies or overruns its time limit. The parent compares the frames, so the check is the same for every row.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import VideoInfo
from ._peer_base import PeerUnavailable
from ._peer_run import PeerJob, clips_from_json, clips_to_json, run_peer


def _child_env() -> dict[str, str]:
    from ._ffmpeg_shim import ffmpeg_env

    env = ffmpeg_env()
    # The child imports this very vidloader (a source tree on PYTHONPATH, or the installed one).
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env


def run_isolated(
    factory: Any, dataset: Any, job: PeerJob, *, timeout: float
) -> tuple[list[np.ndarray], dict]:
    """``run_peer`` of ``factory()`` in a child process; returns ([], row) when it did not run."""
    videos = sorted({c.video_index for c in (*job.check_clips, *job.plan)})
    spec = {
        "factory": f"{factory.__module__}:{factory.__qualname__}",
        "infos": {str(v): dataset[v].to_json() for v in videos},
        "job": {
            **dataclasses.asdict(job),
            "check_clips": clips_to_json(job.check_clips),
            "plan": clips_to_json(job.plan),
            "progress": False,
        },
    }
    with tempfile.TemporaryDirectory(prefix="vidloader-peer-") as tmp:
        folder = Path(tmp)
        (folder / "job.json").write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "vidloader.cli._isolated", str(folder)]
        try:
            res = subprocess.run(cmd, env=_child_env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return [], {"error": f"the peer's process ran past {timeout:.0f} s and was stopped"}
        out = folder / "row.json"
        if not out.exists():
            tail = " | ".join(res.stderr.strip().splitlines()[-3:])[-300:]
            return [], {"error": f"the peer's process exited with code {res.returncode}: {tail}"}
        row = json.loads(out.read_text())
        frames = folder / "check.npz"
        if "skipped" in row or "error" in row or not frames.exists():
            return [], row
        with np.load(frames) as z:
            got = [z[f"arr_{k}"] for k in range(len(z.files))]
    return got, row


def _child(folder: Path) -> None:
    spec = json.loads((folder / "job.json").read_text())
    row: dict[str, Any]
    try:
        module, qualname = spec["factory"].split(":")
        factory: Any = importlib.import_module(module)
        for part in qualname.split("."):
            factory = getattr(factory, part)
        infos = {int(k): VideoInfo.from_json(v) for k, v in spec["infos"].items()}
        j = spec["job"]
        job = PeerJob(
            **{
                **j,
                "check_clips": clips_from_json(j["check_clips"]),
                "plan": clips_from_json(j["plan"]),
                "resize": tuple(j["resize"]) if j["resize"] else None,
            }
        )
        got, row = run_peer(factory(), infos, job)
        np.savez(folder / "check.npz", *got)  # arr_0, arr_1, ...
    except PeerUnavailable as exc:
        row = {"skipped": str(exc)}
    except Exception as exc:  # the peer's failure is the row, reported by the parent
        row = {"error": f"{type(exc).__name__}: {exc}"}
    (folder / "row.json").write_text(json.dumps(row, default=str))


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
