"""The assemble stage: a batch's decoded frames -> one uint8 batch on the device (stacked, or packed as
RaggedClips when frame sizes differ) -> transform (or layout and dtype) -> ClipBatch with its bookkeeping,
and its clips' audio spans (decoded by the workers at their source rate) -> fixed-length waveforms or
log-mel features on the device (AudioBatcher).

Clips of mixed frame sizes (mixed datasets) go to the transform as RaggedClips: it crops and resizes each
clip from its own decoded size into its slot of the fixed-size batch
(``vidloader.ops.clip_resized_crop_normalize_ragged``), so nothing is stretched to a common size first.
Without a transform there is no geometry to apply and the batch cannot be stacked: that is a ConfigError
saying what to pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from .._errors import ConfigError
from ..dataset import VideoDataset
from ..ops import RaggedClips
from ..sampling import ClipSpec, clip_seed
from ._audio_batch import AudioBatcher
from ._batch import ClipBatch, frame_mask
from ._config import LoaderConfig
from ._inflight import TO_NTHWC, DecodedBatch
from ._state import LoaderStats

_PERMUTE = {"NTHWC": (0, 1, 2, 3, 4), "NCTHW": (0, 4, 1, 2, 3), "NTCHW": (0, 1, 4, 2, 3)}


class Assembler:
    """Makes the ClipBatches of one pass.

    Args:
        config: the loader's options.
        dataset: the videos (labels, paths for messages).
        audio: the loader's audio batcher, or None.
        stats: counters.
    """

    def __init__(
        self, *, config: LoaderConfig, dataset: VideoDataset, audio: AudioBatcher | None, stats: LoaderStats
    ) -> None:
        self.config, self.dataset, self.audio, self.stats = config, dataset, audio, stats

    def __call__(self, epoch: int, batch: DecodedBatch) -> tuple[ClipBatch, Counter[str]] | None:
        """The ClipBatch of a decoded batch and what it adds to the counters once the caller receives it;
        None (counted as skipped) when no clip decoded.

        Raises:
            ConfigError: the clips differ in frame size and there is no transform to take them.
            SkipBudgetError: with this batch's failures the pass lost more than on_error="skip" allows.
        """
        self.stats.settle(len(batch.clips))
        if not batch.clips:  # every clip failed under on_error="skip"
            self.stats.counts["skipped_batches"] += 1
            return None
        clips = batch.clips
        adds = Counter(batches=1, clips=len(clips), padded_clips=sum(c.padded > 0 for c in clips))
        adds["padded_frames"] = sum(c.padded for c in clips)
        video = self._video(batch)
        audio = audio_mask = None
        if batch.audio is not None and self.audio is not None:
            audio, audio_mask = self.audio(batch.audio, self.config.device)
            adds["clips_without_audio"] = sum(not s.present for s in batch.audio)
        return self._clip_batch(epoch, clips, batch.timestamps, video, audio, audio_mask), adds

    def _video(self, batch: DecodedBatch) -> torch.Tensor | RaggedClips:
        """uint8 NTHWC frames on the device: the batch tensor moved over, with the clips decoded elsewhere
        copied in on the device; or, for mixed sizes, RaggedClips (with a transform to take them)."""
        device = self.config.device
        if batch.video is not None:
            # Moved in its own memory order (one copy), then seen as NTHWC: the permute to the output layout
            # later lands back on that order, so no copy happens there.
            video = batch.video.to(device, non_blocking=True).permute(*TO_NTHWC[batch.layout])
            for i, f in enumerate(batch.frames):
                if f.device != batch.video.device:
                    video[i].copy_(f)
            return video
        if self.config.transform is None:
            paths = [self.dataset[c.video_index].path for c in batch.clips]
            raise mixed_shape_error(paths, [tuple(f.shape) for f in batch.frames])
        return ragged_frames(batch.frames, device)

    def _clip_batch(
        self,
        epoch: int,
        clips: list[ClipSpec],
        timestamps: list[tuple[float, ...]],
        video: torch.Tensor | RaggedClips,
        audio: torch.Tensor | None,
        audio_mask: torch.Tensor | None,
    ) -> ClipBatch:
        cfg = self.config
        meta = {
            "video_index": torch.tensor([c.video_index for c in clips], dtype=torch.int64),
            "clip_index": torch.tensor([c.clip_index for c in clips], dtype=torch.int64),
            "frame_index": torch.tensor([c.frame_indices for c in clips], dtype=torch.int64),
            "timestamp": torch.tensor(np.array(timestamps, dtype=np.float64)),
            "frame_mask": frame_mask(clips),
            "label": torch.tensor([self.dataset[c.video_index].label for c in clips], dtype=torch.int64),
        }
        video, views = self._model_input(epoch, clips, video)
        view_index = None
        if views > 1:
            meta = {k: v.repeat_interleave(views, dim=0) for k, v in meta.items()}
            view_index = torch.arange(views).repeat(len(clips))
            if audio is not None and audio_mask is not None:
                audio, audio_mask = audio.repeat_interleave(views, 0), audio_mask.repeat_interleave(views)
        return ClipBatch(
            video=video,
            label=meta.pop("label").to(cfg.device, non_blocking=True),
            frame_mask=meta.pop("frame_mask").to(cfg.device, non_blocking=True),
            view_index=view_index,
            audio=audio,
            audio_mask=audio_mask,
            **meta,
        )

    def _model_input(
        self, epoch: int, clips: list[ClipSpec], video: torch.Tensor | RaggedClips
    ) -> tuple[torch.Tensor, int]:
        """The transform's output (and its views per clip), or the frames in the output layout and dtype."""
        cfg = self.config
        transform = cfg.clip_transform
        if transform is not None:
            seeds = [clip_seed(cfg.seed, epoch, c.video_index, c.clip_index) for c in clips]
            return transform(video, seeds=seeds), int(getattr(transform, "num_views", 1))
        if isinstance(video, RaggedClips):  # refused in _video: without a transform sizes must agree
            raise TypeError("a ragged batch needs a transform")
        video = video.permute(*_PERMUTE[cfg.layout])
        if cfg.dtype != torch.uint8:
            # Float output is scaled to [0, 1]; normalisation belongs to a transform.
            video = video.to(cfg.dtype).div_(255)
        return video.contiguous(), 1


