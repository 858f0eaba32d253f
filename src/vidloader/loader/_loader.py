"""VideoLoader: clip plan -> decode (worker pool) -> batch on the device (+ transform), prefetched,
sharded and resumable."""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, Protocol

import numpy as np
import torch

from .._errors import ConfigError, DecodeError, VideoError
from .._validate import check_choice, check_int
from ..backends import (
    AudioSpec,
    DALIBackend,
    DecodedClip,
    PreparedClip,
    PyAVBackend,
    check_resize,
    output_size,
    resolve_backend,
    shared_decode_groups,
)
from ..dataset import VideoDataset
from ..sampling import ClipPlan, ClipSpec, SamplingConfig, clip_seed, plan_epoch, resume_plan
from ._audio import AudioBatcher, audio_samples, split_audio
from ._batch import ClipBatch
from ._pool import WORKER_TYPES, DecodePool, WorkerType
from ._state import check_state, dataset_fingerprint, make_state
from ._tasks import decode_group_task, decode_task, prepare_task

log = logging.getLogger("vidloader")

Layout = Literal["NCTHW", "NTHWC", "NTCHW", "NCHWT"]
LAYOUTS: tuple[str, ...] = ("NCTHW", "NTCHW", "NTHWC")
_PERMUTE = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 4, 1, 2, 3), "NTCHW": (0, 1, 4, 2, 3)}
DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16)
OnError = Literal["raise", "skip"]
_TO_NTHWC = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 2, 3, 4, 1), "NTCHW": (0, 1, 3, 4, 2)}
_END = object()


def _surviving_rows(clips: list[ClipSpec], kept: list[ClipSpec]) -> list[int]:
    """Positions of ``kept`` (an ordered subsequence of ``clips``, by identity: equal clips may repeat)."""
    rows, j = [], 0
    for i, c in enumerate(clips):
        if j < len(kept) and kept[j] is c:
            rows.append(i)
            j += 1
    return rows


def _row_view(buf: torch.Tensor, i: int, layout: str) -> np.ndarray:
    """Row i of a batch buffer as a [T, H, W, C] numpy view (strided when the layout is channel-first)."""
    return buf[i].permute(*(d - 1 for d in _TO_NTHWC[layout][1:])).numpy()


def _member_result(shared: Future, k: int, alone: Callable[[], Future]) -> Any:
    """``_member_future`` for the inline pool, whose futures run when their result is asked for."""
    try:
        return shared.result()[k]
    except VideoError:
        return alone().result()


def _member_future(shared: Future, k: int, alone: Callable[[], Future]) -> Future:
    """Clip ``k`` of a shared decode as a future of its own; if the shared task fails, the clip is decoded
    by itself (``alone()``), so a damaged stretch only fails the clips that really cover it."""
    mine: Future = Future()

    def settle(src: Future, pick: int | None) -> None:
        if mine.done():  # cancelled when its batch was abandoned
            return
        exc = src.exception()
        with contextlib.suppress(InvalidStateError):
            if exc is not None:
                mine.set_exception(exc)
            else:
                mine.set_result(src.result() if pick is None else src.result()[pick])

    def on_shared(src: Future) -> None:
        if src.cancelled() or mine.done():
            return
        if src.exception() is None:
            settle(src, k)
            return
        try:
            retry = alone()
        except RuntimeError as exc:  # the pool is shutting down
            with contextlib.suppress(InvalidStateError):
                mine.set_exception(exc)
            return
        retry.add_done_callback(lambda f: settle(f, None) if not f.cancelled() else mine.cancel())

    shared.add_done_callback(on_shared)
    return mine


class _EmptyBatch(Exception):
    """Every clip of a batch failed under on_error="skip"."""


class ClipTransform(Protocol):
    """What ``transform=`` takes: uint8 [B,T,H,W,C] on the device plus one seed per clip -> model input,
    ``num_views`` rows per clip (clip-major)."""

    num_views: int

    def __call__(self, video: torch.Tensor, *, seeds: list[int]) -> torch.Tensor: ...


