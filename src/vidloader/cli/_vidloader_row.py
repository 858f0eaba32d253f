"""The benchmark's vidloader rows: the real ``VideoLoader``, checked through a loader built like the
timed one, then timed on the same clip list as the peers."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset import VideoDataset
from ._measure import process_cpu_seconds, wait_until_quiet
from ._peer_base import PeerUnavailable, package_version
from ._peer_dali import require_dali_cpu_codecs
from ._peer_run import PeerJob, time_job

if TYPE_CHECKING:
    from ..loader import LoaderConfig

VIDLOADER_BACKENDS = ("vidloader-pyav", "vidloader-dali")


def run_vidloader(
    name: str, dataset: VideoDataset, job: PeerJob, config: LoaderConfig
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """(frames of the check clips, timing fields) of ``VideoLoader`` with ``config`` and the row's backend."""
    import torch

    from ..backends import dali_missing
    from ..loader import VideoLoader

    on_gpu = name == "vidloader-dali" and torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    backend = "dali" if name == "vidloader-dali" else "pyav"
    if name == "vidloader-dali":
        missing = dali_missing(device)
        if missing:
            raise PeerUnavailable(missing)
        if not on_gpu:
            # On a CPU box DALI's CPU decoder would hand H.264 files to the PyAV fallback, so the row
            # would time PyAV under DALI's name.
            require_dali_cpu_codecs(dataset, {c.video_index for c in job.plan})
    config = replace(config, backend=backend, device=device)
    loader = VideoLoader(dataset, config=config)
    try:
        if tuple(loader.clip_plan(0)[: len(job.plan)]) != job.plan:
            raise RuntimeError("vidloader's plan differs from the benchmark's clip list")
        got = _check_frames(dataset, job, config)
        started = _start_workers(loader)

        def make_iter() -> Any:
            loader.set_epoch(0)
            return iter(loader)

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        timing = time_job(make_iter, job, name)
    finally:
        loader.close()
    timing["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    timing["version"] = package_version("vidloader")
    timing["threads"] = getattr(loader.backend, "threads", None)
    timing["worker_type"] = config.worker_type if config.num_workers > 0 else None
    if started is not None:
        timing["worker_start_s"], timing["worker_start_cpu_s"] = started
    return got, timing


def _start_workers(loader: Any) -> tuple[float, float] | None:
    """Process workers started before the timed runs (one batch, not timed), as a training job starts them
    once for many epochs: (wall, CPU seconds) that took, spawn and imports included; None for threads,
    which start at once. The timed runs then reuse those workers, and their CPU counts with the row's."""
    cfg = loader.config
    if cfg.num_workers == 0 or cfg.worker_type != "process":
        return None
    t0, cpu0 = time.perf_counter(), process_cpu_seconds()
    loader.set_epoch(0)
    batches = iter(loader)
    try:
        next(batches)
    finally:
        batches.close()
    wait_until_quiet()
    return time.perf_counter() - t0, process_cpu_seconds() - cpu0


def _check_frames(dataset: VideoDataset, job: PeerJob, config: LoaderConfig) -> list[np.ndarray]:
    """The check clips' frames at full size, read through a loader like the timed one (same backend and
    path), so the check covers what the benchmark times, batch buffer included. Each is that loader's
    pass resumed at the clip's place in the plan (batches of one clip), so the clips in between are not
    decoded."""
    from ..loader import VideoLoader

    # One clip per batch: at full size, clips of files with different sizes make no single batch. Process
    # workers hand clips over through shared batch memory, so their check goes through one of them.
    processes = config.num_workers > 0 and config.worker_type == "process"
    workers = {"num_workers": 1} if processes else {"num_workers": 0, "worker_type": "thread"}
    check = VideoLoader(dataset, config=replace(config, resize=None, batch_size=1, **workers))
    try:
        if tuple(check.clip_plan(0)[: len(job.plan)]) != job.plan:
            raise RuntimeError("vidloader's check plan differs from the benchmark's clip list")
        got = []
        for clip in job.check_clips:
            state = {**check.state_dict(), "epoch": 0, "batches_yielded": job.plan.index(clip)}
            check.load_state_dict(state)
            batches = iter(check)
            got.append(next(batches).video[0].cpu().numpy())
            batches.close()  # type: ignore[attr-defined]  # the pass is a generator
    finally:
        check.close()
    return got
