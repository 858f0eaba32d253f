"""The decode stage: a pass's batches of clips -> the backend's tasks on the workers, a few batches ahead ->
each batch collected under one deadline (``_collect``: late decodes abandoned, tasks of a dead worker retried,
failed clips handed to on_error; an unreachable store or a pool that cannot run ends the pass) -> the
backend's batch step -> every clip's frames. It owns the host memory decoded frames land in. A batch's decode
passes may also serve clips of the next batches (``_inflight``: claimed clips wait for that pass instead of
decoding again)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace
from threading import Event

import numpy as np
import torch

from .._errors import DecodeError, StoreUnavailableError
from ..backends import Backend, ClipRequest, DecodeTask, output_size
from ..dataset import VideoDataset
from ..sampling import ClipSpec
from ._collect import BatchCollector
from ._config import LoaderConfig
from ._host_memory import HostBuffers, hold_until_done, run_into_rows
from ._inflight import TO_NTHWC, AheadClaims, CollectedBatch, DecodedBatch, PendingBatch, Running
from ._state import LoaderStats
from ._workers import DecodePool

log = logging.getLogger("vidloader")


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
        # Thread workers write into the batch buffer directly; process workers into a buffer shared with
        # them (``_host_memory``), except for a CUDA batch, whose host buffer is pinned memory.
        processes = config.num_workers > 0 and config.worker_type == "process"
        self.shared = processes and config.device.type != "cuda"
        self.in_place = backend.writes_host_rows and (not processes or self.shared)
        # A transform takes NTHWC; without one, workers write straight into the output layout.
        self.layout = "NTHWC" if config.transform is not None else config.layout

    def run(self, batches: Sequence[list[ClipSpec]], first: int = 0) -> Iterator[CollectedBatch]:
        """Each batch's worker results, in order, ``lookahead`` batches submitted ahead; ``first`` is the
        first batch's position in the epoch."""
        lookahead = 0 if self.config.inline else self.config.prefetch
        # A batch's decode may serve clips of the next batches (up to prefetch of them, at least one).
        self.ahead = AheadClaims(batches, max(lookahead, 1) if self.config.shared_decode else 0)
        # Local to the pass, so the decoder and its collector form no reference cycle: the pass's objects are
        # freed when it ends, not at the next garbage collection (claimed clips' frames among them).
        collector = BatchCollector(self)
        pending: dict[int, PendingBatch] = {}
        submitted = 0
        try:
            for b in range(len(batches)):
                while submitted < min(b + 1 + lookahead, len(batches)):
                    pending[submitted] = self._submit(first + submitted, submitted, batches[submitted])
                    submitted += 1
                yield collector.collect(pending.pop(b))
        except StoreUnavailableError:
            # The pass ends here, under every on_error; its workers would only fail on the same store.
            self.pool.close()
            raise
        finally:
            # Tasks not started yet are dropped; running ones stop at their next packet once the pass's stop
            # is set (``run_until``; process workers read it from shared memory, ``DecodePool.new_stop``).
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
        shape = (len(clips), *(dims[k] for k in self.layout[1:]))
        try:
            buf = self.host.take(shape, pin=cfg.device.type == "cuda", shared=self.shared)
        except OSError as exc:  # no room in /dev/shm: the workers send their frames back instead
            log.warning("vidloader: process workers send frames through the result pipe (slower): %s", exc)
            self.shared = self.in_place = False
            return None, none
        order = tuple(d - 1 for d in TO_NTHWC[self.layout][1:])
        return buf, [buf[i].permute(*order).numpy() for i in range(len(clips))]

    def _submit(self, index: int, b: int, clips: list[ClipSpec]) -> PendingBatch:
        """Batch ``b`` (``index`` in the epoch) on the workers: its clips an earlier batch claimed wait for
        that batch's pass; the others are decoded together with the later clips the backend shares a pass
        with (claimed here)."""
        buffer, rows = self._buffer(clips)
        requests = [
            ClipRequest(self.dataset[c.video_index], c.frame_indices, row)
            for c, row in zip(clips, rows, strict=True)
        ]
        claimed = self.ahead.claimed(b)
        running = [
            Running(t, claimed[t.members[0]], borrowed=True) for t in self.alone(requests, list(claimed))
        ]
        own = [p for p in range(len(clips)) if p not in claimed]
        offers = self.ahead.offers(b)
        later = [ClipRequest(self.dataset[o.clip.video_index], o.clip.frame_indices) for o in offers]
        n, at = len(clips), own + [len(clips) + k for k in range(len(offers))]
        for t in self.backend.tasks(
            [requests[p] for p in own] + later, self.settings, shared=self.config.shared_decode
        ):
            members = tuple(at[m] for m in t.members)
            if min(members) >= n:
                continue  # a pass of later clips only: left to their own batch
            claims = {m: self.ahead.claim(offers[m - n]) for m in members if m >= n}
            running.append(self.start(requests, replace(t, members=members), claims=claims))
        return PendingBatch(index, clips, requests, buffer, running)

    def start(
        self,
        requests: list[ClipRequest],
        task: DecodeTask,
        *,
        retried: bool = False,
        claims: dict[int, Future] | None = None,
    ) -> Running:
        """``task`` submitted to the workers (into shared batch rows for process workers); ``retried``: the
        retry after its worker died; ``claims``: its members that are later batches' clips."""
        if task.fallback is not None:
            self.stats.fallback(requests[min(task.members)].info.path, task.fallback)
        if len(task.members) > 1:
            self.stats.counts["shared_decode_clips"] += len(task.members)
        fn, args = task.fn, task.args
        shared = self.host.share_args(args) if self.shared else None
        if shared is not None:  # rows of the shared batch buffer go to the worker as where they lie in it
            fn, args = run_into_rows, (task.fn, *shared)
        fut = self.pool.submit(fn, *args, stop=self.stop)
        if shared is not None:
            # The worker writes into those rows until its call ends, whatever this pass does meanwhile: this
            # process's views of them stay referenced until then, so the buffer is not handed out again.
            hold_until_done(fut, task.args)
        return Running(task, fut, retried, claims or {})

    def alone(self, requests: list[ClipRequest], members: Sequence[int]) -> list[DecodeTask]:
        """Tasks decoding the clips at ``members`` (positions in ``requests``), each by itself."""
        members = list(members)
        tasks = self.backend.tasks([requests[m] for m in members], self.settings, shared=False)
        return [DecodeTask(tuple(members[k] for k in t.members), t.fn, t.args, t.fallback) for t in tasks]
