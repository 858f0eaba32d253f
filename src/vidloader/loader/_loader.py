"""VideoLoader, the public face. A pass reads top-down in ``__iter__``: this epoch's plan -> decode
(``_decode``) -> assemble (``_assemble``) -> hand off (``_handoff``, which keeps the caller's position), the
plans, counters and saved state kept in ``_state``.
Its keywords, the Args of its docstring and its read-only attributes are made from LoaderConfig's fields
(``_config``, through ``expose_options``)."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from .._errors import ConfigError
from .._option import expose_options
from .._seed import resume_seed
from .._validate import check_int
from ..backends import Backend, resolve_backend
from ..dataset import VideoDataset, store_stats
from ..sampling import ClipPlan, ClipSpec, plan_epoch
from . import _handoff
from ._assemble import Assembler
from ._audio_batch import AudioBatcher, audio_samples
from ._batch import ClipBatch
from ._config import LoaderConfig, loader_config
from ._decode import Decoder
from ._handoff import EpochCursor, Handoff, Prefetcher
from ._host_memory import HostBuffers
from ._inflight import CollectedBatch
from ._state import (
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
    ``clips_per_video`` independent random clips per video and epoch; ``"without_replacement"`` (with
    ``clip_step``) is torchvision's RandomClipSampler; ``"uniform"`` is evenly spaced clips (as torchvision's
    UniformClipSampler, which ``vidloader.compat.torchvision`` reproduces clip for clip); ``"sliding"``
    every window. Padded frames of short videos are False in ``ClipBatch.frame_mask``.

    With ``worker_type="process"`` every decode worker is a spawned process that first imports the
    calling script again, so the script must build its dataset and loader under
    ``if __name__ == "__main__":``; without that guard the workers stop at once and the pass raises a
    ``ConfigError`` that says so. A store that cannot be reached, or workers that cannot start, end the
    pass with ``StoreUnavailableError`` / ``WorkerPoolError`` under every ``on_error``: ``"skip"`` is for
    bad files only.

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
        self._stats = LoaderStats(cfg)
        # Idle batch buffers kept: as many as can be in flight (submitted ahead, queued, the caller's).
        self._host = HostBuffers(keep=2 * cfg.prefetch + 2)
        self._plans = EpochPlans(cfg, self.rank_plan)
        self._prefetchers: set[Prefetcher] = set()  # passes still running ahead of their callers

    # ---- iteration -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ClipBatch]:
        """One pass over the next epoch (from a loaded state's position when one is pending).

        Raises:
            DecodeError: a clip failed under on_error="raise" (names the file and the reason).
            SkipBudgetError: under on_error="skip", the pass lost more clips than ``max_skip_fraction``
                allows, or more than ``max_consecutive_failures`` files failed in a row.
            ConfigError: clips of one batch differ in frame size and there is no transform to take them;
                or the script has no ``if __name__ == "__main__":`` guard (process workers).
            StoreUnavailableError: the store of the videos cannot be reached (names its endpoint).
            WorkerPoolError: the decode worker processes die while starting.
        """
        epoch, start = self._cursor.begin()
        plan = self._plan(epoch)
        b, n_batches = self.config.batch_size, self._num_batches(len(plan))
        batches = plan.batches(b, start, n_batches)
        self._stats.begin_pass(epoch, max(min(len(plan), n_batches * b) - start * b, 0), self.dataset)
        cfg, stop = self.config, self._pool.new_stop()  # process workers read it too
        adds: collections.deque[Counter[str]] = collections.deque()  # of batches made, not yet delivered
        handoff = Handoff(_handoff.streams_for(cfg.device))
        delivered = _handoff.deliver(
            self._make(epoch, start, batches, handoff, stop, adds),
            handoff=handoff,
            cursor=self._cursor,
            stop=stop,
            prefetch=0 if cfg.inline else cfg.prefetch,
            join_timeout=cfg.decode_timeout,
            prefetchers=self._prefetchers,
        )
        with contextlib.closing(delivered):  # however this pass ends, its producer is stopped
            for batch in delivered:
                self._stats.delivered(adds.popleft())  # made in this order: one producer, one FIFO queue
                yield batch
        self._stats.end_pass()
        self._cursor.end()

    def _make(
        self,
        epoch: int,
        start: int,
        batches: Sequence[list[ClipSpec]],
        handoff: Handoff,
        stop: threading.Event,
        adds: collections.deque[Counter[str]],
    ) -> Generator[_handoff.Made, None, None]:
        """Each batch of the pass decoded and assembled on the side stream: (position after it, batch, the
        event that marks it made), and in ``adds`` what it adds to the counters once the caller has it. The
        backend is the one set when the pass starts."""
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

        def build(collected: CollectedBatch) -> tuple[ClipBatch, Counter[str]] | None:
            return assembler(epoch, decoder.finish(collected))

        with contextlib.suppress(Stopped):
            for collected in decoder.run(batches, first=start):
                made, event = handoff.make(build, collected)
                if made is not None:
                    adds.append(made[1])
                    yield collected.index + 1, made[0], event

    # ---- plan ----------------------------------------------------------------------------------------

    def _plan(self, epoch: int) -> ClipPlan:
        return self._plans.plan(epoch)

    def rank_plan(self, epoch: int, rank: int, world_size: int) -> ClipPlan:
        """The clips ``rank`` of ``world_size`` yields in ``epoch`` as the epoch starts: ``plan_epoch`` of the
        dataset under this loader's options and seed. Iteration, ``num_clips``, ``clip_plan`` and resuming
        (an elastic resume deals the rest of an epoch from it) all build on this; a subclass that places
        clips otherwise overrides it (``vidloader.compat.torchvision.DataLoader`` does).

        Args:
            epoch: the epoch.
            rank: a rank.
            world_size: the number of ranks.

        Returns:
            That rank's clips, in order.
        """
        cfg = self.config
        return plan_epoch(self.dataset, cfg, seed=cfg.seed, epoch=epoch, rank=rank, world_size=world_size)

    def _num_batches(self, n_clips: int) -> int:
        b = self.config.batch_size
        return n_clips // b if self.config.drop_last else -(-n_clips // b)

    @property
    def _current_epoch(self) -> int:
        """The epoch being iterated while a pass runs, else the next one."""
        return self._cursor.epoch if self._cursor.in_epoch else self._cursor.next_epoch

    @property
    def num_clips(self) -> int:
        """Clips this rank yields in the current epoch (the one being iterated, else the next one) at this
        world size, counting every clip of the epoch from its start: also those a resume skips (at the same
        world size or another) or ``on_error="skip"`` drops; views of a multi-view transform are not counted
        (a batch has ``num_views`` rows per clip)."""
        return len(self._plans.plan(self._current_epoch, whole=True))

    def __len__(self) -> int:
        """Batches in the current epoch (the one being iterated, else the next one): ``ceil(num_clips /
        batch_size)``, or the floor with ``drop_last``. Like ``torch.utils.data.DataLoader``'s, whose length
        is its sampler's, it counts the whole epoch at this world size and does not change during a pass:
        a pass resumed mid-epoch yields fewer batches (the rest of the epoch), after a resume at the same
        world size and after an elastic one alike."""
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
        are now (the state of any rank will do: they are equal). A loader that drew its seed (``seed=None``)
        takes the state's.

        Raises:
            StateMismatchError: the state is not a loader state, or was saved under another sampling, a seed
                other than the one given, batching or dataset (the message names the field).
        """
        config = resume_seed(self.config, state)  # a drawn seed gives way to the saved one
        point = check_state(
            state, config=config.state_fields(), dataset=self._dataset_fp, world_size=config.world_size
        )
        if config is not self.config:
            self.config, self._plans = config, EpochPlans(config, self.rank_plan)
        self._plans.resume(point.epoch, point.stages)
        self._cursor.load(point.epoch, point.batches_yielded)

    @property
    def stats(self) -> dict[str, Any]:
        """JSON-serialisable counters: clips, batches, skipped files and clips with reasons, damaged files
        (served with the frames that decode), fallbacks, shared decodes (``clips_decoded_ahead``: clips an
        earlier batch's pass decoded), clips without audio, decodes abandoned past their deadline, short
        videos, remote-store reads, and the current (or last) pass's skip budget (``skip_budget``: its
        epoch, the clips it planned, lost and may lose). ``clips``, ``batches``, ``padded_*`` and
        ``clips_without_audio`` count what the caller has received; failures count when they happen."""
        extra = {
            "short_video": self.config.short_video,
            "short_videos": self._short_videos,
            # Remote reads of this process (range requests, bytes, retries); process workers count in theirs.
            "store": store_stats(),
        }
        return self._stats.to_json(
            backend=self.backend.name,
            skipped_files=[s.to_json() for s in self.dataset.skipped],
            short=extra,
            damaged_files=[d.to_json() for d in self.dataset.damaged],
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
