#!/usr/bin/env python3
"""One markdown table from several `vidloader bench --json` reports: per run, vidloader-pyav against its
fastest and its cheapest peer (ratios per round, measured in the same round), cores used, peak memory.

    python benchmarks/bench_table.py out/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    rep = json.loads(path.read_text())
    cfg, rows, vs = rep["config"], rep["backends"], rep.get("vs_best_peer") or {}
    ours = rows.get("vidloader-pyav", {})
    if "clips_per_s" not in ours or not vs:
        return f"| {path.stem} | vidloader-pyav did not run: {ours} |"
    # The peers the headline counts: those that served every checked clip exactly (vidloader bench).
    peers = {n: r for n, r in rows.items() if not n.startswith("vidloader") and r.get("check") == "exact"}
    fastest = max(peers, key=lambda n: peers[n]["clips_per_s"])
    cheapest = min(peers, key=lambda n: peers[n]["cpu_s_per_clip"])
    steadiest = min(peers, key=lambda n: peers[n]["cpu_s_per_clip_steady"])
    others = ", ".join(f"{n} {1000 * r['cpu_s_per_clip']:.0f}" for n, r in peers.items())
    failed = [f"{n}: {why}" for n, why in rep.get("not_counted", {}).items()]
    checks = sorted({r["check"] for r in rows.values() if "check" in r})
    return (
        f"| {path.stem} | {cfg['workers']} | {ours['clips_per_s']:.2f} ({ours['clips_per_s_min']:.1f}-"
        f"{ours['clips_per_s_max']:.1f}) | {fastest} {peers[fastest]['clips_per_s']:.2f} | "
        f"{vs['median']:.2f}x ({', '.join(f'{x:.2f}' for x in vs['per_round'])}) | "
        f"{1000 * ours['cpu_s_per_clip']:.0f} | {cheapest} {1000 * peers[cheapest]['cpu_s_per_clip']:.0f} | "
        f"**{vs['cpu_median']:.2f}x** ({', '.join(f'{x:.2f}' for x in vs['cpu_per_round'])}) | "
        f"{1000 * ours['cpu_s_per_clip_steady']:.0f} vs {steadiest} "
        f"{1000 * peers[steadiest]['cpu_s_per_clip_steady']:.0f}: **{vs['cpu_steady_median']:.2f}x** "
        f"({', '.join(f'{x:.2f}' for x in vs['cpu_steady_per_round'])}) | "
        f"{ours['cpu_util']:.2f} / {peers[fastest]['cpu_util']:.2f} | {ours['peak_rss_mb']:.0f} / "
        f"{peers[cheapest]['peak_rss_mb']:.0f} | {others} | {'/'.join(checks)}"
        f"{'; ' + '; '.join(failed) if failed else ''} |"
    )


def main(paths: list[str]) -> None:
    print(
        "| run | workers | vidloader clips/s (range) | fastest peer clips/s | clips/s ratio, median (rounds) "
        "| vidloader CPU ms/clip | cheapest peer CPU ms/clip | CPU ratio, median (rounds) "
        "| steady state (second half of each run): CPU ms/clip, vidloader vs cheapest peer, ratio "
        "| cores used: vidloader / fastest peer | peak RSS MB: vidloader / cheapest peer "
        "| every peer's CPU ms/clip | checks |"
    )
    print("|---|---:|---:|---|---|---:|---|---|---|---|---|---|---|")
    for p in paths:
        print(row(Path(p)))


if __name__ == "__main__":
    main(sys.argv[1:])
