"""Where a PyAV clip decode spends its time, when ``VIDLOADER_PROFILE=1`` is set: an opt-in timing hook.

The backend calls ``clip_profile()`` once per clip and ``lap(stage)`` after each step; a lap charges the
time since the previous lap to its stage, so the stages add up to the clip's whole decode time. Without the
variable ``clip_profile()`` returns a no-op whose ``lap`` does nothing (no clock read). Totals are per
process (thread workers share them); ``profile_totals()`` reads them, ``reset_profile()`` clears them.

``profiling()`` turns it on in code, for a block.

Stages: ``open`` (open the file, read its header), ``seek`` (seek to the keyframe, flush the decoder),
``demux`` (read the next packet), ``decode_preroll`` (decoder calls on packets before the clip's first
frame: the lead-in from the keyframe), ``decode_clip`` (decoder calls from the clip's first frame on,
the frames between strided ones included), ``convert`` (swscale: YUV to RGB, plus the resize when one
is asked), ``copy`` (frame data into numpy and into the output slot), ``close`` (close the file and free
the decoder), ``python`` (the rest: the backend's own Python between those calls).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROFILE_ENV = "VIDLOADER_PROFILE"
STAGES = ("open", "seek", "demux", "decode_preroll", "decode_clip", "convert", "copy", "close", "python")
# The decode floor: the decoder's calls on the frames a clip needs (its references from the keyframe on;
# non-reference frames nobody asked for are dropped), which any exact loader on FFmpeg's decoders pays.
FLOOR_STAGES = ("decode_preroll", "decode_clip")

_lock = threading.Lock()
_totals: dict[str, float] = dict.fromkeys(STAGES, 0.0)
_cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
_counts = {"clips": 0, "frames_decoded": 0, "frames_kept": 0}


class _NoProfile:
    def lap(self, stage: str) -> None:
        pass

    def frame(self) -> None:
        pass

    def done(self, kept: int) -> None:
        pass


class _ClipProfile:
    def __init__(self) -> None:
        self._t, self._c = time.perf_counter(), time.thread_time()
        self._acc: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._acc_cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._decoded = 0

    def lap(self, stage: str) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self._acc[stage] += now - self._t
        self._acc_cpu[stage] += cpu - self._c
        self._t, self._c = now, cpu

    def frame(self) -> None:
        self._decoded += 1

    def done(self, kept: int) -> None:
        self.lap("python")
        with _lock:
            for k, v in self._acc.items():
                _totals[k] += v
                _cpu[k] += self._acc_cpu[k]
            _counts["clips"] += 1
            _counts["frames_decoded"] += self._decoded
            _counts["frames_kept"] += kept


_NOOP = _NoProfile()


_forced = 0  # open profiling() blocks


def clip_profile() -> Any:
    """A per-clip timer when ``VIDLOADER_PROFILE`` is set to a non-empty value other than ``0``, or inside
    ``profiling()``."""
    if _forced:
        return _ClipProfile()
    flag = os.environ.get(PROFILE_ENV, "")
    return _ClipProfile() if flag not in ("", "0") else _NOOP


@contextmanager
def profiling() -> Iterator[None]:
    """Profile every clip this process decodes (on any thread) while the block runs, whatever
    ``VIDLOADER_PROFILE`` says; ``vidloader bench --profile`` uses it for one extra, profiled run."""
    global _forced
    with _lock:
        _forced += 1
    try:
        yield
    finally:
        with _lock:
            _forced -= 1


def profile_totals() -> dict[str, Any]:
    """Seconds per stage summed over every profiled clip of this process: wall (``seconds``) and the
    decoding thread's own CPU time (``cpu_seconds``: without time other threads and processes took from
    it, and without threads FFmpeg runs for it, e.g. swscale's), plus clip and frame counts."""
    with _lock:
        return {"seconds": dict(_totals), "cpu_seconds": dict(_cpu), **_counts}


def reset_profile() -> None:
    """Zero this process's profile totals and counts (``profile_totals``)."""
    with _lock:
        for k in _totals:
            _totals[k] = 0.0
            _cpu[k] = 0.0
        for k in _counts:
            _counts[k] = 0
