"""Handing batches to the caller: made ahead on a prefetch thread (unless num_workers=0), ready on the
caller's CUDA stream, the same way in every worker mode, and counted in the ``EpochCursor`` (where the
caller is in the epoch) when the caller takes them.

The prefetch thread runs a pass's producer at most ``prefetch`` batches ahead. Every wait there has a
timeout: the producer re-checks ``stop`` while the queue is full, the consumer re-checks that the producer
is alive while the queue is empty, and closing joins the thread.

Batches are made on a side stream (so their copies and transform overlap the caller's step); an event
recorded after them is what the caller's current stream waits on when it takes the batch, and every CUDA
tensor of the batch is recorded on that stream, so the caching allocator never hands its memory to another
batch while the step still reads it. On the CPU all of this is a no-op."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol, TypeVar

import torch

from ._batch import ClipBatch

log = logging.getLogger("vidloader")
T = TypeVar("T")
POLL_S = 0.1
_END = object()
# What a pass's producer yields: (the epoch position after the batch, the batch, its readiness event).
Made = tuple[int, ClipBatch, Any]


class EpochCursor:
    """Where iteration stands: the next epoch to run and, inside a pass, how many batches are done.

    The position counts batches of the epoch's plan, not deliveries: batches skipped whole under
    on_error="skip" are done too, so a resume neither replays them nor shifts the rest.
    """

    def __init__(self) -> None:
        self.next_epoch = 0
        self.resume_from = 0
        self.epoch = 0
        self.done = 0
        # True from a pass's start until it runs to its end; a pass left early keeps its position.
        self.in_epoch = False

    def begin(self) -> tuple[int, int]:
        """Start a pass: returns (epoch, first batch); the pass after this one is the next epoch."""
        epoch, start = self.next_epoch, self.resume_from
        self.resume_from = 0
        self.next_epoch = epoch + 1
        self.epoch, self.done = epoch, start
        self.in_epoch = True
        return epoch, start

    def delivered(self, position: int) -> None:
        """The caller now holds the batch before ``position`` (batches are numbered from 1 here)."""
        self.done = position

    def end(self) -> None:
        self.in_epoch = False

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.next_epoch:
            # A state loaded for this very epoch stays pending: the usual loop calls set_epoch(e) every
            # epoch, also right after load_state_dict.
            self.resume_from = 0
        self.next_epoch = epoch
        self.in_epoch = False

    def position(self) -> tuple[int, int]:
        """(epoch, batches done) a checkpoint taken now resumes from."""
        if self.in_epoch:
            return self.epoch, self.done
        # Between passes (also after set_epoch or a finished pass): at the start of the next one.
        return self.next_epoch, self.resume_from

    def load(self, epoch: int, done: int) -> None:
        self.next_epoch, self.resume_from = epoch, done
        self.epoch, self.done = epoch, done
        self.in_epoch = False


class StreamOps(Protocol):
    """The stream operations a handoff needs (CUDA's, or a fake in the CPU tests)."""

    def side(self) -> Any: ...
    def current(self) -> Any: ...
    def use(self, stream: Any) -> contextlib.AbstractContextManager[Any]: ...
    def record_event(self, stream: Any) -> Any: ...
    def wait(self, stream: Any, event: Any) -> None: ...
    def keep_alive(self, tensor: torch.Tensor, stream: Any) -> None: ...
    def owns(self, tensor: torch.Tensor) -> bool: ...


class CudaStreams:
    """StreamOps on a CUDA device, with one side stream for making batches."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._side = torch.cuda.Stream(device)

    def side(self) -> torch.cuda.Stream:
        return self._side

    def current(self) -> torch.cuda.Stream:
        return torch.cuda.current_stream(self.device)

    def use(self, stream: Any) -> contextlib.AbstractContextManager[Any]:
        return torch.cuda.stream(stream)

    def record_event(self, stream: Any) -> torch.cuda.Event:
        event = torch.cuda.Event()
        event.record(stream)
        return event

    def wait(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def keep_alive(self, tensor: torch.Tensor, stream: Any) -> None:
        tensor.record_stream(stream)

    def owns(self, tensor: torch.Tensor) -> bool:
        return tensor.is_cuda


def streams_for(device: torch.device) -> StreamOps | None:
    """The stream operations for ``device``: CUDA's on a CUDA device, None (nothing to do) on the CPU."""
    return CudaStreams(device) if device.type == "cuda" else None


class Handoff:
    """``make`` a batch on the side stream (producer), then ``ready`` it on the current one (consumer)."""

    def __init__(self, streams: StreamOps | None) -> None:
        self.streams = streams

    def make(self, build: Callable[..., T], *args: Any) -> tuple[T, Any]:
        """Run ``build(*args)`` on the side stream; returns its result and the event that marks it done."""
        if self.streams is None:
            return build(*args), None
        side = self.streams.side()
        with self.streams.use(side):
            out = build(*args)
            event = self.streams.record_event(side)
        return out, event

    def ready(self, batch: ClipBatch, event: Any) -> ClipBatch:
        """Make the caller's current stream wait for ``batch`` and own its device memory."""
        if self.streams is None or event is None:
            return batch
        current = self.streams.current()
        self.streams.wait(current, event)
        for t in (batch.video, batch.label, batch.audio, batch.audio_mask, batch.frame_mask):
            if t is not None and self.streams.owns(t):
                self.streams.keep_alive(t, current)
        return batch


class Prefetcher:
    """Iterate ``produced`` on a background thread.

    Args:
        produced: the producer; it must check ``stop`` in its own waits (the scheduler does).
        depth: items made ahead of the consumer.
        stop: set by ``close``; the producer stops at its next check.
        join_timeout: how long ``close`` waits for the thread (it can only be inside user code, a
            transform or a DALI call, by then).
    """

    def __init__(self, produced: Iterator[Any], *, depth: int, stop: threading.Event, join_timeout: float):
        self._produced = produced
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = stop
        self._join_timeout = join_timeout
        self._thread = threading.Thread(target=self._run, name="vidloader-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        # Never block for good: once the caller has gone (stop), nothing will empty the queue.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._produced:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            # Closed here, on the thread running it: closing a generator that another thread is
            # executing raises "ValueError: generator already executing".
            self._produced.close()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(
                        "vidloader: the prefetch thread ended without finishing the pass"
                    ) from None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the producer and wait for its thread to end."""
        self._stop.set()
        deadline = time.monotonic() + self._join_timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(timeout=POLL_S)
        if self._thread.is_alive():
            log.warning(
                "vidloader: the prefetch thread is still inside a transform or decode call after %.0fs",
                self._join_timeout,
            )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def deliver(
    made: Generator[Made, None, None],
    *,
    handoff: Handoff,
    cursor: EpochCursor,
    stop: threading.Event,
    prefetch: int,
    join_timeout: float,
    prefetchers: set[Prefetcher],
) -> Generator[ClipBatch, None, None]:
    """The pass's batches, ready on the caller's stream, each counted in ``cursor`` when the caller takes
    it; made on a prefetch thread (listed in ``prefetchers`` while it runs) unless ``prefetch`` is 0. However
    the pass ends, its producer is stopped."""
    prefetcher = None
    items: Iterator[Made] = made
    if prefetch > 0:
        prefetcher = Prefetcher(made, depth=prefetch, stop=stop, join_timeout=join_timeout)
        prefetchers.add(prefetcher)
        items = iter(prefetcher)
    try:
        for position, batch, event in items:
            ready = handoff.ready(batch, event)
            cursor.delivered(position)
            yield ready
    finally:
        stop.set()
        if prefetcher is not None:
            prefetcher.close()
            prefetchers.discard(prefetcher)
        else:
            made.close()
