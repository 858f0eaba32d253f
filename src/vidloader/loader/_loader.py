"""VideoLoader: the public face: options, plans, state and stats; each pass runs in ``_pass``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .._errors import ConfigError
from .._validate import check_int
from ..backends import AudioSpec, resolve_backend
from ..dataset import VideoDataset, store_stats
from ..sampling import ClipPlan, ClipSpec, ShortVideo
from ._audio import AudioBatcher, audio_samples
from ._batch import ClipBatch
from ._config import ConfigAttributes, LoaderConfig, OnError, WorkerType
from ._host_buffers import HostBuffers
from ._pass import PassParts, run_pass
from ._plans import EpochPlans
from ._pool import DecodePool
from ._prefetch import Prefetcher
from ._short import short_videos
from ._state import EpochCursor, check_state, dataset_fingerprint, make_state
from ._stats import LoaderStats

log = logging.getLogger("vidloader")


class VideoLoader(ConfigAttributes):
    """Iterate batches of decoded clips (``ClipBatch``) on a device, prefetched, sharded and resumable.

    Each pass (``for batch in loader``) yields the clips of one epoch's plan as ClipBatch objects, which
    unpack as ``video, label, video_index``. Every argument but ``dataset`` is keyword-only.
    ``len(loader)`` is the number of batches of the current epoch (stable during a pass) and
    ``loader.num_clips`` its clips; ``state_dict()`` / ``load_state_dict()`` resume mid-epoch.

    Args:
        dataset: the videos (``VideoDataset.from_folder`` / ``from_manifest`` / ``from_paths``).
        batch_size: clips per batch (rows are ``batch_size * num_views`` with a multi-view transform).
        frames_per_clip, frame_stride, target_fps, clip_step, sampling, clips_per_video,
            clips_per_video_mode, shuffle: the sampling plan; see ``vidloader.SamplingConfig``. In short:
            ``sampling="random"`` with the default ``clips_per_video_mode="exact"`` gives exactly
            ``clips_per_video`` independent random clips per video and epoch; ``"without_replacement"`` is
            torchvision's RandomClipSampler (at most ``clips_per_video`` distinct windows every
            ``clip_step`` frames); ``"uniform"`` is evenly spaced clips (torchvision's
            UniformClipSampler); ``"sliding"`` every window.
        seed: base of every random choice (clip positions, shuffling, per-clip transform seeds).
        drop_last: leave out a last, smaller batch.
        device: where batches are delivered: "cpu" or "cuda[:N]".
        backend: "auto" (DALI on CUDA when it can run, else PyAV), "pyav" or "dali".
        output_layout: "NCTHW" (default), "NTCHW" or "NTHWC" without a transform; with one it must be None or
            the transform's own ``layout`` (the transform decides; anything else is refused).
        dtype: torch.uint8, or a float type (scaled to [0, 1]), without a transform; with one it must be
            uint8 (the default) or the transform's ``out_dtype`` (anything else is refused).
        resize: None, a short side (int) or (height, width).
        apply_rotation: apply the rotation in a file's display matrix.
        transform: None, a batched vidloader transform (``TrainClipTransform``, ``EvalClipTransform``, or
            any ``fn(video_u8_BTHWC, *, seeds) -> tensor`` with ``num_views``), or a per-clip callable such
            as a torchvision v2 transform or ``weights.transforms()``, called per clip with uint8
            ``[T, C, H, W]`` on ``device`` (seeded per clip) and stacked; see
            ``vidloader.transforms.as_clip_transform``.
        transform_kind: "auto" (read from the transform's marker or signature, once, here), "batched" or
            "per_clip".
        num_workers: decode workers; 0 decodes one batch at a time with no prefetch thread.
        worker_type: "thread" or "process" (spawned).
        prefetch: batches made ahead of the caller.
        on_error: "raise" a ``DecodeError`` for a clip that fails, or "skip" it (counted in ``stats``).
        decode_timeout: seconds a batch's decode may take (one deadline for the whole batch, counted from
            when the loader starts waiting for it and its workers are up); decodes still running then are
            abandoned, their workers replaced, and their clips fail as a ``DecodeError``; clips that
            could not start because every worker was stuck get a fresh deadline.
        shared_decode: decode clips of one video that one pass serves together (PyAV).
        rank, world_size: this process's shard (default: torch.distributed's, else 0 of 1).
        audio: an ``AudioSpec`` to deliver audio with each clip, or None.
        short_video: "pad" (default), "loop", "skip" or "error": what a video shorter than one clip gives
            (see ``SamplingConfig``); padded frames are False in ``ClipBatch.frame_mask``.

    Raises:
        ConfigError: an option is not allowed (the message names it and the allowed values).
        BackendUnavailableError: backend="dali" cannot run here.
    """

    def __init__(
        self,
        dataset: VideoDataset,
        *,
        batch_size: int,
        frames_per_clip: int,
        frame_stride: int = 1,
        target_fps: float | None = None,
        clip_step: int | None = None,
        sampling: str = "random",
        clips_per_video: int = 1,
        clips_per_video_mode: str = "exact",
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        output_layout: str | None = None,
        dtype: torch.dtype = torch.uint8,
        resize: int | tuple[int, int] | None = None,
        apply_rotation: bool = False,
        transform: Callable[..., torch.Tensor] | None = None,
        transform_kind: str = "auto",
        num_workers: int = 2,
        worker_type: WorkerType = "thread",
        prefetch: int = 2,
        on_error: OnError = "raise",
        decode_timeout: float = 300.0,
        shared_decode: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        audio: AudioSpec | None = None,
        short_video: ShortVideo = "pad",
    ) -> None:
        if not isinstance(dataset, VideoDataset):
            raise ConfigError(f"dataset must be a vidloader.VideoDataset, got {type(dataset).__name__}")
        options = dict(locals())  # every keyword is a LoaderConfig option (or a sampling one)
        del options["self"], options["dataset"]
        self.config = LoaderConfig.from_kwargs(**options)
        self.dataset = dataset
        # Chosen once; replaceable between passes (tests swap in instrumented backends).
        self.backend = resolve_backend(backend, device=self.config.device)
        log.info("vidloader: using backend %s", self.backend.name)
        cfg = self.config
        self._audio = (
            None if audio is None else AudioBatcher(audio, audio_samples(audio, cfg.sampling, dataset))
        )
        self._short_videos = short_videos(dataset, cfg.sampling)
        self._pool = DecodePool(num_workers=cfg.num_workers, worker_type=cfg.worker_type)
        self._dataset_fp = dataset_fingerprint(dataset.fingerprint_items())
        self._cursor = EpochCursor()
        self._stats = LoaderStats(on_error=cfg.on_error)
        # Idle batch buffers kept: as many as can be in flight (submitted ahead, queued, the caller's).
        self._host = HostBuffers(keep=2 * cfg.prefetch + 2)
        self._plans = EpochPlans(self.config)
        self._prefetchers: set[Prefetcher] = set()  # passes still running ahead of their callers

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
            "short_video": self.config.sampling.short_video,
            "short_videos": len(self._short_videos),
            # Remote reads of this process (range requests, bytes, retries); process workers count in theirs.
            "store": store_stats(),
        }
        return self._stats.to_json(
            backend=self.backend.name, skipped_files=[s.to_json() for s in self.dataset.skipped], short=extra
        )

    # ---- iteration -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ClipBatch]:
        """One pass over the next epoch (from a loaded state's position when one is pending).

        Raises:
            DecodeError: a clip failed under on_error="raise" (names the file and the reason).
            ConfigError: clips of one batch differ in frame size and there is no transform to take them.
        """
        epoch, start = self._cursor.begin()
        plan = self._plan(epoch)
        b = self.config.batch_size
        batches = plan.batches(b, start, self._num_batches(len(plan)))  # each made when it is submitted
        parts = PassParts(
            config=self.config,
            dataset=self.dataset,
            backend=self.backend,
            audio=self._audio,
            stats=self._stats,
            host=self._host,
            pool=self._pool,
        )
        yield from run_pass(parts, epoch, start, batches, cursor=self._cursor, prefetchers=self._prefetchers)
        self._cursor.end()

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
        s, cfg = self.config.sampling, self.config
        return (
            f"VideoLoader(videos={len(self.dataset)}, batch_size={cfg.batch_size}, frames_per_clip={s.frames_per_clip}, "
            f"sampling={s.sampling!r}, backend={self.backend.name!r}, device={str(cfg.device)!r}, "
            f"rank={cfg.rank}/{cfg.world_size})"
        )