def _dist_defaults(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return (dist.get_rank() if rank is None else rank), (
            dist.get_world_size() if world_size is None else world_size
        )
    return (0 if rank is None else rank), (1 if world_size is None else world_size)


class VideoLoader:
    """Iterate clip batches. See the README for the full semantics; every argument is keyword-only."""

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
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        output_layout: str = "NCTHW",
        dtype: torch.dtype = torch.uint8,
        resize: int | tuple[int, int] | None = None,
        apply_rotation: bool = False,
        transform: ClipTransform | None = None,
        num_workers: int = 2,
        worker_type: WorkerType = "thread",
        prefetch: int = 2,
        on_error: OnError = "raise",
        decode_timeout: float = 300.0,
        shared_decode: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        audio: AudioSpec | None = None,
    ) -> None:
        if not isinstance(dataset, VideoDataset):
            raise ConfigError(f"dataset must be a vidloader.VideoDataset, got {type(dataset).__name__}")
        self.dataset = dataset
        self.sampling = SamplingConfig(
            frames_per_clip=frames_per_clip,
            frame_stride=frame_stride,
            target_fps=target_fps,
            clip_step=clip_step,
            sampling=sampling,  # type: ignore[arg-type]
            clips_per_video=clips_per_video,
            shuffle=shuffle,
        )
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        check_int("seed", seed, minimum=0)
        self.seed = seed
        if not isinstance(drop_last, bool):
            raise ConfigError(f"drop_last must be True or False, got {drop_last!r}")
        self.drop_last = drop_last
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            # torch's own error for an unknown device string lists every backend it knows, not ours.
            raise ConfigError(f"device={str(device)!r} is not allowed; choose 'cpu' or 'cuda[:N]'") from None
        if self.device.type not in ("cpu", "cuda"):
            raise ConfigError(f"device={str(device)!r} is not allowed; choose 'cpu' or 'cuda[:N]'")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but torch sees no CUDA device")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.output_layout = check_choice("output_layout", output_layout, LAYOUTS)
        if dtype not in DTYPES:
            raise ConfigError(f"dtype={dtype!r} is not allowed; choose one of {[str(d) for d in DTYPES]}")
        self.dtype = dtype
        self.resize = check_resize(resize)
        self.apply_rotation = bool(apply_rotation)
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform must be callable, got {type(transform).__name__}")
        self.transform = transform
        self.num_workers = check_int("num_workers", num_workers, minimum=0)
        self.worker_type = check_choice("worker_type", worker_type, WORKER_TYPES)
        self.prefetch = check_int("prefetch", prefetch, minimum=1)
        self.on_error = check_choice("on_error", on_error, ("raise", "skip"))
        if not decode_timeout > 0:
            raise ConfigError(f"decode_timeout must be positive seconds, got {decode_timeout!r}")
        self.decode_timeout = float(decode_timeout)
        if not isinstance(shared_decode, bool):
            raise ConfigError(f"shared_decode must be True or False, got {shared_decode!r}")
        # Off: every clip gets its own seek-and-decode (what the benchmark uses to compare per-clip cost).
        self.shared_decode = shared_decode
        self.rank, self.world_size = _dist_defaults(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank={self.rank} must be in [0, world_size={self.world_size})")
        if audio is not None and not isinstance(audio, AudioSpec):
            raise ConfigError(f"audio must be a vidloader.AudioSpec or None, got {type(audio).__name__}")
        self.audio = audio
        self._audio = (
            None if audio is None else AudioBatcher(audio, audio_samples(audio, self.sampling, dataset))
        )
        self.backend = resolve_backend(backend, device=self.device)
        log.info("vidloader: using backend %s", self.backend.name)
        self._pool = DecodePool(num_workers=self.num_workers, worker_type=self.worker_type)
        self._dataset_fp = dataset_fingerprint(dataset.fingerprint_items())
        self._next_epoch = 0
        self._resume_from = 0
        self._epoch = 0
        self._yielded = 0
        # True from a pass's first batch until it runs to its end; a pass left early keeps its position.
        self._in_epoch = False
        self._stats: Counter[str] = Counter()
        self._failed: list[dict[str, str]] = []
        self._failed_paths: set[str] = set()
        self._fallback_paths: set[str] = set()
        self._fallback = PyAVBackend()
        self._plan_cache: tuple[tuple[int, tuple], ClipPlan] | None = None
        # Earlier world-size stages of the epoch a loaded state resumes (elastic restart), by epoch.
        self._stages: tuple[int, tuple[tuple[int, int], ...]] = (0, ())
        self._filled: tuple[torch.Tensor | None, list[int]] = (None, [])

    # ---- plan --------------------------------------------------------------------------------------

    def _stages_of(self, epoch: int) -> tuple[tuple[int, int], ...]:
        return self._stages[1] if self._stages[0] == epoch else ()

    def _plan(self, epoch: int) -> ClipPlan:
        key = (epoch, self._stages_of(epoch))
        if self._plan_cache is None or self._plan_cache[0] != key:

            def plan(rank: int, world_size: int) -> ClipPlan:
                return plan_epoch(
                    self.dataset, self.sampling, seed=self.seed, epoch=epoch, rank=rank, world_size=world_size
                )

            clips = resume_plan(plan, key[1], rank=self.rank, world_size=self.world_size)
            self._plan_cache = (key, ClipPlan.from_specs(clips, self.sampling.frames_per_clip))
        return self._plan_cache[1]

    def _num_batches(self, n_clips: int) -> int:
        return n_clips // self.batch_size if self.drop_last else -(-n_clips // self.batch_size)

    def __len__(self) -> int:
        return self._num_batches(len(self._plan(self._next_epoch)))

    def clip_plan(self, epoch: int | None = None) -> list[ClipSpec]:
        """The clips this rank yields in ``epoch`` (default: the next one), in order."""
        return list(self._plan(self._next_epoch if epoch is None else epoch))

    # ---- epoch & state -------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        check_int("epoch", epoch, minimum=0)
        if epoch != self._next_epoch:
            # A state loaded for this very epoch stays pending: the usual loop calls set_epoch(e) every
            # epoch, also right after load_state_dict.
            self._resume_from = 0
        self._next_epoch = epoch
        self._in_epoch = False

    @property
    def epoch(self) -> int:
        return self._next_epoch

    def _config(self) -> dict[str, Any]:
        cfg = self.sampling.to_json()
        # No world_size: a state resumes at another one (elastic), see _state.py.
        cfg.update(
            seed=self.seed,
            batch_size=self.batch_size,
            drop_last=self.drop_last,
        )
        return cfg

    def state_dict(self) -> dict[str, Any]:
        """Where the caller is: batches already handed over (not those waiting in the prefetch queue), counted
        as the position in the epoch, so batches skipped whole under on_error="skip" count as done."""
        if self._in_epoch:
            epoch, done = self._epoch, self._yielded
        else:
            # Between passes (also after set_epoch or a finished pass): at the start of the next one.
            epoch, done = self._next_epoch, self._resume_from
        return make_state(
            epoch=epoch,
            batches_yielded=done,
            config=self._config(),
            dataset=self._dataset_fp,
            world_size=self.world_size,
            stages=self._stages_of(epoch),
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where ``state`` was saved, also at another world size: then the epoch's clips no rank had
        consumed are dealt to the ranks there are now (the state of any rank will do: they are equal)."""
        point = check_state(
            state, config=self._config(), dataset=self._dataset_fp, world_size=self.world_size
        )
        epoch, done = point.epoch, point.batches_yielded
        self._stages = (epoch, point.stages)
        self._next_epoch = epoch
        self._resume_from = done
        self._epoch, self._yielded = epoch, done
        self._in_epoch = False

    @property
    def stats(self) -> dict[str, Any]:
        """JSON-serialisable counters: clips, batches, skipped files and clips with reasons, fallbacks."""
        return {
            "backend": self.backend.name,
            "clips": self._stats["clips"],
            "batches": self._stats["batches"],
            "fallbacks": self._stats["fallbacks"],
            "shared_decode_clips": self._stats["shared_decode_clips"],
            "skipped_clips": self._stats["skipped_clips"],
            "skipped_batches": self._stats["skipped_batches"],
            "clips_without_audio": self._stats["clips_without_audio"],
            "decode_failures": list(self._failed),
            "skipped_files": [s.to_json() for s in self.dataset.skipped],
        }

    # ---- iteration -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ClipBatch]:
        epoch = self._next_epoch
        start = self._resume_from
        self._resume_from = 0
        self._next_epoch = epoch + 1
        self._epoch, self._yielded = epoch, start
        self._in_epoch = True
        plan = self._plan(epoch)
        n_batches = self._num_batches(len(plan))
        batches = plan.batches(self.batch_size, start, n_batches)  # each made when it is submitted
        produced = self._produce(epoch, batches)
        if self.num_workers == 0:
            for b, batch, _ in produced:
                # The position in the epoch, not a count of deliveries: batches skipped whole under
                # on_error="skip" are done too, and a resume must not replay them (and shift the rest).
                self._yielded = start + b + 1
                yield batch
        else:
            yield from self._threaded(produced, start)
        self._in_epoch = False

    def _threaded(self, produced: Iterator[Any], start: int) -> Iterator[ClipBatch]:
        # Batches are assembled (and copied to the GPU, transformed) on a background thread so that work
        # overlaps the training step; the queue bound is the prefetch depth.
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            # Never block for good: once the caller has gone (stop), nothing will empty the queue.
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run() -> None:
            try:
                for item in produced:
                    if not put(item):
                        return
                put(_END)
            except BaseException as exc:
                put(exc)
            finally:
                # Closed here, on the thread running it: closing a generator that another thread is
                # executing raises "ValueError: generator already executing".
                produced.close()  # type: ignore[attr-defined]

        thread = threading.Thread(target=run, name="vidloader-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                b, batch, event = item
                if event is not None:
                    stream = torch.cuda.current_stream(self.device)
                    stream.wait_event(event)
                    # The tensors were made on the side stream; tell the caching allocator the caller's stream
                    # uses them so their memory is not handed out again while the step still reads it.
                    for t in (batch.video, batch.label, batch.audio, batch.audio_mask):
                        if t is not None and t.is_cuda:
                            t.record_stream(stream)
                self._yielded = start + b + 1
                yield batch
        finally:
            stop.set()
            thread.join(timeout=5)

    def _produce(self, epoch: int, batches: Sequence[list[ClipSpec]]) -> Iterator[Any]:
        futures: dict[int, list[Future]] = {}
        submitted = 0
        side_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

        buffers: dict[int, torch.Tensor | None] = {}

        def submit_upto(limit: int) -> None:
            nonlocal submitted
            while submitted < min(limit, len(batches)):
                clips = batches[submitted]
                buf = buffers[submitted] = self._batch_buffer(clips)
                rows = [
                    _row_view(buf, i, self._buffer_layout) if buf is not None else None
                    for i in range(len(clips))
                ]
                futures[submitted] = self._submit_batch(clips, rows)
                submitted += 1

        try:
            for b, clips in enumerate(batches):
                submit_upto(b + 1 + self.prefetch)
                decoded = self._collect(clips, futures.pop(b))
                self._filled = buffers.pop(b), _surviving_rows(clips, [c for c, _ in decoded])
                if not decoded:
                    self._stats["skipped_batches"] += 1
                    continue
                try:
                    if side_stream is not None:
                        with torch.cuda.stream(side_stream):
                            batch = self._assemble(epoch, decoded)
                            event = torch.cuda.Event()
                            event.record(side_stream)
                    else:
                        batch, event = self._assemble(epoch, decoded), None
                except _EmptyBatch:
                    self._stats["skipped_batches"] += 1
                    continue
                self._stats["batches"] += 1
                self._stats["clips"] += len(decoded)
                yield b, batch, event
        finally:
            for fs in futures.values():
                for f in fs:
                    f.cancel()

    @property
    def _buffer_layout(self) -> str:
        # A transform takes NTHWC; without one, workers write straight into the output layout.
        return "NTHWC" if self.transform is not None else self.output_layout

    def _batch_buffer(self, clips: list[ClipSpec]) -> torch.Tensor | None:
        """A host batch that thread workers fill in place, already in the output layout (pinned for CUDA).

        Saves a stack, a copy and a layout permute per batch, and spreads the layout work over the
        workers. Not for process workers (separate memory) or DALI (frames are born on the device)."""
        if isinstance(self.backend, DALIBackend) or (self.num_workers > 0 and self.worker_type == "process"):
            return None
        sizes = {
            output_size(self.dataset[c.video_index], self.resize, apply_rotation=self.apply_rotation)
            for c in clips
        }
        if len(sizes) != 1:
            return None  # mixed sizes: the assembly step reports them
        (h, w), t = sizes.pop(), self.sampling.frames_per_clip
        dims = {"T": t, "H": h, "W": w, "C": 3}
        shape = (len(clips), *(dims[k] for k in self._buffer_layout[1:]))
        return torch.empty(shape, dtype=torch.uint8, pin_memory=self.device.type == "cuda")

    def _submit_batch(self, clips: list[ClipSpec], rows: list[np.ndarray | None]) -> list[Future]:
        """One future per clip. With the PyAV backend, clips of one video that a single decode pass serves
        (multiview, sliding, several clips per video) share it: one task decodes their union from the
        keyframe once, instead of one seek-and-decode per clip. If the shared task fails, its clips are
        decoded one by one, so errors and skips stay per clip."""
        futures: list[Future | None] = [None] * len(clips)
        by_video: dict[int, list[int]] = {}
        for i, c in enumerate(clips):
            by_video.setdefault(c.video_index, []).append(i)
        for v, idxs in by_video.items():
            info = self.dataset[v]
            groups = [[k] for k in range(len(idxs))]
            if len(idxs) > 1 and self.shared_decode and isinstance(self.backend, PyAVBackend):
                groups = shared_decode_groups(info, [clips[i].frame_indices for i in idxs])
            for group in groups:
                members = [idxs[k] for k in group]
                if len(members) == 1:
                    m = members[0]
                    futures[m] = self._submit(clips[m], out=rows[m])
                    continue
                self._stats["shared_decode_clips"] += len(members)
                shared = self._pool.submit(
                    decode_group_task,
                    self.backend,
                    info,
                    [clips[m].frame_indices for m in members],
                    self.resize,
                    self.apply_rotation,
                    [rows[m] for m in members],
                    self.audio,
                )
                for k, m in enumerate(members):
                    alone = functools.partial(self._submit, clips[m], out=rows[m])
                    if self.num_workers == 0:  # inline pool: everything runs when a result is asked for
                        futures[m] = self._pool.submit(_member_result, shared, k, alone)
                    else:
                        futures[m] = _member_future(shared, k, alone)
        return [f for f in futures if f is not None]

    def _submit(self, clip: ClipSpec, out: np.ndarray | None = None) -> Future:
        info = self.dataset[clip.video_index]
        backend = self.backend
        if isinstance(backend, DALIBackend):
            reason = backend.unsupported_reason(info) if not self.apply_rotation else "apply_rotation=True"
            if reason is None:
                return self._pool.submit(
                    prepare_task, backend, info, clip.frame_indices, self.resize, self.audio
                )
            self._note_fallback(info.path, reason)
            backend = self._fallback
        return self._pool.submit(
            decode_task, backend, info, clip.frame_indices, self.resize, self.apply_rotation, out, self.audio
        )

    def _note_fallback(self, path: str, reason: str) -> None:
        self._stats["fallbacks"] += 1
        if path not in self._fallback_paths:
            self._fallback_paths.add(path)
            log.warning("vidloader: %s decodes on the CPU (PyAV) instead of DALI: %s", path, reason)

    def _collect(self, clips: list[ClipSpec], futures: list[Future]) -> list[tuple[ClipSpec, DecodedClip]]:
        out = []
        for clip, fut in zip(clips, futures, strict=True):
            path = self.dataset[clip.video_index].path
            err: VideoError | None = None
            for retried in (False, True):
                try:
                    out.append((clip, fut.result(timeout=self.decode_timeout)))
                except VideoError as exc:
                    err = exc
                except TimeoutError:
                    err = DecodeError(
                        path, f"decoding took longer than decode_timeout={self.decode_timeout}s"
                    )
                except BrokenProcessPool:
                    err = DecodeError(path, "a decode worker process died while decoding this clip")
                    if not retried:
                        # A dying worker fails every clip in flight in its pool. Decode this one again on
                        # fresh workers (the pool replaces broken ones), so only a clip that kills a worker
                        # by itself is blamed and skipped.
                        err = None
                        fut = self._submit(clip)
                        continue
                break
            if err is None:
                continue
            if self.on_error == "raise":
                raise err
            self._record_failure(clip, err)
        return out

    def _record_failure(self, clip: ClipSpec, err: VideoError) -> None:
        self._stats["skipped_clips"] += 1
        if err.path not in self._failed_paths:
            self._failed_paths.add(err.path)
            log.warning("vidloader: skipping clip of %s: %s", err.path, err.reason)
        if len(self._failed) < 1000:
            self._failed.append(
                {"path": err.path, "reason": err.reason, "frame_index": str(clip.frame_indices[0])}
            )

    def _frames_on_device(
        self, decoded: list[tuple[ClipSpec, Any]]
    ) -> tuple[torch.Tensor, list[tuple[ClipSpec, Any]]]:
        """uint8 [B, T, H, W, C] on the loader's device, and the clips it holds: DALI's output as it is when
        every clip went through DALI (zero-copy), else host frames through one pinned buffer with DALI rows
        copied in on the device."""
        if any(isinstance(d, PreparedClip) for _, d in decoded):
            decoded = self._isolate_dali_failures(decoded)
            if not decoded:
                return torch.empty(0), decoded
        buf, rows = self._filled
        if buf is not None:
            if len(rows) != buf.shape[0]:
                buf = buf[rows]  # some clips failed under on_error="skip"
            video = buf.to(self.device, non_blocking=True)
            # Hand back an NTHWC view; _assemble's permute to the output layout then lands on the
            # buffer's own memory order, so no copy happens there.
            return video.permute(*_TO_NTHWC[self._buffer_layout]), decoded
        prepared = [i for i, (_, d) in enumerate(decoded) if isinstance(d, PreparedClip)]
        if prepared and len(prepared) == len(decoded):
            return self._dali_decode([d for _, d in decoded]), decoded
        shape = (len(decoded), *decoded[0][1].shape)
        host = torch.empty(shape, dtype=torch.uint8, pin_memory=self.device.type == "cuda")
        host_np = host.numpy()
        for i, (_, d) in enumerate(decoded):
            if not isinstance(d, PreparedClip):
                host_np[i] = d.frames
        video = host.to(self.device, non_blocking=True)
        if prepared:
            video[prepared] = self._dali_decode([decoded[i][1] for i in prepared]).to(self.device)
        return video, decoded

    def _dali_decode(self, clips: list[PreparedClip]) -> torch.Tensor:
        assert isinstance(self.backend, DALIBackend)
        return self.backend.decode_batch(clips, resize=self.resize)

    def _isolate_dali_failures(self, decoded: list[tuple[ClipSpec, Any]]) -> list[tuple[ClipSpec, Any]]:
        """Batches decode as one DALI call; when that fails, find the clips that fail alone, so one bad
        file costs its clip (under "skip") or is named exactly (under "raise")."""
        prepared = [d for _, d in decoded if isinstance(d, PreparedClip)]
        try:
            self._dali_decode(prepared)
            return decoded
        except DecodeError:
            pass
        kept = []
        for clip, d in decoded:
            if isinstance(d, PreparedClip):
                try:
                    self._dali_decode([d])
                except DecodeError as exc:
                    err = DecodeError(d.path, exc.reason)
                    if self.on_error == "raise":
                        raise err from exc
                    self._record_failure(clip, err)
                    continue
            kept.append((clip, d))
        return kept

    def _assemble(self, epoch: int, decoded: list[tuple[ClipSpec, Any]]) -> ClipBatch:
        decoded, spans = split_audio(decoded)
        shapes = {d.shape for _, d in decoded}
        if len(shapes) > 1:
            (c0, d0), other = decoded[0], next((c, d) for c, d in decoded if d.shape != decoded[0][1].shape)
            raise ConfigError(
                f"clips in one batch differ in shape: {self.dataset[c0.video_index].path} gives {d0.shape[1:3]} "
                f"(H, W) but {self.dataset[other[0].video_index].path} gives {other[1].shape[1:3]}; "
                "pass resize=(height, width) or resize=<short side> to VideoLoader"
            )
        before = [c for c, _ in decoded]
        video, decoded = self._frames_on_device(decoded)
        if not decoded:
            raise _EmptyBatch
        clips = [c for c, _ in decoded]
        audio = audio_mask = None
        if spans is not None and self._audio is not None:
            # Clips DALI failed on under on_error="skip" are gone from `decoded`; their audio goes too.
            spans = [spans[i] for i in _surviving_rows(before, clips)]
            audio, audio_mask = self._audio(spans, self.device)
            self._stats["clips_without_audio"] += sum(not s.present for s in spans)
        labels = torch.tensor([self.dataset[c.video_index].label for c in clips], dtype=torch.int64)
        meta = {
            "video_index": torch.tensor([c.video_index for c in clips], dtype=torch.int64),
            "clip_index": torch.tensor([c.clip_index for c in clips], dtype=torch.int64),
            "frame_index": torch.tensor([c.frame_indices for c in clips], dtype=torch.int64),
            "timestamp": torch.tensor(np.array([d.timestamps for _, d in decoded], dtype=np.float64)),
        }
        views = 1
        if self.transform is not None:
            seeds = [clip_seed(self.seed, epoch, c.video_index, c.clip_index) for c in clips]
            video = self.transform(video, seeds=seeds)
            views = int(getattr(self.transform, "num_views", 1))
        else:
            video = video.permute(*_PERMUTE[self.output_layout])
            if self.dtype != torch.uint8:
                # Float output is scaled to [0, 1]; normalisation belongs to a transform.
                video = video.to(self.dtype).div_(255)
            video = video.contiguous()
        view_index = None
        if views > 1:
            meta = {k: v.repeat_interleave(views, dim=0) for k, v in meta.items()}
            labels = labels.repeat_interleave(views)
            view_index = torch.arange(views).repeat(len(clips))
            if audio is not None and audio_mask is not None:
                audio, audio_mask = audio.repeat_interleave(views, 0), audio_mask.repeat_interleave(views)
        return ClipBatch(
            video=video,
            label=labels.to(self.device, non_blocking=True),
            view_index=view_index,
            audio=audio,
            audio_mask=audio_mask,
            **meta,
        )

    def close(self) -> None:
        self._pool.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close()

    def __repr__(self) -> str:
        s = self.sampling
        return (
            f"VideoLoader(videos={len(self.dataset)}, batch_size={self.batch_size}, frames_per_clip={s.frames_per_clip}, "
            f"sampling={s.sampling!r}, backend={self.backend.name!r}, device={str(self.device)!r}, "
            f"rank={self.rank}/{self.world_size})"
        )
