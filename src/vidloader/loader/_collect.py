"""Collecting a batch from the workers: its tasks waited for under one deadline, and what each outcome means
for its clips. A decode past the deadline is abandoned (its worker replaced) and its clips fail; the clips of
a task whose worker died are decoded again, each alone on a fresh worker and one at a time, so only a clip that
kills a worker by itself is blamed; a damaged stretch fails only the clips that really cover it; a clip an
earlier batch's pass claimed (decoding ahead) is taken from that pass, or decoded here if the claim was lost;
an unreachable store or a pool that cannot run ends the pass; failed clips go to on_error."""

from __future__ import annotations

import time
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from .._errors import DecodeError, VideoError
from ..backends import DecodeTask
from ._host_memory import attach_rows
from ._inflight import CollectedBatch, PendingBatch, Running, deliver
from ._workers import Stopped

if TYPE_CHECKING:
    from ._decode import Decoder


class BatchCollector:
    """Collects the batches of one pass (see the module's docstring).

    Args:
        decoder: the pass's decode stage: its options, workers, counters and stop, and how it starts tasks.
    """

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder

    def collect(self, batch: PendingBatch) -> CollectedBatch:
        """What the workers returned for ``batch``: its tasks waited for under one deadline (a new one for
        each wave of tasks submitted again), each outcome settled; failed clips go to on_error."""
        deadline = time.monotonic() + self.decoder.config.decode_timeout
        results: dict[int, Any] = {}
        errors: dict[int, VideoError] = {}
        running = batch.running
        suspects: list[DecodeTask] = []
        while running or suspects:
            if suspects and not any(r.retried for r in running):
                # The clips a dying worker took down are decoded again one at a time: a clip that kills its
                # worker again then takes no other clip's retry down with it, and only it is blamed.
                running = [*running, self.decoder.start(batch.requests, suspects.pop(0), retried=True)]
            self.decoder.pool.wait(
                [r.future for r in running],
                deadline,
                timeout=self.decoder.config.decode_timeout,
                stop=self.decoder.stop,
            )
            late = [r for r in running if not r.future.done()]
            again = [x for r in running if r not in late for x in self._settle(batch, r, results, errors)]
            queued = self._abandon(batch, late, errors)
            suspects += [t for t, retried in again if retried]
            # Submitted after the abandon: replacing process workers cancels every call still queued.
            running = [self.decoder.start(batch.requests, t) for t, retried in again if not retried] + queued
            # A new wave (clips submitted again, or clips that could not start while every worker was stuck)
            # gets a deadline of its own: it never starts already late. Each wave abandons a stuck worker or
            # settles a retry, so the waves are few.
            deadline = time.monotonic() + self.decoder.config.decode_timeout
        for m in sorted(errors):  # under on_error="raise" the first failing clip of the batch is named
            self.decoder.stats.fail(batch.clips[m], errors[m])
        kept = sorted(results)
        return CollectedBatch(
            batch.index, [batch.clips[m] for m in kept], [results[m] for m in kept], batch.buffer, kept
        )

    def _abandon(
        self, batch: PendingBatch, late: list[Running], errors: dict[int, VideoError]
    ) -> list[Running]:
        """Past the deadline: tasks running on a worker fail and their workers are replaced; tasks still
        queued (innocent: stuck workers kept them from starting) are returned to be waited for again."""
        running = [r for r in late if r.future.running()]
        queued = [r for r in late if r not in running]
        if not running:  # nothing holds them up but they did not start: give up on them too
            running, queued = queued, []
        if running:
            self.decoder.stats.counts["abandoned_decodes"] += len(running)
            self.decoder.pool.abandon([r.future for r in running])
        reason = f"decoding took longer than decode_timeout={self.decoder.config.decode_timeout}s"
        for r in running:
            deliver(list(r.claims.values()), None)  # their own batches decode them
            for m in r.task.members:
                if m not in r.claims:
                    errors[m] = DecodeError(batch.requests[m].info.path, reason)
        return queued

    def _settle(
        self, batch: PendingBatch, run: Running, results: dict[int, Any], errors: dict[int, VideoError]
    ) -> list[tuple[DecodeTask, bool]]:
        """Record a finished task; returns the tasks to submit again in its place (and whether each is the
        retry after a worker died)."""
        if self.decoder.stop.is_set():  # the consumer is gone: copying results into its rows would be wasted
            raise Stopped
        fut, members = run.future, run.task.members
        died = fut.cancelled()  # a worker replacement cancelled it before it ran
        exc = None if died else fut.exception()
        if run.borrowed:
            return self._settle_borrowed(batch, run, results, lost=died or exc is not None)
        if exc is None and not died:
            got = dict(zip(members, run.task.results(fut.result()), strict=True))
            deliver(list(run.claims.values()), [got.pop(m) for m in run.claims])
            if self.decoder.shared:  # frames written into the shared buffer come back as where they lie in it
                got = {m: attach_rows(r, batch.requests[m].out) for m, r in got.items()}
            results.update(got)
            return []
        deliver(list(run.claims.values()), None)  # their own batches decode them
        shared, members = len(members) > 1, tuple(m for m in members if m not in run.claims)
        if isinstance(exc, VideoError) and shared:
            # A damaged stretch only fails the clips that really cover it: decode each member alone.
            return [(t, False) for t in self.decoder.alone(batch.requests, members)]
        if died or isinstance(exc, BrokenProcessPool):
            self.decoder.pool.check()  # a pool that cannot run at all raises here: that is no clip's failure
            if not run.retried:
                # A dying worker fails every call in flight in its pool. Decode these again on fresh
                # workers, so only a clip that kills a worker by itself is blamed.
                return [(t, True) for t in self.decoder.alone(batch.requests, members)]
            for m in members:
                path = batch.requests[m].info.path
                errors[m] = DecodeError(path, "a decode worker process died while decoding this clip")
            return []
        if isinstance(exc, VideoError):
            errors[members[0]] = exc
            return []
        # Not a property of the file (a bug, out of memory, an interrupt): never skipped as a bad clip.
        raise exc  # type: ignore[misc]

    def _settle_borrowed(
        self, batch: PendingBatch, run: Running, results: dict[int, Any], *, lost: bool
    ) -> list[tuple[DecodeTask, bool]]:
        """A clip an earlier batch's pass claimed: its result, copied into its row; a lost claim decodes the
        clip here, by itself."""
        if lost:
            return [(run.task, False)]
        (m,) = run.task.members
        out = batch.requests[m].out
        result = run.future.result()
        results[m] = result if out is None else result.placed(out)
        self.decoder.stats.counts["clips_decoded_ahead"] += 1
        return []
