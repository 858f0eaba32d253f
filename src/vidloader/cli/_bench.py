"""`vidloader bench`: the same clip list through vidloader and its peers, checked, timed, tabulated."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .._validate import check_int
from ..dataset import VideoDataset
from ._bench_profile import bench_profile
from ._bench_setup import bench_settings, prepare
from ._check import worst_check
from ._ffmpeg_warnings import counted_ffmpeg_warnings
from ._measure import merge_rounds
from ._peer_base import package_version
from ._peer_run import PeerJob
from ._peers import PEERS, PeerUnavailable
from ._vidloader_row import VIDLOADER_BACKENDS, run_vidloader
from ._vs_peers import not_counted, ratios

if TYPE_CHECKING:
    from ..loader import LoaderConfig

# Python distributions whose versions every report records (None when not installed).
_VERSIONS = {
    "opencv": ("opencv-python", "opencv-python-headless"),
    "dali": ("nvidia-dali-cuda130", "nvidia-dali-cuda120"),
    "decord": ("decord2", "decord"),
    "torchcodec": "torchcodec",
    "spdl": "spdl-io",
}


def machine_info() -> dict[str, Any]:
    import av
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "av": av.__version__,
        # 1, 5 and 15-minute load average when the report is made: how much else ran on the cores.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        cpu = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = cpu[0].split(":", 1)[1].strip() if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    from ._ffmpeg_shim import ffmpeg_version

    info["ffmpeg"] = ffmpeg_version()  # PyAV's, which torchcodec and SPDL load through the shim
    for key, dist in _VERSIONS.items():
        info[key] = package_version(dist)
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def run_bench(
    dataset: VideoDataset,
    *,
    backends: Sequence[str],
    repeats: int = 3,
    progress: bool = True,
    profile: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Check, then time each backend on one clip list; the report is what ``--json`` writes.

    Every backend runs once per round, in the given order, over the whole list (or for at most
    ``seconds``), for ``repeats`` rounds; ``vs_best_peer`` holds vidloader-pyav's ratio to the fastest
    peer of each round among those that served every checked clip exactly (``not_counted`` names the
    others, and why). A backend that cannot run here gets ``{"skipped": reason}``; one that fails gets
    ``{"error": ...}``; the others still run. FFmpeg warnings said once per conversion are counted in
    ``ffmpeg_warnings``, not printed.

    Args:
        dataset: the videos.
        backends: vidloader rows and peers, by name.
        repeats: rounds.
        progress: show a progress bar.
        profile: after the rounds, one more vidloader-pyav run with the decode profile on: the report's
            ``profile`` (``bench_profile``: CPU per clip by stage, the decode floor and its share).
        **options: the workload: ``frames``, ``stride``, ``batch_size``, ``resize``, ``workers``,
            ``worker_type``, ``clips``, ``sampling``, ``clips_per_video``, ``seconds``, ``seed`` (see
            ``bench_settings``).

    Returns:
        The report.

    Raises:
        ConfigError: an unknown backend, a bad option, or ``profile`` with process workers.
    """
    unknown = [b for b in backends if b not in (*VIDLOADER_BACKENDS, *PEERS)]
    if unknown:
        raise ConfigError(
            f"unknown backend(s) {unknown}; choose from {sorted((*VIDLOADER_BACKENDS, *PEERS))}"
        )
    check_int("repeats", repeats, minimum=1)
    settings = bench_settings(dataset, **options)
    if profile and settings.loader.num_workers > 0 and settings.loader.worker_type == "process":
        # Said now, not after the timed rounds: the stage totals would stay in the worker processes.
        raise ConfigError(
            "--profile needs thread workers: process workers keep their stage totals to themselves"
        )
    with counted_ffmpeg_warnings() as warned:
        job, refs, config = prepare(dataset, settings, progress=progress)
        rounds = _run_rounds(backends, repeats, dataset, job, refs, config)
    results = {n: merge_rounds(rs) for n, rs in rounds.items()}
    floor = None
    if profile:
        ours = results.get("vidloader-pyav", {})
        floor = bench_profile(dataset, config, batches=job.n_batches, timed=ours)
    return {
        "machine": machine_info(),
        "config": settings.config(clips=len(job.plan), repeats=repeats, videos=len(dataset)),
        "backends": results,
        "vs_best_peer": ratios(rounds),
        "not_counted": not_counted(results),
        "ffmpeg_warnings": dict(warned),
        "profile": floor,
        "ceiling": None,
    }


def _run_rounds(
    backends: Sequence[str],
    repeats: int,
    dataset: VideoDataset,
    job: PeerJob,
    refs: Sequence[Any],
    config: LoaderConfig,
) -> dict[str, list[dict[str, Any]]]:
    """Each backend's row of every round; a backend skipped or failed in one round is not run again."""
    # Repeats are interleaved rounds (every backend once per round), so a machine whose speed drifts
    # (other users, thermal) shifts every row alike, and each round gives its own ratio.
    rounds: dict[str, list[dict[str, Any]]] = {n: [] for n in backends}
    for _ in range(repeats):
        for name in backends:
            if rounds[name] and "clips_per_s" not in rounds[name][-1]:
                continue  # skipped or failed: not retried
            rounds[name].append(_row(name, dataset, job, refs, config))
    return rounds


def _row(
    name: str,
    dataset: VideoDataset,
    job: PeerJob,
    refs: Sequence[Any],
    config: LoaderConfig,
) -> dict[str, Any]:
    """One backend's row: its check against ``refs``, then its timing; ``skipped``/``error`` instead when
    it cannot run or fails (the other rows still run)."""
    try:
        if name in VIDLOADER_BACKENDS:
            got, timing = run_vidloader(name, dataset, job, config)
        elif getattr(PEERS[name], "isolated", False):
            from ._isolated import run_isolated

            budget = 300 + job.repeats * (job.seconds or 600)
            got, timing = run_isolated(PEERS[name], dataset, job, timeout=budget)
            if not got:
                return timing
        else:
            from ._peer_run import run_peer

            got, timing = run_peer(PEERS[name](), dataset, job)
        return {**worst_check(got, refs), **timing}
    except PeerUnavailable as exc:
        return {"skipped": str(exc)}
    except Exception as exc:  # a failing peer is reported, the others still run
        return {"error": f"{type(exc).__name__}: {exc}"}


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, default=str))
