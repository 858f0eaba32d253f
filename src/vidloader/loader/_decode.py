"""The decode stage: a pass's batches of clips -> the backend's tasks on the workers, a few batches ahead,
each batch under one deadline (late decodes abandoned, tasks of a dead worker retried once, failed clips
handed to on_error; an unreachable store or a pool that cannot run ends the pass) -> the backend's batch
step -> every clip's frames. It owns the host memory decoded frames land in."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from threading import Event
from typing import Any

import numpy as np
import torch

from .._errors import DecodeError, StoreUnavailableError, VideoError
from ..backends import AudioSpan, Backend, ClipRequest, DecodeTask, output_size
from ..dataset import VideoDataset
from ..sampling import ClipSpec
from ._batch import HostBuffers
from ._config import LoaderConfig
from ._state import LoaderStats
from ._workers import DecodePool

# A batch tensor in each layout, seen as NTHWC.
TO_NTHWC = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 2, 3, 4, 1), "NTCHW": (0, 1, 3, 4, 2)}


@dataclass(eq=False)
class Running:
    """A task on the workers."""

    task: DecodeTask
    future: Future = field(repr=False)
    retried: bool = False  # already submitted again after its worker died


@dataclass
class PendingBatch:
    """A submitted batch: its clips, their requests, the host buffer its workers write into (or None)."""

    index: int
    clips: list[ClipSpec]
    requests: list[ClipRequest] = field(repr=False)
    buffer: torch.Tensor | None = field(repr=False)
    running: list[Running] = field(repr=False)


@dataclass
class CollectedBatch:
    """What the workers returned for a batch: the clips that got a result (in plan order), those results,
    and where each sits in the batch's host buffer."""

    index: int
    clips: list[ClipSpec]
    results: list[Any] = field(repr=False)
    buffer: torch.Tensor | None = field(repr=False)
    rows: list[int]


@dataclass
class DecodedBatch:
    """A batch's decoded clips: each clip's uint8 ``[T, H, W, 3]`` frames (host or device memory), and when
    every clip has one frame size, ``video``: all of them as one uint8 tensor laid out as ``layout`` (in its
    own memory order, so it moves to the device in one copy), where each clip whose frames live elsewhere
    (on the GPU, the tensor on the host) is still to be copied in."""

    clips: list[ClipSpec]
    timestamps: list[tuple[float, ...]]
    frames: list[torch.Tensor] = field(repr=False)
    video: torch.Tensor | None = field(repr=False)
    layout: str
    audio: list[AudioSpan] | None = field(repr=False)


