"""The short soak (benchmarks/soak.py --quick): memory and descriptors stay flat over epochs, and each fault
(a decode that never returns, a file deleted mid-epoch, an index cache that cannot be written) ends in a
finished epoch with exactly the affected clips skipped; losses past the skip budget (3 of 4 files deleted,
every file gone) end in a SkipBudgetError. The full run's figures are in docs/soak.md."""

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
    (line,) = deleted["epoch_report"]
    assert line.startswith("vidloader: epoch 0: clips skipped: 2 of 12 planned (16.7%)")

    # Past the skip budget the pass raises, naming the loss: never a quarter of an epoch in silence.
    budget = faults["budget"]
    assert budget["error"] == "SkipBudgetError" and budget["planned"] == budget["clips_planned"] == 8
    assert budget["clips_delivered"] < 8 and "max_skip_fraction=0.05" in budget["message"]
    outage = faults["outage"]
    assert outage["error"] == "SkipBudgetError" and "files failed in a row" in outage["message"]
    assert "max_consecutive_failures=2 allows" in outage["message"]
    assert "No such file" in outage["message"] and outage["lost"] < outage["planned"]

    cache = faults["cache"]
    assert cache["returncode"] == 0, cache.get("stderr")
    assert cache["videos"] == 4 and cache["clips"] == 4
    assert all(size == 0 for size in cache["cache_files"].values()), "the cache could not have been written"
