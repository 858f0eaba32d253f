"""The short soak (benchmarks/soak.py --quick): memory and descriptors stay flat over epochs, and each fault
(a decode that never returns, a file deleted mid-epoch, an index cache that cannot be written) ends in a
finished epoch with exactly the affected clips skipped. The full run's figures are in docs/soak.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import soak  # noqa: E402


@pytest.mark.slow
def test_short_soak_and_faults(tmp_path: Path) -> None:
    report = soak.run(epochs=3, videos=6, quick=True, workdir=tmp_path)
    (threads,) = report["soak"]
    rows = threads["epochs"]
    assert [r["batches"] for r in rows] == [3, 3, 3]
    assert threads["growth_pct"]["main_rss_mb"] < 5.0, rows
    assert rows[-1]["main_fds"] <= rows[0]["main_fds"], "descriptors leak across epochs"
    assert rows[-1]["threads"] <= rows[0]["threads"], "threads pile up across epochs"
    faults = {f["fault"]: f for f in report["faults"]}

    stuck = faults["stuck"]
    assert stuck["skipped_clips"] == 2 and stuck["clips_delivered"] == 6  # 4 videos x 2 clips
    assert stuck["abandoned_decodes"] == 2 and stuck["live_workers_after"] == 2
    assert "decode_timeout" in stuck["reason"]

    deleted = faults["deleted"]
    assert deleted["skipped_clips"] == 2
    assert deleted["clips_delivered"] == deleted["clips_planned"] - 2
    assert "No such file" in deleted["reason"]

    cache = faults["cache"]
    assert cache["returncode"] == 0, cache.get("stderr")
    assert cache["videos"] == 4 and cache["clips"] == 4
    assert all(size == 0 for size in cache["cache_files"].values()), "the cache could not have been written"
