"""Check and time one peer on the benchmark's clip list, in this process (the child of ``_isolated``
calls the same function)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..sampling import ClipSpec
from ._measure import measure
from ._peer_base import package_version


@dataclass(frozen=True)
class PeerJob:
    """What every peer row is given: the same clips, batches, size, workers and codec threads."""

    check_clips: tuple[ClipSpec, ...]
    plan: tuple[ClipSpec, ...]
    batch_size: int
    n_batches: int
    resize: tuple[int, int] | None
    workers: int
    threads: int
    frames: int
    repeats: int
    seconds: float | None
    progress: bool


def peer_meta(peer: Any, job: PeerJob) -> dict[str, Any]:
    """The row's version and thread fields."""
    meta: dict[str, Any] = {"version": package_version(getattr(peer, "package", None))}
    if hasattr(peer, "threads"):
        meta["threads"] = peer.threads
    return meta


def run_peer(peer: Any, dataset: Any, job: PeerJob) -> tuple[list[np.ndarray], dict[str, Any]]:
    """(frames of the check clips at full size, timing fields); ``dataset[i]`` gives a VideoInfo."""
    if hasattr(peer, "threads"):
        peer.threads = job.threads
    if hasattr(peer, "batches"):
        first = next(
            iter(
                peer.batches(
                    dataset, list(job.check_clips), batch_size=len(job.check_clips), resize=None, workers=0
                )
            )
        )
        got = list(np.asarray(first.cpu()) if hasattr(first, "cpu") else first)

        def make_iter() -> Iterator[Any]:
            return iter(
                peer.batches(
                    dataset, list(job.plan), batch_size=job.batch_size, resize=job.resize, workers=job.workers
                )
            )

        return got, {**timed(make_iter, job, peer.name), **peer_meta(peer, job)}
    got = [peer.decode(dataset[c.video_index], c.frame_indices, None) for c in job.check_clips]
    with ThreadPoolExecutor(max_workers=max(1, job.workers)) as pool:

        def one(clip: ClipSpec) -> np.ndarray:
            return np.asarray(peer.decode(dataset[clip.video_index], clip.frame_indices, job.resize))

        def batches() -> Iterator[np.ndarray]:
            b = job.batch_size
            for k in range(job.n_batches):
                yield np.stack(list(pool.map(one, job.plan[k * b : (k + 1) * b])))

        return got, {**timed(batches, job, peer.name), **peer_meta(peer, job)}


def timed(make_iter: Any, job: PeerJob, name: str) -> dict[str, Any]:
    """``measure`` of the batches ``make_iter()`` yields, with the job's sizes and repeats."""
    return measure(
        make_iter,
        n_batches=job.n_batches,
        batch_size=job.batch_size,
        frames=job.frames,
        repeats=job.repeats,
        seconds=job.seconds,
        desc=name,
        progress=job.progress,
    )


def clips_to_json(clips: Sequence[ClipSpec]) -> list[list[Any]]:
    return [[c.video_index, c.clip_index, list(c.frame_indices)] for c in clips]


def clips_from_json(rows: Sequence[Sequence[Any]]) -> tuple[ClipSpec, ...]:
    return tuple(ClipSpec(int(v), int(k), tuple(int(i) for i in idx)) for v, k, idx in rows)
