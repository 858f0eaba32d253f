"""The decode floor as a figure: where vidloader-pyav's CPU per clip goes (the PyAV backend's stages, see
``vidloader/backends/_profile.py``) and how much of it is the decode floor, the decoder's calls on the
frames a clip needs, which any exact loader on FFmpeg's decoders pays (``FLOOR_STAGES``)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from ..backends import FLOOR_STAGES, STAGES, profile_totals, profiling, reset_profile
from ..dataset import VideoDataset
from ._measure import process_cpu_seconds

if TYPE_CHECKING:
    from ..loader import LoaderConfig, VideoLoader


def profile_loader(loader: VideoLoader, *, batches: int, warmup: int) -> dict[str, Any]:
    """Run a PyAV ``loader`` with the backend's profile on: ``warmup`` batches first (pool start, first
    reads, batch buffers allocated once), then up to ``batches`` profiled ones.

    Args:
        loader: a VideoLoader on the PyAV backend, with thread workers (or none): the profile's totals
            are this process's.
        batches: batches to profile.
        warmup: batches to run first, not profiled.

    Returns:
        ``floor_figures`` of the profiled batches.

    Raises:
        ConfigError: the loader decodes in worker processes.
    """
    cfg = loader.config
    if cfg.num_workers > 0 and cfg.worker_type == "process":
        raise ConfigError("profiling needs worker_type='thread' (process workers keep their own totals)")
    with profiling():
        it = iter(loader)
        try:
            for _ in range(warmup):
                next(it)
            reset_profile()
            cpu0, t0 = process_cpu_seconds(), time.perf_counter()
            for k, _ in enumerate(it):
                if k + 1 >= batches:
                    break
            cpu, wall = process_cpu_seconds() - cpu0, time.perf_counter() - t0
            totals = profile_totals()
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # stop the pass's prefetch before the next run
    return floor_figures(totals, cpu_seconds=cpu, wall_seconds=wall, workers=cfg.num_workers)


def floor_figures(
    totals: dict[str, Any], *, cpu_seconds: float, wall_seconds: float, workers: int
) -> dict[str, Any]:
    """Per-clip figures from the profile's ``totals`` and the process CPU and wall time they took.

    The clips are those whose decode finished while profiling; process CPU over the same window is
    divided by the same count (clips in flight at either end of the window roughly cancel).

    Args:
        totals: ``profile_totals()``.
        cpu_seconds: process CPU (every thread) over the window.
        wall_seconds: the window's wall time.
        workers: decode workers (0: inline), for the waiting time.

    Returns:
        ``cpu_ms_per_clip`` (process), ``floor_ms_per_clip``, ``floor_share`` (floor / process CPU),
        ``in_clips_ms_per_clip`` (the stages' thread CPU), ``stages_cpu_ms_per_clip`` and
        ``stages_wall_ms_per_clip`` (per stage), ``waiting_ms_per_clip`` (workers x wall - wall in
        clips), frames decoded and kept per clip, ``clips``, ``workers``, ``wall_s``.
    """
    n = max(totals["clips"], 1)
    cpu = {s: 1000 * totals["cpu_seconds"][s] / n for s in STAGES}
    wall = {s: 1000 * totals["seconds"][s] / n for s in STAGES}
    floor = sum(cpu[s] for s in FLOOR_STAGES)
    cpu_ms = 1000 * cpu_seconds / n
    return {
        "clips": totals["clips"],
        "workers": workers,
        "wall_s": wall_seconds,
        "cpu_ms_per_clip": cpu_ms,
        "in_clips_ms_per_clip": sum(cpu.values()),
        "floor_ms_per_clip": floor,
        "floor_share": floor / max(cpu_ms, 1e-12),
        "stages_cpu_ms_per_clip": cpu,
        "stages_wall_ms_per_clip": wall,
        "waiting_ms_per_clip": max(max(workers, 1) * 1000 * wall_seconds / n - sum(wall.values()), 0.0),
        "frames_decoded_per_clip": totals["frames_decoded"] / n,
        "frames_kept_per_clip": totals["frames_kept"] / n,
    }


def profile_vidloader(dataset: VideoDataset, config: LoaderConfig, *, batches: int) -> dict[str, Any]:
    """``vidloader bench --profile``: one extra run of the vidloader-pyav row's loader (its config and
    clip plan) with the profile on; the first batch is the warm-up.

    Args:
        dataset: the videos.
        config: the vidloader rows' loader config.
        batches: the run's batches, warm-up included.

    Returns:
        ``floor_figures`` of the profiled batches.
    """
    import torch

    from ..loader import VideoLoader

    loader = VideoLoader(dataset, config=replace(config, backend="pyav", device=torch.device("cpu")))
    try:
        return profile_loader(loader, batches=max(batches - 1, 1), warmup=1)
    finally:
        loader.close()


def bench_profile(
    dataset: VideoDataset, config: LoaderConfig, *, batches: int, timed: dict[str, Any]
) -> dict[str, Any]:
    """The report's ``profile``: ``profile_vidloader`` plus ``floor_share_of_timed_cpu``, the floor over
    the timed vidloader-pyav row's CPU per clip (runs without the profile's clock reads); an ``error``
    instead when the profiled run fails (the report is still written)."""
    try:
        fig = profile_vidloader(dataset, config, batches=batches)
    except Exception as exc:  # an extra figure: its failure is reported, the table still printed
        return {"error": f"{type(exc).__name__}: {exc}"}
    if "cpu_s_per_clip" in timed:
        fig["floor_share_of_timed_cpu"] = fig["floor_ms_per_clip"] / max(
            1000 * timed["cpu_s_per_clip"], 1e-12
        )
    return fig


def format_profile(name: str, fig: dict[str, Any]) -> str:
    """A markdown table of ``floor_figures``: each stage's wall and thread CPU per clip, then the floor."""
    n, wall = fig["clips"], fig["wall_s"]
    lines = [
        f"{name}, {fig['workers']} worker(s): {n} clips in {wall:.2f} s, "
        f"{fig['frames_decoded_per_clip']:.0f} frames decoded and {fig['frames_kept_per_clip']:.0f} kept per clip",
        "| stage | wall ms per clip | thread CPU ms per clip |",
        "|---|---:|---:|",
    ]
    for s in STAGES:
        lines.append(
            f"| {s} | {fig['stages_wall_ms_per_clip'][s]:.2f} | {fig['stages_cpu_ms_per_clip'][s]:.2f} |"
        )
    lines += [
        f"| waiting | {fig['waiting_ms_per_clip']:.2f} | |",
        f"| **in clips** | | {fig['in_clips_ms_per_clip']:.2f} |",
        f"| process CPU per clip | | {fig['cpu_ms_per_clip']:.2f} |",
        f"| **decode floor** ({' + '.join(FLOOR_STAGES)}) | | {fig['floor_ms_per_clip']:.2f} "
        f"({100 * fig['floor_share']:.0f}% of process CPU) |",
    ]
    return "\n".join(lines)
