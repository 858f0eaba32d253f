"""One pass of a VideoLoader: plan batches -> Scheduler (decode workers) -> Assembler (device batch,
transform) -> Handoff (ready on the caller's stream), on a prefetch thread unless num_workers=0."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..dataset import VideoDataset
from ..sampling import ClipSpec
from . import _handoff
from ._assemble import Assembler
from ._audio import AudioBatcher
from ._batch import ClipBatch
from ._config import LoaderConfig
from ._host_buffers import HostBuffers
from ._pool import DecodePool
from ._prefetch import Prefetcher
from ._scheduler import Scheduler, Stopped
from ._state import EpochCursor
from ._stats import LoaderStats
from ._tasks import TaskMaker


@dataclass(frozen=True)
class PassParts:
    """What a pass takes from its loader when it starts (a backend swapped in later serves the next pass)."""

    config: LoaderConfig
    dataset: VideoDataset
    backend: Any
    audio: AudioBatcher | None
    stats: LoaderStats
    host: HostBuffers
    pool: DecodePool


def run_pass(
    parts: PassParts,
    epoch: int,
    start: int,
    batches: Sequence[list[ClipSpec]],
    *,
    cursor: EpochCursor,
    prefetchers: set[Prefetcher],
) -> Generator[ClipBatch, None, None]:
    """The pass's batches, ready on the caller's stream, each counted in ``cursor`` when the caller takes
    it; however the pass ends, its producer (prefetch thread, listed in ``prefetchers`` while it runs, or
    the inline generator) is stopped."""
    cfg = parts.config
    stop = threading.Event()
    handoff = _handoff.Handoff(_handoff.streams_for(cfg.device))
    produced = _produce(parts, epoch, start, batches, stop, handoff)
    prefetcher = None
    if cfg.inline:
        items: Iterator[Any] = produced
    else:
        prefetcher = Prefetcher(produced, depth=cfg.prefetch, stop=stop, join_timeout=cfg.decode_timeout)
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
            produced.close()


def _produce(
    parts: PassParts,
    epoch: int,
    start: int,
    batches: Sequence[list[ClipSpec]],
    stop: threading.Event,
    handoff: Any,
) -> Generator[tuple[int, ClipBatch, Any], None, None]:
    """(position after the batch, batch, readiness event) for each batch that has clips."""
    cfg = parts.config
    backend = parts.backend
    assembler = Assembler(
        config=cfg,
        dataset=parts.dataset,
        backend=backend,
        audio=parts.audio,
        stats=parts.stats,
        host=parts.host,
    )
    scheduler = Scheduler(
        pool=parts.pool,
        tasks=TaskMaker(dataset=parts.dataset, backend=backend, config=cfg, stats=parts.stats),
        buffers=assembler.buffers,
        stats=parts.stats,
        lookahead=0 if cfg.inline else cfg.prefetch,
        timeout=cfg.decode_timeout,
        stop=stop,
    )
    counts = parts.stats.counts
    with contextlib.suppress(Stopped):
        for decoded in scheduler.run(batches, first=start):
            made, event = (
                handoff.make(lambda d=decoded: assembler(epoch, d)) if decoded.clips else (None, None)
            )
            if made is None:  # every clip failed under on_error="skip"
                counts["skipped_batches"] += 1
                continue
            batch, n_clips = made
            counts["batches"] += 1
            counts["clips"] += n_clips
            yield decoded.index + 1, batch, event
