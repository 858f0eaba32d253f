"""benchmarks/compat.py: the correctness table against peers runs, judges frames, and turns a reader that
cannot run into a row instead of ending the run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_compat_rows(tmp_path: Path) -> None:
    out = tmp_path / "compat.json"
    md = tmp_path / "compat.md"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), VIDLOADER_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "compat.py"),
        "--zoo",
        str(tmp_path / "zoo"),
        "--only",
        "ts_h264,corrupt_gop,truncated_faststart",
        "--readers",
        "vidloader,pyav-naive,no-such-reader",
        "--json",
        str(out),
        "--out",
        str(md),
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    rows = {r: v["rows"] for r, v in json.loads(out.read_text())["readers"].items()}
    vl = rows["vidloader"]
    assert vl["ts_h264"] | {"seconds": 0} == {
        "frames_in_file": 60,
        "served": 60,
        "wrong": 0,
        "clip_errors": 0,
        "exact": True,
        "rotated": False,
        "count": 60,
        "seconds": 0,
    }
    # The damaged GOP: vidloader fails the clips that touch it and serves the rest, never a wrong frame.
    assert vl["corrupt_gop"]["wrong"] == 0 and vl["corrupt_gop"]["clip_errors"] > 0
    assert 0 < vl["corrupt_gop"]["served"] < vl["corrupt_gop"]["frames_in_file"] == 72
    assert vl["truncated_faststart"]["served"] == vl["truncated_faststart"]["count"] < 60
    # A naive sequential decode serves the concealed (damaged) frames of that GOP: the table says WRONG.
    assert rows["pyav-naive"]["corrupt_gop"]["wrong"] > 0
    assert all("KeyError" in r["error"] for r in rows["no-such-reader"].values())
    table = md.read_text()
    assert "| ts_h264 | 60/60 |" in table and "WRONG" in table


@pytest.mark.slow
def test_torchvision_port_reads_torchvisions_clips(tmp_path: Path) -> None:
    """benchmarks/compat_torchvision.py: torchvision itself (decoding through torchcodec) against the port,
    on its 12-video tree: every val clip and every rank's DDP share is torchvision's, pixel for pixel."""
    if importlib.util.find_spec("torchcodec") is None:  # found, not imported: it loads FFmpeg on import
        pytest.skip("torchvision 0.26 decodes through torchcodec (the bench extra), not installed")
    out = tmp_path / "fidelity.json"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), VIDLOADER_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, str(REPO / "benchmarks" / "compat_torchvision.py"), "--json", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    report = json.loads(out.read_text())
    assert report["val_clips"] == {"torchvision": 24, "port": 24, "same_frames": 24}
    assert report["val_max_pixel_diff_of_same"] == 0
    for world_size, (tv, port) in {"2": (24, 24), "5": (25, 25)}.items():
        ddp = report["ddp"][world_size]
        assert ddp["clips over ranks"] == [tv, port] and ddp["len(sampler.dataset)"] == [24, 24]
        assert ddp["ranks with torchvision's clips"] == int(world_size)
