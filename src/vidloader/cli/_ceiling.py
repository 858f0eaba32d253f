"""`vidloader bench --ceiling`: raw sequential decode throughput of the workload's files, the hardware
limit each backend's frames/s is compared against.

Raw means every frame in file order, no seeking, no colour conversion, no resize, nothing kept:
- ``engine="dali"`` (the default with a GPU): a DALI reader pipeline decoding consecutive 32-frame
  sequences of every file on NVDEC, ``batch`` sequences in flight so every decode engine stays busy. The
  same code runs on DALI's CPU decoder (VP8/VP9/MJPEG), which is how the tests exercise it.
- ``engine="pyav"`` (the default without one): one single-threaded FFmpeg decoder per process, one
  process per core, all busy.
A loader that skips frames can deliver fewer frames/s than this even when it is perfectly efficient: a
16-frame clip at stride 2 decodes at least 31 frames (plus the GOP lead-in), so read the percentage as
"share of the decoder's time that became delivered frames".
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal

from .._errors import ConfigError
from .._validate import check_choice, check_int, check_positive_float
from ..backends import dali_missing
from ..dataset import VideoDataset
from ._peers import PeerUnavailable, require_dali_cpu_codecs

Engine = Literal["pyav", "dali"]
ENGINES: tuple[Engine, ...] = ("pyav", "dali")
_SEQUENCE = 32


def _pyav_worker(paths: list[tuple[str, int]], seconds: float) -> tuple[int, float]:
    """Decode the files in turn until ``seconds`` have passed; returns (frames, elapsed)."""
    import av

    frames, start = 0, time.perf_counter()
    while True:
        for path, stream_index in paths:
            with av.open(path) as c:
                stream: Any = c.streams[stream_index]
                stream.thread_type = (
                    "NONE"  # one core per decoder: processes, not codec threads, fill the box
                )
                for _ in c.decode(stream):
                    frames += 1
                    if time.perf_counter() - start >= seconds:
                        return frames, time.perf_counter() - start
            if time.perf_counter() - start >= seconds:  # files that yield no frame must not spin forever
                return frames, time.perf_counter() - start


def _pyav_ceiling(dataset: VideoDataset, processes: int, seconds: float) -> float:
    import multiprocessing as mp

    files = sorted({(dataset[i].path, dataset[i].stream_index) for i in range(len(dataset))})
    # Each process starts on a different file, so short workloads do not all hit the same file at once.
    jobs = [files[k % len(files) :] + files[: k % len(files)] for k in range(processes)]
    with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("spawn")) as pool:
        pool.submit(_pyav_worker, files[:1], 0.0).result()  # warm-up: spawn and import before timing
        results = list(pool.map(_pyav_worker, jobs, [seconds] * processes))
    return sum(f for f, _ in results) / max(max(t for _, t in results), 1e-9)


def _dali_ceiling(dataset: VideoDataset, device: str, batch: int, threads: int, seconds: float) -> float:
    import torch
    from nvidia.dali import fn, pipeline_def

    paths = sorted({dataset[i].path for i in range(len(dataset))})
    on_gpu = device == "cuda"

    device_id: Any = torch.cuda.current_device() if on_gpu else None  # None: a CPU-only pipeline

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=device_id, prefetch_queue_depth=2)
    def pipe() -> Any:
        return fn.experimental.readers.video(
            device="gpu" if on_gpu else "cpu",
            filenames=paths,
            sequence_length=_SEQUENCE,
            step=_SEQUENCE,
            pad_mode="none",
            random_shuffle=False,
            name="reader",
        )

    p = pipe()
    p.build()
    p.run()  # warm-up: the reader's index build and decoder creation are not decode throughput
    frames, start = 0, time.perf_counter()
    while True:
        (video,) = p.run()
        if on_gpu:
            torch.cuda.synchronize()
        frames += sum(int(video[k].shape()[0]) for k in range(len(video)))
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return frames / elapsed


def measure_ceiling(
    dataset: VideoDataset,
    *,
    engine: Engine | None = None,
    device: Literal["cpu", "cuda"] | None = None,
    processes: int | None = None,
    batch: int = 8,
    seconds: float = 10.0,
) -> dict[str, Any]:
    """Raw decode frames/s of the dataset's files; see the module docstring for what "raw" means.

    ``engine``/``device`` default to DALI on CUDA when a GPU is there, else PyAV on the CPU."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    check_choice("device", device, ("cpu", "cuda"))
    if engine is None:
        engine = "dali" if device == "cuda" else "pyav"
    check_choice("engine", engine, ENGINES)
    if engine == "pyav" and device != "cpu":
        raise ConfigError(f"engine='pyav' decodes on the CPU; got device={device!r}")
    processes = check_int("processes", processes or os.cpu_count() or 1, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    check_positive_float("seconds", seconds)
    if engine == "pyav":
        fps = _pyav_ceiling(dataset, processes, seconds)
        how = f"PyAV, {processes} processes x 1 single-threaded decoder, sequential, no conversion"
    else:
        import torch

        missing = dali_missing(torch.device(device))
        if missing:
            raise PeerUnavailable(missing)
        if device == "cpu":
            require_dali_cpu_codecs(dataset, range(len(dataset)))
        fps = _dali_ceiling(dataset, device, batch, processes, seconds)
        where = "NVDEC" if device == "cuda" else "DALI's CPU decoder"
        how = f"DALI reader on {where}, {batch} x {_SEQUENCE}-frame sequences in flight, sequential"
    return {"engine": engine, "device": device, "frames_per_s": fps, "how": how, "seconds": seconds}
