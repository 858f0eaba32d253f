"""Timing a backend: batches per second over repeated runs, CPU use and peak resident memory."""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


class _Usage:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.cpu = process_cpu_seconds()

    def cpu_seconds(self) -> float:
        return process_cpu_seconds() - self.cpu

    def cpu_util(self) -> float:
        return self.cpu_seconds() / max(time.perf_counter() - self.t, 1e-9)


def _rss_mb() -> float | None:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class RSSPeak:
    """Peak resident memory while one backend runs, sampled on a thread: ru_maxrss alone is the peak of the
    whole process so far, which would charge every backend with the largest one before it."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak = _rss_mb() or 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, _rss_mb() or 0.0)

    def __enter__(self) -> RSSPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb() or 0.0)
        if self.peak == 0.0:  # no way to read the current RSS here: fall back to the process peak
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_batches(
    make_iter: Callable[[], Iterator[Any]], n_batches: int, seconds: float | None
) -> tuple[list[float], list[float]]:
    """Per-batch latencies, the first (warm-up) batch included at index 0, and the process's CPU seconds
    when the run started and after each batch (one more entry than latencies).

    Stops after ``n_batches`` or, with ``seconds``, once that much wall time has passed (two batches at
    least, so there is always one steady batch)."""
    lat: list[float] = []
    cpu = [process_cpu_seconds()]
    start = t = time.perf_counter()
    it = make_iter()
    try:
        for k, _ in enumerate(it):
            now = time.perf_counter()
            cpu.append(process_cpu_seconds())
            lat.append(now - t)
            t = now
            if k + 1 >= n_batches or (seconds is not None and k >= 1 and now - start >= seconds):
                break
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # an unfinished loader pass must stop its prefetch thread before the next run
        # A clip a worker was decoding when the run stopped is finished on that worker after close(): it is
        # this run's CPU, not the next row's, so the run ends when the process has gone quiet.
        wait_until_quiet()
    return lat, cpu


def wait_until_quiet(*, window: float = 0.05, busy: float = 0.2, limit: float = 10.0) -> float:
    """Wait until this process's threads use under ``busy`` of one core over a ``window`` of wall time
    (or ``limit`` seconds have passed).

    Args:
        window: seconds per sample.
        busy: the CPU share (of one core) below which the process counts as quiet.
        limit: the most seconds to wait.

    Returns:
        The seconds waited.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        cpu0, t0 = process_cpu_seconds(), time.perf_counter()
        time.sleep(window)
        if process_cpu_seconds() - cpu0 < busy * (time.perf_counter() - t0):
            break
    return time.perf_counter() - start


