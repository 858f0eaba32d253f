"""Assembler: a batch's decoded clips -> uint8 frames on the device -> transform (or layout and dtype) ->
ClipBatch. Frames DALI decodes are born on the device, one DALI call per batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._errors import DecodeError
from ..backends import DALIBackend, PreparedClip, output_size
from ..dataset import VideoDataset
from ..ops import RaggedClips
from ..sampling import ClipSpec, clip_seed
from ._audio import AudioBatcher, split_audio
from ._batch import ClipBatch
from ._config import LoaderConfig
from ._host_buffers import HostBuffers
from ._ragged import mixed_shape_error, ragged_frames
from ._scheduler import DecodedBatch
from ._short import frame_mask
from ._stats import LoaderStats

_PERMUTE = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 4, 1, 2, 3), "NTCHW": (0, 1, 4, 2, 3)}
_TO_NTHWC = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 2, 3, 4, 1), "NTCHW": (0, 1, 3, 4, 2)}


def decode_isolating(
    backend: DALIBackend, clips: list[PreparedClip], resize: Any, fail: Callable[[int, DecodeError], None]
) -> tuple[list[int], torch.Tensor | None]:
    """Decode ``clips`` in one DALI call; if that fails, split the batch in halves (recursively) to find
    the clips that fail alone, keeping every half that decodes.

    A healthy batch costs exactly one ``decode_batch`` call; one bad clip among B costs about
    ``1 + 2 log2 B``. ``fail(i, err)`` is told of each clip that fails alone (it may raise).

    Returns:
        The positions that decoded, in order, and their frames (None when none did).
    """

    def run(lo: int, hi: int) -> list[tuple[range, torch.Tensor]]:
        try:
            return [(range(lo, hi), backend.decode_batch(clips[lo:hi], resize=resize))]
        except DecodeError as exc:
            if hi - lo == 1:
                fail(lo, DecodeError(clips[lo].path, exc.reason))
                return []
            mid = (lo + hi) // 2
            return run(lo, mid) + run(mid, hi)

    parts = run(0, len(clips))
    kept = [i for r, _ in parts for i in r]
    if not parts:
        return kept, None
    return kept, parts[0][1] if len(parts) == 1 else torch.cat([t for _, t in parts])


class Assembler:
    """Makes ClipBatches for one pass (one backend).

    Args:
        config: the loader's options.
        dataset: the videos (labels, paths for messages, frame sizes for buffers).
        backend: the pass's backend (DALI batches are decoded here).
        audio: the loader's audio batcher, or None.
        stats: counters and the on_error policy.
        host: where host batch buffers come from (recycled once nothing refers to a batch).
    """

    def __init__(
        self,
        *,
        config: LoaderConfig,
        dataset: VideoDataset,
        backend: Any,
        audio: AudioBatcher | None,
        stats: LoaderStats,
        host: HostBuffers,
    ) -> None:
        self.config, self.dataset, self.backend, self.audio, self.stats = (
            config,
            dataset,
            backend,
            audio,
            stats,
        )
        self.host = host
        # A transform takes NTHWC; without one, workers write straight into the output layout.
        self.layout = "NTHWC" if config.transform is not None else config.layout

    def buffers(self, clips: list[ClipSpec]) -> tuple[torch.Tensor | None, list[np.ndarray | None]]:
        """A host batch buffer that thread workers fill in place, already in the output layout (pinned for
        CUDA), and each clip's row of it as a [T, H, W, C] view; (None, [None...]) where workers cannot.

        Saves a stack, a copy and a layout permute per batch. Not for process workers (separate memory) or
        DALI (frames are born on the device). The memory is new or recycled from a batch nothing refers to
        any more (``HostBuffers``): a batch the caller still holds is never written."""
        cfg = self.config
        none: list[np.ndarray | None] = [None] * len(clips)
        if isinstance(self.backend, DALIBackend) or (cfg.num_workers > 0 and cfg.worker_type == "process"):
            return None, none
        sizes = {
            output_size(self.dataset[c.video_index], cfg.resize, apply_rotation=cfg.apply_rotation)
            for c in clips
        }
        if len(sizes) != 1:
            return None, none  # mixed sizes: packed ragged (or reported) by the assembly step
        (h, w), t = sizes.pop(), cfg.sampling.frames_per_clip
        dims = {"T": t, "H": h, "W": w, "C": 3}
        shape = (len(clips), *(dims[k] for k in self.layout[1:]))
        buf = self.host.take(shape, pin=cfg.device.type == "cuda")
        order = tuple(d - 1 for d in _TO_NTHWC[self.layout][1:])
        return buf, [buf[i].permute(*order).numpy() for i in range(len(clips))]

    def __call__(self, epoch: int, batch: DecodedBatch) -> tuple[ClipBatch, int] | None:
        """The ClipBatch of a decoded batch and how many clips it holds; None when DALI failed on all."""
        items, spans = split_audio(list(zip(batch.clips, batch.results, strict=True)))
        video: torch.Tensor | RaggedClips | None
        if len({d.shape for _, d in items}) > 1:
            # Mixed frame sizes: a transform gets the clips ragged (each at its own size), else an error.
            if self.config.transform is None:
                paths = [self.dataset[c.video_index].path for c, _ in items]
                raise mixed_shape_error(paths, [tuple(d.shape) for _, d in items])
            video, kept = ragged_frames(
                [d for _, d in items], self.config.device, lambda rows: self._decode_rows(batch, items, rows)
            )
        else:
            video, kept = self._frames_on_device(batch, [d for _, d in items])
        if video is None:
            return None
        clips = [items[i][0] for i in kept]
        timestamps = [items[i][1].timestamps for i in kept]
        audio = audio_mask = None
        if spans is not None and self.audio is not None:
            spans = [spans[i] for i in kept]
            audio, audio_mask = self.audio(spans, self.config.device)
            self.stats.counts["clips_without_audio"] += sum(not s.present for s in spans)
        return self._finish(epoch, clips, timestamps, video, audio, audio_mask), len(clips)

    def _decode_rows(
        self, batch: DecodedBatch, items: list[tuple[ClipSpec, Any]], rows: list[int]
    ) -> tuple[list[int], torch.Tensor | None]:
        """One DALI call for the PreparedClips at ``rows`` (bisected on failure): the rows kept, frames."""

        def fail(k: int, err: DecodeError) -> None:
            self.stats.fail(batch.clips[rows[k]], err)

        kept, frames = decode_isolating(self.backend, [items[i][1] for i in rows], self.config.resize, fail)
        return [rows[k] for k in kept], frames

    def _frames_on_device(
        self, batch: DecodedBatch, items: list[Any]
    ) -> tuple[torch.Tensor | None, list[int]]:
        """uint8 [B', T, H, W, C] on the device and the positions of ``items`` it holds: DALI's output as
        it is when every clip went through DALI (zero-copy), else host frames through one pinned buffer
        with DALI rows copied in on the device."""
        device = self.config.device
        if batch.buffer is not None:
            buf = batch.buffer
            if len(batch.rows) != buf.shape[0]:
                buf = buf[batch.rows]  # some clips failed under on_error="skip": a copy of the others
            video = buf.to(device, non_blocking=True)
            # An NTHWC view; _finish's permute to the output layout then lands on the buffer's own memory
            # order, so no copy happens there.
            return video.permute(*_TO_NTHWC[self.layout]), list(range(len(items)))
        prepared = [i for i, d in enumerate(items) if isinstance(d, PreparedClip)]
        dali_video = None
        failed: set[int] = set()
        if prepared:

            def fail(k: int, err: DecodeError) -> None:
                failed.add(prepared[k])
                self.stats.fail(batch.clips[prepared[k]], err)

            _, dali_video = decode_isolating(
                self.backend, [items[i] for i in prepared], self.config.resize, fail
            )
        kept = [i for i in range(len(items)) if i not in failed]
        if not kept:
            return None, []
        dali_rows = [r for r, i in enumerate(kept) if i in set(prepared)]
        if dali_video is not None and len(dali_rows) == len(kept):
            return dali_video, kept
        host = self.host.take((len(kept), *items[kept[0]].shape), pin=device.type == "cuda")
        host_np = host.numpy()
        for r, i in enumerate(kept):
            if not isinstance(items[i], PreparedClip):
                host_np[r] = items[i].frames
        video = host.to(device, non_blocking=True)
        if dali_video is not None:
            video[dali_rows] = dali_video.to(device)
        return video, kept

    def _finish(
        self,
        epoch: int,
        clips: list[ClipSpec],
        timestamps: list[tuple[float, ...]],
        video: torch.Tensor | RaggedClips,
        audio: torch.Tensor | None,
        audio_mask: torch.Tensor | None,
    ) -> ClipBatch:
        cfg = self.config
        labels = torch.tensor([self.dataset[c.video_index].label for c in clips], dtype=torch.int64)
        meta = {
            "video_index": torch.tensor([c.video_index for c in clips], dtype=torch.int64),
            "clip_index": torch.tensor([c.clip_index for c in clips], dtype=torch.int64),
            "frame_index": torch.tensor([c.frame_indices for c in clips], dtype=torch.int64),
            "timestamp": torch.tensor(np.array(timestamps, dtype=np.float64)),
            "frame_mask": frame_mask(clips),
        }
        self.stats.counts["padded_clips"] += sum(c.padded > 0 for c in clips)
        self.stats.counts["padded_frames"] += sum(c.padded for c in clips)
        views = 1
        if cfg.transform is not None:
            seeds = [clip_seed(cfg.seed, epoch, c.video_index, c.clip_index) for c in clips]
            video = cfg.transform(video, seeds=seeds)
            views = int(getattr(cfg.transform, "num_views", 1))
        else:
            if isinstance(video, RaggedClips):  # refused in __call__: without a transform sizes must agree
                raise TypeError("a ragged batch needs a transform")
            video = video.permute(*_PERMUTE[cfg.layout])
            if cfg.dtype != torch.uint8:
                # Float output is scaled to [0, 1]; normalisation belongs to a transform.
                video = video.to(cfg.dtype).div_(255)
            video = video.contiguous()
        view_index = None
        if views > 1:
            meta = {k: v.repeat_interleave(views, dim=0) for k, v in meta.items()}
            labels = labels.repeat_interleave(views)
            view_index = torch.arange(views).repeat(len(clips))
            if audio is not None and audio_mask is not None:
                audio, audio_mask = audio.repeat_interleave(views, 0), audio_mask.repeat_interleave(views)
        mask = meta.pop("frame_mask").to(cfg.device, non_blocking=True)
        return ClipBatch(
            video=video,
            label=labels.to(cfg.device, non_blocking=True),
            frame_mask=mask,
            view_index=view_index,
            audio=audio,
            audio_mask=audio_mask,
            **meta,
        )
