"""VideoLoader, the public face. A pass reads top-down in ``__iter__``: this epoch's plan -> decode
(``_decode``) -> assemble (``_assemble``) -> hand off (``_handoff``), the position kept in ``_state``.
Its keywords, the Args of its docstring and its read-only attributes are made from LoaderConfig's fields
(``_config``, through ``expose_options``)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from .._errors import ConfigError
from .._option import expose_options
from .._validate import check_int
from ..backends import Backend, resolve_backend
from ..dataset import VideoDataset, store_stats
from ..sampling import ClipPlan, ClipSpec
from . import _handoff
from ._assemble import Assembler, AudioBatcher, audio_samples
from ._batch import ClipBatch, HostBuffers
from ._config import LoaderConfig, loader_config
from ._decode import CollectedBatch, Decoder
from ._handoff import Handoff, Prefetcher
from ._state import (
    EpochCursor,
    EpochPlans,
    LoaderStats,
    check_state,
    make_state,
    short_videos,
)
from ._workers import DecodePool, Stopped

log = logging.getLogger("vidloader")


class VideoLoader:
    """Iterate batches of decoded clips (``ClipBatch``) on a device, prefetched, sharded and resumable.

    Each pass (``for batch in loader``) yields the clips of one epoch's plan as ClipBatch objects, which
    unpack as ``video, label, video_index``. Every argument but ``dataset`` is keyword-only: the options
    below, or ``config=`` (a ``LoaderConfig``) instead of them. Every option is also a read-only attribute
    (``loader.batch_size``, ``loader.sampling``, ...; ``loader.backend`` is the backend object chosen from
    ``backend=``). ``len(loader)`` is the number of batches of the current epoch (stable during a pass)
    and ``loader.num_clips`` its clips; ``state_dict()`` / ``load_state_dict()`` resume mid-epoch.

    In short: ``sampling="random"`` with the default ``clips_per_video_mode="exact"`` gives exactly
    ``clips_per_video`` independent random clips per video and epoch; ``"without_replacement"`` is
    torchvision's RandomClipSampler; ``"uniform"`` is evenly spaced clips (torchvision's
    UniformClipSampler); ``"sliding"`` every window. Padded frames of short videos are False in
    ``ClipBatch.frame_mask``.

    Raises:
        ConfigError: an option is not allowed (the message names it and the allowed values), is unknown,
            has no effect in this mode, or both ``config=`` and options were given.
        BackendUnavailableError: backend="dali" cannot run here.
    """

    config: LoaderConfig
    backend: Backend

    def __init__(self, dataset: VideoDataset, *, config: LoaderConfig | None = None, **options: Any) -> None:
        if not isinstance(dataset, VideoDataset):
            raise ConfigError(f"dataset must be a vidloader.VideoDataset, got {type(dataset).__name__}")
        self.config = cfg = loader_config(config, options)
        self.dataset = dataset
        # Chosen once; replaceable between passes (tests swap in instrumented backends).
        self.backend = resolve_backend(cfg.backend, device=cfg.device)
        log.info("vidloader: using backend %s", self.backend.name)
        self._audio = (
            None if cfg.audio is None else AudioBatcher(cfg.audio, audio_samples(cfg.audio, cfg, dataset))
        )
        self._short_videos = short_videos(dataset, cfg)
        self._pool = DecodePool(num_workers=cfg.num_workers, worker_type=cfg.worker_type)
        self._dataset_fp = dataset.fingerprint()
        self._cursor = EpochCursor()
        self._stats = LoaderStats(on_error=cfg.on_error)
        # Idle batch buffers kept: as many as can be in flight (submitted ahead, queued, the caller's).
        self._host = HostBuffers(keep=2 * cfg.prefetch + 2)
        self._plans = EpochPlans(cfg)
        self._prefetchers: set[Prefetcher] = set()  # passes still running ahead of their callers

    # ---- iteration -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ClipBatch]:
        """One pass over the next epoch (from a loaded state's position when one is pending).

        Raises:
            DecodeError: a clip failed under on_error="raise" (names the file and the reason).
            ConfigError: clips of one batch differ in frame size and there is no transform to take them.
        """
        epoch, start = self._cursor.begin()
        plan = self._plan(epoch)
        batches = plan.batches(self.config.batch_size, start, self._num_batches(len(plan)))
        cfg, stop = self.config, threading.Event()
        handoff = Handoff(_handoff.streams_for(cfg.device))
        yield from _handoff.deliver(
            self._make(epoch, start, batches, handoff, stop),
            handoff=handoff,
            cursor=self._cursor,
            stop=stop,
            prefetch=0 if cfg.inline else cfg.prefetch,
            join_timeout=cfg.decode_timeout,
            prefetchers=self._prefetchers,
        )
        self._cursor.end()

    def _make(
        self,
        epoch: int,
        start: int,
        batches: Sequence[list[ClipSpec]],
        handoff: Handoff,
        stop: threading.Event,
    ) -> Generator[_handoff.Made, None, None]:
        """Each batch of the pass decoded and assembled on the side stream: (position after it, batch, the
        event that marks it made). The backend is the one set when the pass starts."""
        cfg, stats = self.config, self._stats
        decoder = Decoder(
            config=cfg,
            dataset=self.dataset,
            backend=self.backend,
            pool=self._pool,
            host=self._host,
            stats=stats,
            stop=stop,
        )
        assembler = Assembler(config=cfg, dataset=self.dataset, audio=self._audio, stats=stats)

        def build(collected: CollectedBatch) -> ClipBatch | None:
            return assembler(epoch, decoder.finish(collected))

        with contextlib.suppress(Stopped):
            for collected in decoder.run(batches, first=start):
                batch, event = handoff.make(build, collected)
                if batch is not None:
                    yield collected.index + 1, batch, event

    # ---- plan ----------------------------------------------------------------------------------------

    def _plan(self, epoch: int) -> ClipPlan:
        return self._plans.plan(self.dataset, epoch)

    def _num_batches(self, n_clips: int) -> int:
        b = self.config.batch_size
        return n_clips // b if self.config.drop_last else -(-n_clips // b)

    @property
    def _current_epoch(self) -> int:
        """The epoch being iterated while a pass runs, else the next one."""
        return self._cursor.epoch if self._cursor.in_epoch else self._cursor.next_epoch

    @property
    def num_clips(self) -> int:
        """Clips this rank yields in the current epoch (the one being iterated, else the next one), counting
        every clip of the plan, including ones that a resume skips or ``on_error="skip"`` drops; views of
        a multi-view transform are not counted (a batch has ``num_views`` rows per clip)."""
        return len(self._plan(self._current_epoch))

    def __len__(self) -> int:
        """Batches in the current epoch (the one being iterated, else the next one): ``ceil(num_clips /
        batch_size)``, or the floor with ``drop_last``. It does not change during a pass and counts the whole
        epoch, also when the pass resumed mid-epoch (like ``torch.utils.data.DataLoader``)."""
        return self._num_batches(self.num_clips)

    def clip_plan(self, epoch: int | None = None) -> list[ClipSpec]:
        """The clips this rank yields in an epoch, in order.

        Args:
            epoch: the epoch (default: the next one).

        Returns:
            The epoch's ``ClipSpec`` list for this rank.
        """
        return list(self._plan(self._cursor.next_epoch if epoch is None else epoch))

    # ---- epoch & state -------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass run ``epoch`` (a state loaded for this very epoch stays pending).

        Raises:
            ConfigError: ``epoch`` is not an int >= 0.
        """
        check_int("epoch", epoch, minimum=0)
        self._cursor.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        """The epoch the next pass runs."""
        return self._cursor.next_epoch

    def state_dict(self) -> dict[str, Any]:
        """Where the caller is: batches already handed over (not those waiting in the prefetch queue),
        counted as the position in the epoch, so batches skipped whole under on_error="skip" count as done.

        Returns:
            A JSON-safe dict with the epoch, the batches done, and the config and dataset fingerprints.
        """
        epoch, done = self._cursor.position()
        return make_state(
            epoch=epoch,
            batches_yielded=done,
            config=self.config.state_fields(),
            dataset=self._dataset_fp,
            world_size=self.config.world_size,
            stages=self._plans.stages_of(epoch),
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a ``state_dict``: the next pass starts where that one stood, also at another world
        size (an elastic restart): then the epoch's clips no rank had consumed are dealt to the ranks there
        are now (the state of any rank will do: they are equal).

        Raises:
            StateMismatchError: the state is not a loader state, or was saved under another sampling,
                seed, batching or dataset (the message names the field).
        """
        point = check_state(
            state,
            config=self.config.state_fields(),
            dataset=self._dataset_fp,
            world_size=self.config.world_size,
        )
        self._plans.resume(point.epoch, point.stages)
        self._cursor.load(point.epoch, point.batches_yielded)

    @property
    def stats(self) -> dict[str, Any]:
        """JSON-serialisable counters: clips, batches, skipped files and clips with reasons, fallbacks,
        shared decodes, clips without audio, decodes abandoned past their deadline, short videos and
        remote-store reads."""
        extra = {
            "short_video": self.config.short_video,
            "short_videos": self._short_videos,
            # Remote reads of this process (range requests, bytes, retries); process workers count in theirs.
            "store": store_stats(),
        }
        return self._stats.to_json(
            backend=self.backend.name, skipped_files=[s.to_json() for s in self.dataset.skipped], short=extra
        )

    def close(self) -> None:
        """Stop passes still prefetching (their threads are joined) and shut the decode workers down; a
        later pass starts new ones."""
        for prefetcher in list(self._prefetchers):
            prefetcher.close()
        self._prefetchers.clear()
        self._pool.close()
        self._host.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close()

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"VideoLoader(videos={len(self.dataset)}, batch_size={cfg.batch_size}, frames_per_clip={cfg.frames_per_clip}, "
            f"sampling={cfg.sampling!r}, backend={self.backend.name!r}, device={str(cfg.device)!r}, "
            f"rank={cfg.rank}/{cfg.world_size})"
        )


expose_options(
    VideoLoader,
    LoaderConfig,
    before=[("dataset", "the videos (``VideoDataset.from_folder`` / ``from_manifest`` / ``from_paths``).")],
    after=[("config", "a ``LoaderConfig`` holding every option, instead of the keywords above.")],
    first=("batch_size", "frames_per_clip"),
    own=("backend",),  # loader.backend is the backend object; config.backend is its name
)
