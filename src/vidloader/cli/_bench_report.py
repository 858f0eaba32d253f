"""`vidloader bench`'s report as text (the table it prints) and as a bar chart (``--plot``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._ffmpeg_warnings import format_warnings
from ._vidloader_row import VIDLOADER_BACKENDS
from ._vs_peers import format_ratios


def format_table(report: dict[str, Any]) -> str:
    rows = report["backends"]
    base = rows.get("vidloader-pyav", {}).get("clips_per_s")
    ceiling = (report.get("ceiling") or {}).get("frames_per_s")
    lines = [
        f"{'backend':16s} {'clips/s':>9s} {'range':>15s} {'frames/s':>9s} {'p50 s':>7s} {'p95 s':>7s} "
        f"{'first s':>7s} {'cpu':>5s} {'cpu ms/clip':>11s} {'steady':>6s} {'rss MB':>7s} {'vs vl-pyav':>10s} {'ceiling':>7s}  frames"
    ]
    for name, r in rows.items():
        if "clips_per_s" not in r:
            why = f"skipped: {r['skipped']}" if "skipped" in r else f"error: {r.get('error')}"
            lines.append(f"{name:16s} {why}")
            continue
        ratio = f"{r['clips_per_s'] / base:.2f}x" if base else "-"
        share = f"{100 * r['frames_per_s'] / ceiling:.0f}%" if ceiling else "-"
        rng = f"{r['clips_per_s_min']:.1f}-{r['clips_per_s_max']:.1f}"
        check = r["check"]
        if "why" in r:
            check += f" ({r['why']})"
        elif r.get("basis") == "luma":
            check += f" on luma (mad {r['luma_mean_abs_diff']}; chroma upsampling differs: rgb mad {r['mean_abs_diff']})"
        elif check != "exact":
            check += f" (mad {r['mean_abs_diff']}, {r['psnr_db']} dB)"
        lines.append(
            f"{name:16s} {r['clips_per_s']:9.2f} {rng:>15s} {r['frames_per_s']:9.1f} {r['p50_batch_s']:7.3f} "
            f"{r['p95_batch_s']:7.3f} {r['first_batch_s']:7.3f} {r['cpu_util']:5.2f} "
            f"{1000 * r['cpu_s_per_clip']:11.1f} {1000 * r['cpu_s_per_clip_steady']:6.1f} {r['peak_rss_mb']:7.0f} {ratio:>10s} "
            f"{share:>7s}  {check}"
        )
    return "\n".join(lines + _summary_lines(report))


def _summary_lines(report: dict[str, Any]) -> list[str]:
    """The lines under the table: the ratios to the best exact peer, the decode floor, the ceiling."""
    lines: list[str] = []
    rows = report["backends"]
    if "clips_per_s" in rows.get("vidloader-pyav", {}) and any(n not in VIDLOADER_BACKENDS for n in rows):
        lines += format_ratios(report.get("vs_best_peer"), report.get("not_counted", {}))
    lines += format_warnings(report.get("ffmpeg_warnings", {}))
    for name in VIDLOADER_BACKENDS:
        r = rows.get(name, {})
        if "worker_start_s" in r:
            lines.append(
                f"{name}: process workers, started before the timed runs in {r['worker_start_s']:.1f} s "
                f"({r['worker_start_cpu_s']:.1f} s of CPU); the row's CPU counts the workers'"
            )
    prof = report.get("profile")
    if prof:
        lines.append(
            f"decode floor (vidloader-pyav, profiled run): {prof['floor_ms_per_clip']:.1f} of "
            f"{prof['cpu_ms_per_clip']:.1f} ms CPU per clip ({100 * prof['floor_share']:.0f}%)"
            if "floor_ms_per_clip" in prof
            else f"decode floor: profiled run failed: {prof.get('error')}"
        )
    ceil = report.get("ceiling")
    if ceil:
        if "frames_per_s" in ceil:
            lines.append(f"ceiling: {ceil['frames_per_s']:.1f} raw decoded frames/s ({ceil['how']})")
        else:
            lines.append(
                f"ceiling: {'skipped' if 'skipped' in ceil else 'failed'}: {ceil.get('skipped', ceil.get('error'))}"
            )
    return lines


def plot(report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, r) for n, r in report["backends"].items() if "clips_per_s" in r]
    fig, ax = plt.subplots(figsize=(1.6 * max(len(rows), 2) + 2, 4))
    names = [n for n, _ in rows]
    med = [r["clips_per_s"] for _, r in rows]
    err = [
        [m - r["clips_per_s_min"] for m, (_, r) in zip(med, rows, strict=True)],
        [r["clips_per_s_max"] - m for m, (_, r) in zip(med, rows, strict=True)],
    ]
    colors = ["tab:blue" if n.startswith("vidloader") else "tab:gray" for n in names]
    ax.bar(names, med, yerr=err, capsize=4, color=colors)
    ax.set_ylabel("clips/s (median, min-max)")
    cfg = report["config"]
    ax.set_title(
        f"{cfg['frames']} frames, stride {cfg['stride']}, batch {cfg['batch_size']}, {cfg['workers']} workers"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
