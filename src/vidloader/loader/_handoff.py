"""How a batch becomes ready on the caller's CUDA stream, the same way in every worker mode.

Batches are made on a side stream (so their copies and transform overlap the caller's step); an event
recorded after them is what the caller's current stream waits on when it takes the batch, and every CUDA
tensor of the batch is recorded on that stream, so the caching allocator never hands its memory to another
batch while the step still reads it. On the CPU all of this is a no-op."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import torch

from ._batch import ClipBatch

T = TypeVar("T")


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

    def make(self, build: Callable[[], T]) -> tuple[T, Any]:
        """Run ``build`` on the side stream; returns its result and the event that marks it done."""
        if self.streams is None:
            return build(), None
        side = self.streams.side()
        with self.streams.use(side):
            out = build()
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