def process_cpu_seconds() -> float:
    """User + system CPU seconds so far of every thread of this process, of its live child processes (a
    loader's process decode workers) and of the children it has reaped: a row whose work runs in other
    processes is charged that work too (getrusage; ``/proc`` for the live children)."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + _live_children_cpu()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _live_children_cpu() -> float:
    """CPU seconds of this process's live children, listed from the children files of its own threads
    rather than by scanning every process (psutil's ``children()`` costs ~1 ms a call, which a per-batch
    sample of a small clip's row would pay)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0  # no /proc: only this process and its reaped children are counted
    total = 0.0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids = f.read().split()
        except OSError:
            continue  # a thread that ended while listed
        total += sum(_child_cpu(pid) for pid in pids)
    return total


def _child_cpu(pid: str) -> float:
    """A live child's CPU seconds: the scheduler's runtime of each of its threads (``sched``, nanoseconds)
    where the kernel shows it, else ``stat``'s user + system time, which counts in clock ticks (10 ms per
    child: a 4-clip batch of 96x64 clips is ~12 ms). 0 once it is gone: it is then counted with the reaped
    children when waited for. Threads a live child has ended are left out until then (decode workers do
    their work on their main thread)."""
    try:
        runtimes = [
            _sched_runtime(f"/proc/{pid}/task/{tid}/sched") for tid in os.listdir(f"/proc/{pid}/task")
        ]
        if runtimes and None not in runtimes:
            return sum(r for r in runtimes if r is not None)
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _sched_runtime(path: str) -> float | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("se.sum_exec_runtime"):
                    return float(line.split(":", 1)[1]) / 1000.0  # milliseconds
    except OSError:
        return 0.0  # the thread ended while listed
    return None


def steady_cpu_per_clip(cpu: list[float], batch_size: int) -> float:
    """CPU seconds per clip over the second half of a run's batches: pools started, files opened and
    buffers allocated by then, as in the long runs of training; runs of under 4 batches use every batch
    after the first."""
    n = len(cpu) - 1
    h = n // 2 if n >= 4 else min(1, n - 1)
    return (cpu[-1] - cpu[h]) / max((n - h) * batch_size, 1)


def measure(
    make_iter: Callable[[], Iterator[Any]],
    *,
    n_batches: int,
    batch_size: int,
    frames: int,
    repeats: int,
    seconds: float | None,
    desc: str,
    progress: bool,
) -> dict[str, Any]:
    """Run ``make_iter()`` ``repeats`` times; the row's timing fields (see docs/bench.md, Metrics)."""
    from tqdm import tqdm

    rates, p50, p95, firsts, utils, costs, steady_costs = [], [], [], [], [], [], []
    with RSSPeak() as rss:
        for _ in tqdm(range(repeats), desc=desc, disable=not progress, leave=False):
            usage = _Usage()
            lat, cpu = time_batches(make_iter, n_batches, seconds)
            # The first batch (warm-up: pool start, caches, pipeline build) is reported on its own as the
            # time to first batch and left out of the rate and the percentiles.
            steady = lat[1:]
            rates.append(len(steady) * batch_size / max(sum(steady), 1e-9))
            p50.append(float(np.percentile(steady, 50)))
            p95.append(float(np.percentile(steady, 95)))
            firsts.append(lat[0])
            utils.append(usage.cpu_util())
            # CPU seconds (all of the process's threads) per delivered clip, warm-up batch included: what
            # a clip costs, whatever share of the cores other processes left this one.
            costs.append(usage.cpu_seconds() / max(len(lat) * batch_size, 1))
            steady_costs.append(steady_cpu_per_clip(cpu, batch_size))
    return dict(
        clips_per_s=statistics.median(rates),
        clips_per_s_min=min(rates),
        clips_per_s_max=max(rates),
        frames_per_s=statistics.median(rates) * frames,
        p50_batch_s=statistics.median(p50),
        p95_batch_s=statistics.median(p95),
        first_batch_s=statistics.median(firsts),
        cpu_util=statistics.median(utils),
        cpu_s_per_clip=statistics.median(costs),
        cpu_s_per_clip_steady=statistics.median(steady_costs),
        peak_rss_mb=round(rss.peak, 1),
    )


def merge_rounds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from a backend's interleaved rounds (one timed run each): medians of the per-round
    figures, the rate's min and max over rounds, the largest peak memory; a round that did not run
    (``skipped``/``error``) is the row."""
    failed = [r for r in rows if "clips_per_s" not in r]
    if failed or not rows:
        return failed[0] if failed else {"error": "no round ran"}
    med = {k: statistics.median(r[k] for r in rows) for k in _MEDIAN_FIELDS}
    gpu = [r["peak_gpu_mb"] for r in rows if r.get("peak_gpu_mb") is not None]
    return {
        **rows[0],
        **med,
        "clips_per_s_min": min(r["clips_per_s"] for r in rows),
        "clips_per_s_max": max(r["clips_per_s"] for r in rows),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        **({"peak_gpu_mb": max(gpu)} if gpu else {}),
        "rounds": len(rows),
    }


_MEDIAN_FIELDS = (
    "clips_per_s",
    "frames_per_s",
    "p50_batch_s",
    "p95_batch_s",
    "first_batch_s",
    "cpu_util",
    "cpu_s_per_clip",
    "cpu_s_per_clip_steady",
)
