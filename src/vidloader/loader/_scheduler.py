"""Scheduler: a pass's batches of clip plans -> decode units -> workers, a few batches ahead, each batch
under one deadline. What comes out is each batch's decoded clips (failed ones dealt with by on_error)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from threading import Event
from typing import Any

import numpy as np
import torch

from .._errors import DecodeError, VideoError
from ..sampling import ClipSpec
from ._pool import DecodePool
from ._stats import LoaderStats
from ._tasks import DecodeUnit, TaskMaker

# How often a wait wakes to check that the caller still wants the batch and the workers are alive.
POLL_S = 0.1

BufferFactory = Callable[[list[ClipSpec]], "tuple[torch.Tensor | None, list[np.ndarray | None]]"]


class Stopped(Exception):
    """The consumer went away (break, exception, close) while the scheduler waited."""


@dataclass
class PendingBatch:
    """A submitted batch: its clips, the host buffer its workers write into (or None) and its units."""

    index: int
    clips: list[ClipSpec]
    buffer: torch.Tensor | None = field(repr=False)
    rows: list[np.ndarray | None] = field(repr=False)
    units: list[DecodeUnit] = field(repr=False)


@dataclass
class DecodedBatch:
    """The clips of a batch that decoded (in plan order), their results, and the buffer rows they fill.

    The buffer belongs to this batch alone: the scheduler never hands it to another batch, and no worker
    writes to the surviving rows once the batch is out."""

    index: int
    clips: list[ClipSpec]
    results: list[Any] = field(repr=False)
    buffer: torch.Tensor | None = field(repr=False)
    rows: list[int]


class Scheduler:
    """Runs one pass of batches through the decode pool.

    Args:
        pool: the workers.
        tasks: turns clips into decode units.
        buffers: a host batch buffer and per-clip row views for a batch's clips (None: results carry
            their own frames).
        stats: counters and the on_error policy.
        lookahead: batches submitted beyond the one being collected (0: one batch at a time).
        timeout: seconds a batch's decode may take, counted from when the scheduler starts waiting for it;
            clips not done by then are abandoned (their workers replaced) and fail with a DecodeError.
        stop: set when the consumer is gone; every wait checks it.
    """

    def __init__(
        self,
        *,
        pool: DecodePool,
        tasks: TaskMaker,
        buffers: BufferFactory,
        stats: LoaderStats,
        lookahead: int,
        timeout: float,
        stop: Event,
    ) -> None:
        self.pool, self.tasks, self.buffers, self.stats = pool, tasks, buffers, stats
        self.lookahead, self.timeout, self.stop = lookahead, timeout, stop

    def run(self, batches: Sequence[list[ClipSpec]], first: int = 0) -> Iterator[DecodedBatch]:
        """Decoded batches in order; ``first`` is the first batch's position in the epoch."""
        pending: dict[int, PendingBatch] = {}
        submitted = 0
        try:
            for b in range(len(batches)):
                while submitted < min(b + 1 + self.lookahead, len(batches)):
                    pending[submitted] = self._submit(first + submitted, batches[submitted])
                    submitted += 1
                yield self._collect(pending.pop(b))
        finally:
            # Units not started yet are dropped; running ones finish into buffers nobody will read.
            for p in pending.values():
                for u in p.units:
                    if u.future is not None:
                        u.future.cancel()

    def _submit(self, index: int, clips: list[ClipSpec]) -> PendingBatch:
        buffer, rows = self.buffers(clips)
        units = self.tasks.units(clips, rows)
        for u in units:
            u.future = self.pool.submit(u.fn, *u.args)
        return PendingBatch(index, clips, buffer, rows, units)

    def _collect(self, batch: PendingBatch) -> DecodedBatch:
        deadline = time.monotonic() + self.timeout
        results: dict[int, Any] = {}
        errors: dict[int, VideoError] = {}
        units = batch.units
        while units:
            self._wait([u.future for u in units if u.future is not None], deadline)
            late = [u for u in units if u.future is not None and not u.future.done()]
            again = [r for u in units if u not in late for r in self._settle(batch, u, results, errors)]
            queued = self._abandon(batch, late, errors)
            for u in again:
                u.future = self.pool.submit(u.fn, *u.args)
            units = again + queued
            if units:
                # A new wave (clips submitted again, or clips that could not start while every worker was
                # stuck) gets a deadline of its own: it never starts already late. Each wave abandons a
                # stuck worker or settles a retry, so the waves are few.
                deadline = time.monotonic() + self.timeout
        for m in sorted(errors):  # under on_error="raise" the first failing clip of the batch is named
            self.stats.fail(batch.clips[m], errors[m])
        kept = sorted(results)
        return DecodedBatch(
            batch.index, [batch.clips[m] for m in kept], [results[m] for m in kept], batch.buffer, kept
        )

    def _abandon(
        self, batch: PendingBatch, late: list[DecodeUnit], errors: dict[int, VideoError]
    ) -> list[DecodeUnit]:
        """Past the deadline: units running on a worker fail and their workers are replaced; units still
        queued (innocent: stuck workers kept them from starting) are returned to be waited for again."""
        running = [u for u in late if u.future is not None and u.future.running()]
        queued = [u for u in late if u not in running]
        if not running:  # nothing holds them up but they did not start: give up on them too
            running, queued = queued, []
        if running:
            self.stats.counts["abandoned_decodes"] += len(running)
            self.pool.abandon([u.future for u in running if u.future is not None])
        for u in running:
            for m in u.members:
                path = self.tasks.dataset[batch.clips[m].video_index].path
                errors[m] = DecodeError(path, f"decoding took longer than decode_timeout={self.timeout}s")
        return queued

    def _settle(
        self, batch: PendingBatch, unit: DecodeUnit, results: dict[int, Any], errors: dict[int, VideoError]
    ) -> list[DecodeUnit]:
        """Record a finished unit; returns the units to submit again in its place."""
        fut = unit.future
        if fut is None:
            raise RuntimeError("a decode unit was collected before it was submitted")
        died = fut.cancelled()  # a worker replacement cancelled it before it ran
        exc = None if died else fut.exception()
        if exc is None and not died:
            out = fut.result()
            for k, m in enumerate(unit.members):
                results[m] = out[k] if unit.shared else out
            return []
        if isinstance(exc, VideoError) and unit.shared:
            # A damaged stretch only fails the clips that really cover it: decode each member alone.
            return [self.tasks.single(batch.clips, batch.rows, m) for m in unit.members]
        if died or isinstance(exc, BrokenProcessPool):
            if not unit.retried:
                # A dying worker fails every call in flight in its pool. Decode these again on fresh
                # workers, so only a clip that kills a worker by itself is blamed.
                retry = [self.tasks.single(batch.clips, batch.rows, m) for m in unit.members]
                for r in retry:
                    r.retried = True
                return retry
            for m in unit.members:
                path = self.tasks.dataset[batch.clips[m].video_index].path
                errors[m] = DecodeError(path, "a decode worker process died while decoding this clip")
            return []
        if isinstance(exc, VideoError):
            errors[unit.members[0]] = exc
            return []
        # Not a property of the file (a bug, out of memory, an interrupt): never skipped as a bad clip.
        raise exc  # type: ignore[misc]

    def _wait(self, futures: list[Future], deadline: float) -> None:
        """Until every future is done or the deadline passes, waking to check the consumer and workers."""
        todo = [f for f in futures if not f.done()]
        while todo:
            if self.pool.starting():  # the clock starts once the workers are up
                deadline = max(deadline, time.monotonic() + self.timeout)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait(todo, timeout=min(POLL_S, left), return_when=FIRST_COMPLETED)
            if self.stop.is_set():
                raise Stopped
            self.pool.check_alive()
            todo = [f for f in todo if not f.done()]