def mixed_shape_error(paths: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> ConfigError:
    """The error for a batch of mixed frame sizes when the loader has no transform to hand them to."""
    first = shapes[0]
    k = next(i for i, s in enumerate(shapes) if s != first)
    return ConfigError(
        f"clips in one batch differ in shape: {paths[0]} gives {first[1:3]} (H, W) but {paths[k]} gives "
        f"{shapes[k][1:3]}; without a transform the loader can only stack equal frames. Pass a transform "
        "(e.g. transform=vidloader.transforms.TrainClipTransform(size=112) or EvalClipTransform(size=112)), "
        "which crops and resizes every clip from its own size, or resize=(height, width) to stretch every "
        "video to one size (resize=<short side> keeps aspect ratios, so it does not make mixed ones equal)"
    )


def ragged_frames(frames: Sequence[torch.Tensor], device: torch.device) -> RaggedClips:
    """Clips of different frame sizes as RaggedClips on ``device`` (clip ``i`` at its own ``(H_i, W_i)``):
    frames on the host through one packed buffer (pinned for CUDA) and one transfer, frames already on the
    GPU copied into their slots there.

    Raises:
        ConfigError: the clips have different frame counts (a sampling bug, never user data).
    """
    lengths = {f.shape[0] for f in frames}
    if len(lengths) != 1:
        raise ConfigError(f"clips in one batch have different frame counts {sorted(lengths)}")
    sizes = [(int(f.shape[1]), int(f.shape[2])) for f in frames]
    frames_per_clip = lengths.pop()
    on_gpu = [f.is_cuda for f in frames]
    if all(on_gpu):  # frames born on the device: nothing to send from the host
        out = RaggedClips.empty(sizes, frames_per_clip, device=device)
    else:
        host = RaggedClips.empty(sizes, frames_per_clip, pin_memory=device.type == "cuda")
        for j, f in enumerate(frames):
            if not on_gpu[j]:
                host.clip(j).copy_(f)
        out = host.to(device, non_blocking=True)
    for j, f in enumerate(frames):
        if on_gpu[j]:
            out.clip(j).copy_(f)
    return out