class Decoder:
    """The decode stage of one pass (one backend, chosen when the pass starts).

    Args:
        config: the loader's options.
        dataset: the videos.
        backend: the pass's backend.
        pool: the workers.
        host: where host batch memory comes from (recycled once nothing refers to a batch).
        stats: counters and the on_error policy.
        stop: set when the consumer is gone; every wait checks it.
    """

    def __init__(
        self,
        *,
        config: LoaderConfig,
        dataset: VideoDataset,
        backend: Backend,
        pool: DecodePool,
        host: HostBuffers,
        stats: LoaderStats,
        stop: Event,
    ) -> None:
        self.config, self.dataset, self.backend = config, dataset, backend
        self.pool, self.host, self.stats, self.stop = pool, host, stats, stop
        self.settings = config.decode_settings
        # Workers write into a shared host batch buffer only in this process's memory.
        self.in_place = backend.writes_host_rows and not (
            config.num_workers > 0 and config.worker_type == "process"
        )
        # A transform takes NTHWC; without one, workers write straight into the output layout.
        self.layout = "NTHWC" if config.transform is not None else config.layout

    def run(self, batches: Sequence[list[ClipSpec]], first: int = 0) -> Iterator[CollectedBatch]:
        """Each batch's worker results, in order, ``lookahead`` batches submitted ahead; ``first`` is the
        first batch's position in the epoch."""
        lookahead = 0 if self.config.inline else self.config.prefetch
        pending: dict[int, PendingBatch] = {}
        submitted = 0
        try:
            for b in range(len(batches)):
                while submitted < min(b + 1 + lookahead, len(batches)):
                    pending[submitted] = self._submit(first + submitted, batches[submitted])
                    submitted += 1
                yield self._collect(pending.pop(b))
        except StoreUnavailableError:
            # The pass ends here, under every on_error; its workers would only fail on the same store.
            self.pool.close()
            raise
        finally:
            # Tasks not started yet are dropped; running ones finish into buffers nobody will read.
            for p in pending.values():
                for r in p.running:
                    r.future.cancel()

    def finish(self, batch: CollectedBatch) -> DecodedBatch:
        """The backend's step for the whole batch (DALI decodes here, on the current stream), then the
        frames as one batch tensor where the clips share a frame size."""
        results, audio = batch.results, None
        if self.config.audio is not None:
            results, audio = [r.frames for r in results], [r.audio for r in results]

        def fail(i: int, err: DecodeError) -> None:
            self.stats.fail(batch.clips[i], err)

        done = self.backend.finish_batch(results, self.settings, fail)
        video, layout = done.stacked, "NTHWC"
        if batch.buffer is not None:
            rows = [batch.rows[i] for i in done.kept]
            video = batch.buffer if len(rows) == batch.buffer.shape[0] else batch.buffer[rows]
            layout = self.layout
        elif video is None and len({f.shape for f in done.frames}) == 1:
            video = self._stack(done.frames)
        return DecodedBatch(
            clips=[batch.clips[i] for i in done.kept],
            timestamps=[results[i].timestamps for i in done.kept],
            frames=done.frames,
            video=video,
            layout=layout,
            audio=None if audio is None else [audio[i] for i in done.kept],
        )

    def _stack(self, frames: list[torch.Tensor]) -> torch.Tensor:
        """Host frames of equal shape in one host buffer (pinned for CUDA); frames on the GPU stay out."""
        buf = self.host.take((len(frames), *frames[0].shape), pin=self.config.device.type == "cuda")
        for i, f in enumerate(frames):
            if not f.is_cuda:
                buf[i].copy_(f)
        return buf

    def _buffer(self, clips: list[ClipSpec]) -> tuple[torch.Tensor | None, list[np.ndarray | None]]:
        """A host batch buffer workers fill in place, already in the output layout (pinned for CUDA), and
        each clip's row as a [T, H, W, C] view; (None, [None...]) where workers cannot write one.

        Saves a stack, a copy and a layout permute per batch. The memory is new or recycled from a batch
        nothing refers to any more (``HostBuffers``): a batch the caller still holds is never written."""
        cfg = self.config
        none: list[np.ndarray | None] = [None] * len(clips)
        if not self.in_place:
            return None, none
        rot = cfg.apply_rotation
        sizes = {output_size(self.dataset[c.video_index], cfg.resize, apply_rotation=rot) for c in clips}
        if len(sizes) != 1:
            return None, none  # mixed sizes: packed ragged (or reported) by the assembler
        (h, w), t = sizes.pop(), cfg.frames_per_clip
        dims = {"T": t, "H": h, "W": w, "C": 3}
        buf = self.host.take((len(clips), *(dims[k] for k in self.layout[1:])), pin=cfg.device.type == "cuda")
        order = tuple(d - 1 for d in TO_NTHWC[self.layout][1:])
        return buf, [buf[i].permute(*order).numpy() for i in range(len(clips))]

    def _submit(self, index: int, clips: list[ClipSpec]) -> PendingBatch:
        buffer, rows = self._buffer(clips)
        requests = [
            ClipRequest(self.dataset[c.video_index], c.frame_indices, row)
            for c, row in zip(clips, rows, strict=True)
        ]
        tasks = self.backend.tasks(requests, self.settings, shared=self.config.shared_decode)
        return PendingBatch(index, clips, requests, buffer, [self._start(requests, t) for t in tasks])

    def _start(self, requests: list[ClipRequest], task: DecodeTask, *, retried: bool = False) -> Running:
        if task.fallback is not None:
            self.stats.fallback(requests[task.members[0]].info.path, task.fallback)
        if len(task.members) > 1:
            self.stats.counts["shared_decode_clips"] += len(task.members)
        return Running(task, self.pool.submit(task.fn, *task.args), retried)

    def _alone(self, batch: PendingBatch, members: Sequence[int]) -> list[DecodeTask]:
        """Tasks decoding the clips at ``members`` again, each by itself."""
        tasks = self.backend.tasks([batch.requests[m] for m in members], self.settings, shared=False)
        return [DecodeTask(tuple(members[k] for k in t.members), t.fn, t.args, t.fallback) for t in tasks]

    def _collect(self, batch: PendingBatch) -> CollectedBatch:
        deadline = time.monotonic() + self.config.decode_timeout
        results: dict[int, Any] = {}
        errors: dict[int, VideoError] = {}
        running = batch.running
        while running:
            self.pool.wait(
                [r.future for r in running], deadline, timeout=self.config.decode_timeout, stop=self.stop
            )
            late = [r for r in running if not r.future.done()]
            again = [x for r in running if r not in late for x in self._settle(batch, r, results, errors)]
            queued = self._abandon(batch, late, errors)
            # Submitted after the abandon: replacing process workers cancels every call still queued.
            running = [self._start(batch.requests, t, retried=retried) for t, retried in again] + queued
            # A new wave (clips submitted again, or clips that could not start while every worker was stuck)
            # gets a deadline of its own: it never starts already late. Each wave abandons a stuck worker or
            # settles a retry, so the waves are few.
            deadline = time.monotonic() + self.config.decode_timeout
        for m in sorted(errors):  # under on_error="raise" the first failing clip of the batch is named
            self.stats.fail(batch.clips[m], errors[m])
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
            self.stats.counts["abandoned_decodes"] += len(running)
            self.pool.abandon([r.future for r in running])
        reason = f"decoding took longer than decode_timeout={self.config.decode_timeout}s"
        for r in running:
            for m in r.task.members:
                errors[m] = DecodeError(batch.requests[m].info.path, reason)
        return queued

    def _settle(
        self, batch: PendingBatch, run: Running, results: dict[int, Any], errors: dict[int, VideoError]
    ) -> list[tuple[DecodeTask, bool]]:
        """Record a finished task; returns the tasks to submit again in its place (and whether each is the
        retry after a worker died)."""
        fut, members = run.future, run.task.members
        died = fut.cancelled()  # a worker replacement cancelled it before it ran
        exc = None if died else fut.exception()
        if exc is None and not died:
            results.update(zip(members, run.task.results(fut.result()), strict=True))
            return []
        if isinstance(exc, VideoError) and len(members) > 1:
            # A damaged stretch only fails the clips that really cover it: decode each member alone.
            return [(t, False) for t in self._alone(batch, members)]
        if died or isinstance(exc, BrokenProcessPool):
            self.pool.check()  # a pool that cannot run at all raises here: that is no clip's failure
            if not run.retried:
                # A dying worker fails every call in flight in its pool. Decode these again on fresh
                # workers, so only a clip that kills a worker by itself is blamed.
                return [(t, True) for t in self._alone(batch, members)]
            for m in members:
                path = batch.requests[m].info.path
                errors[m] = DecodeError(path, "a decode worker process died while decoding this clip")
            return []
        if isinstance(exc, VideoError):
            errors[members[0]] = exc
            return []
        # Not a property of the file (a bug, out of memory, an interrupt): never skipped as a bad clip.
        raise exc  # type: ignore[misc]
