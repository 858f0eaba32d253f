"""The benchmark's headline: vidloader-pyav against the best peer, counting only the peers that served every
checked clip exactly (a peer that failed, was skipped, or gave other frames or colours is named, not
counted: a ratio against the one peer that survived says nothing about the others)."""

from __future__ import annotations

import statistics
from typing import Any

from ._vidloader_row import VIDLOADER_BACKENDS


def counted(row: dict[str, Any]) -> bool:
    """Whether a peer's round counts: it ran and its check clips are the reference frames, bit for bit."""
    return "clips_per_s" in row and row.get("check") == "exact"


def not_counted(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each peer left out of the headline, and why, from the merged rows.

    Args:
        results: backend name -> its merged row.

    Returns:
        Peer name -> reason.
    """
    why: dict[str, str] = {}
    for name, row in results.items():
        if name in VIDLOADER_BACKENDS or counted(row):
            continue
        if "clips_per_s" not in row:
            why[name] = f"skipped: {row['skipped']}" if "skipped" in row else f"error: {row.get('error')}"
        else:
            detail = row.get("why") or row.get("basis", "")
            why[name] = f"check {row.get('check')}" + (f" ({detail})" if detail else "")
    return why


def ratios(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """vidloader-pyav against the fastest counted peer of each round (both measured in that round): clips/s
    over clips/s, and the peer's CPU seconds per clip over ours (``cpu_per_round``: the figure that holds
    when other processes take a varying share of the cores, and the throughput ratio once all cores are
    busy). None when vidloader-pyav or every peer did not count in any round.

    Args:
        rounds: backend name -> its row of every round.

    Returns:
        The ratios per round, their medians, and the peers they were taken against.
    """
    ours = rounds.get("vidloader-pyav", [])
    peers = {n: rs for n, rs in rounds.items() if n not in VIDLOADER_BACKENDS}
    per_round, best, cpu, cheapest, steady, steadiest = [], [], [], [], [], []
    for r, row in enumerate(ours):
        timed = {n: rs[r] for n, rs in peers.items() if r < len(rs) and counted(rs[r])}
        if "clips_per_s" not in row or not timed:
            continue
        name = max(timed, key=lambda n: timed[n]["clips_per_s"])
        per_round.append(row["clips_per_s"] / timed[name]["clips_per_s"])
        best.append(name)
        low = min(timed, key=lambda n: timed[n]["cpu_s_per_clip"])
        cpu.append(timed[low]["cpu_s_per_clip"] / max(row["cpu_s_per_clip"], 1e-12))
        cheapest.append(low)
        low = min(timed, key=lambda n: timed[n]["cpu_s_per_clip_steady"])
        steady.append(timed[low]["cpu_s_per_clip_steady"] / max(row["cpu_s_per_clip_steady"], 1e-12))
        steadiest.append(low)
    if not per_round:
        return None
    return {
        "median": statistics.median(per_round),
        "per_round": per_round,
        "best_peer_per_round": best,
        "cpu_median": statistics.median(cpu),
        "cpu_per_round": cpu,
        "cheapest_peer_per_round": cheapest,
        "cpu_steady_median": statistics.median(steady),
        "cpu_steady_per_round": steady,
        "cheapest_steady_peer_per_round": steadiest,
    }


def format_ratios(vs: dict[str, Any] | None, left_out: dict[str, str]) -> list[str]:
    """The headline lines of the table: the ratios (or that there is none), and the peers not counted.

    Args:
        vs: ``ratios``' result.
        left_out: ``not_counted``'s result.

    Returns:
        The lines.
    """
    lines = []
    if vs:
        each = ", ".join(
            f"{x:.2f}x ({n})" for x, n in zip(vs["per_round"], vs["best_peer_per_round"], strict=True)
        )
        lines.append(f"vidloader-pyav vs best peer: {vs['median']:.2f}x (median of rounds: {each})")
        each = ", ".join(
            f"{x:.2f}x ({n})" for x, n in zip(vs["cpu_per_round"], vs["cheapest_peer_per_round"], strict=True)
        )
        lines.append(
            f"CPU per clip, cheapest peer / vidloader-pyav: {vs['cpu_median']:.2f}x (rounds: {each})"
        )
        each = ", ".join(
            f"{x:.2f}x ({n})"
            for x, n in zip(vs["cpu_steady_per_round"], vs["cheapest_steady_peer_per_round"], strict=True)
        )
        lines.append(
            "the same over each run's second half (steady state): "
            f"{vs['cpu_steady_median']:.2f}x (rounds: {each})"
        )
    else:
        lines.append("vidloader-pyav vs best peer: no ratio (no peer served every checked clip exactly)")
    if left_out:
        # The rows above say why in full; here what kind of reason it was.
        named = ", ".join(f"{n} ({why.split(':')[0].split(' (')[0]})" for n, why in left_out.items())
        lines.append(f"peers not counted (only those that served every checked clip exactly are): {named}")
    return lines
