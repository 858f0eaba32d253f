"""torchvision's video-classification data API (``Kinetics``, clip samplers, ``DataLoader``) over VideoLoader,
so a torchvision training script switches by changing its imports and constructor names only."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from .._errors import ConfigError
from ..dataset import VideoDataset
from ..loader import ClipBatch, VideoLoader
from ..sampling import SamplingConfig, clip_counts

KINETICS_VERSIONS = ("400", "600", "700")
OUTPUT_FORMATS = ("TCHW", "THWC")


class VideoClips:
    """The clip grid torchvision's samplers are built on: ``frames_per_clip`` frames at ``frame_rate`` (None:
    the native rate), a window every ``step_between_clips`` of those frames, over ``videos``."""

    def __init__(
        self, videos: VideoDataset, frames_per_clip: int, step_between_clips: int, frame_rate: float | None
    ) -> None:
        self.videos = videos
        self.frames_per_clip = frames_per_clip
        self.step_between_clips = step_between_clips
        self.frame_rate = frame_rate

    def sampling(self, **choice: Any) -> SamplingConfig:
        """The grid plus a clip choice as a SamplingConfig (the grid's step only where the choice picks among
        its windows: a loader refuses a step that has no effect)."""
        cfg = SamplingConfig(frames_per_clip=self.frames_per_clip, target_fps=self.frame_rate, **choice)
        return replace(cfg, clip_step=self.step_between_clips) if cfg.windowed else cfg

    def num_clips(self) -> int:
        """Windows on the grid over all videos (a video shorter than a clip counts one padded window;
        torchvision drops such videos)."""
        cfg = self.sampling(sampling="sliding", shuffle=False)
        return int(clip_counts(self.videos, cfg).sum())


class Kinetics:
    """``torchvision.datasets.Kinetics`` for vidloader: ``root/<split>/<class>/<video>``, clips on a grid.

    Indexes the videos (no decoding); ``DataLoader`` decodes. ``samples``, ``classes``, ``class_to_idx``,
    ``transform`` and ``video_clips`` are there as torchvision has them, and ``len()`` is the number of
    windows on the grid. Items come in batches, not by ``dataset[i]``: ``(video, audio, label,
    video_idx)`` per clip when a ``collate_fn`` asks for them (the reference scripts'
    ``KineticsWithVideoId`` items; audio is an empty ``[1, 0]`` tensor).

    Args:
        root: the folder holding ``split``.
        frames_per_clip: frames in a clip.
        num_classes: "400", "600" or "700" (only checked; nothing is downloaded).
        split: the sub-folder, e.g. "train" or "val".
        frame_rate: sample clips at this rate (vidloader's ``target_fps``); None keeps every frame.
        step_between_clips: frames between window starts (vidloader's ``clip_step``).
        transform: a per-clip callable (torchvision transforms, the reference presets) or a vidloader
            batched transform; see ``VideoLoader(transform=...)``.
        extensions: file extensions to index, with or without the dot.
        download: must be False.
        num_workers: threads that index (probe) the videos.
        output_format: the clip layout a transform receives: "TCHW" (torchvision's transforms); "THWC" only
            without a transform.
        on_error, cache_dir, progress: passed to ``VideoDataset.from_folder``.

    Raises:
        ConfigError: a value outside the above, or a folder without class sub-folders and videos.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        frames_per_clip: int,
        num_classes: str = "400",
        split: str = "train",
        frame_rate: float | None = None,
        step_between_clips: int = 1,
        transform: Callable[..., torch.Tensor] | None = None,
        extensions: Sequence[str] = ("avi", "mp4"),
        download: bool = False,
        num_download_workers: int = 1,
        num_workers: int = 1,
        output_format: str = "TCHW",
        *,
        on_error: str = "raise",
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        if num_classes not in KINETICS_VERSIONS:
            raise ConfigError(
                f"num_classes={num_classes!r} is not allowed; choose one of {KINETICS_VERSIONS}"
            )
        if download:
            raise ConfigError("download=True is not supported: vidloader reads videos already on disk")
        if output_format not in OUTPUT_FORMATS:
            raise ConfigError(
                f"output_format={output_format!r} is not allowed; choose one of {OUTPUT_FORMATS}"
            )
        if output_format != "TCHW" and transform is not None:
            raise ConfigError("a transform receives clips as TCHW; use output_format='TCHW' with a transform")
        self.root, self.split = str(root), split
        self.split_folder = os.path.join(self.root, split)
        exts = tuple(e if e.startswith(".") else "." + e for e in extensions)
        self.videos = VideoDataset.from_folder(
            self.split_folder,
            extensions=exts,
            num_workers=max(1, num_workers),
            on_error=on_error,  # type: ignore[arg-type]
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            progress=progress,
        )
        self.classes = list(self.videos.classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = self.videos.samples
        self.transform = transform
        self.output_format = output_format
        self.video_clips = VideoClips(self.videos, frames_per_clip, step_between_clips, frame_rate)

    def __len__(self) -> int:
        return self.video_clips.num_clips()

    def __repr__(self) -> str:
        return f"Kinetics(split_folder={self.split_folder!r}, videos={len(self.videos)}, classes={len(self.classes)})"


class _ClipSampler:
    """A clip choice over a ``VideoClips`` grid; ``len()`` is the clips of the epoch once a DataLoader uses it."""

    def __init__(self, video_clips: VideoClips, clips_per_video: int) -> None:
        if not isinstance(video_clips, VideoClips):
            raise ConfigError(
                f"expected a vidloader.compat.torchvision VideoClips (dataset.video_clips), got {type(video_clips).__name__}"
            )
        self.video_clips = video_clips
        self.clips_per_video = clips_per_video
        self.loader: VideoLoader | None = None

    def sampling(self) -> SamplingConfig:
        raise NotImplementedError

    def placement(self) -> dict[str, Any]:
        return {}

    def set_epoch(self, epoch: int) -> None:
        """Make the loader's next pass epoch ``epoch`` (it also advances by itself every pass)."""
        if self.loader is not None:
            self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        if self.loader is None:
            raise ConfigError("this sampler's length is known once a vidloader DataLoader uses it")
        return self.loader.num_clips


class RandomClipSampler(_ClipSampler):
    """torchvision's ``RandomClipSampler(video_clips, max_clips_per_video)``: per video and epoch, at most
    ``max_clips_per_video`` distinct random windows of the grid, all shuffled
    (``sampling="random", clips_per_video_mode="without_replacement"``)."""

    def __init__(self, video_clips: VideoClips, max_clips_per_video: int) -> None:
        super().__init__(video_clips, max_clips_per_video)

    def sampling(self) -> SamplingConfig:
        return self.video_clips.sampling(
            sampling="random",
            clips_per_video=self.clips_per_video,
            clips_per_video_mode="without_replacement",
            shuffle=True,
        )


class UniformClipSampler(_ClipSampler):
    """torchvision's ``UniformClipSampler(video_clips, num_clips_per_video)``: ``num_clips_per_video`` evenly
    spaced clips per video, in video order (``sampling="uniform", shuffle=False``; starts are spaced evenly
    in frames rather than snapped to the window grid, and the first and last clip coincide with torchvision's)."""

    def __init__(self, video_clips: VideoClips, num_clips_per_video: int) -> None:
        super().__init__(video_clips, num_clips_per_video)

    def sampling(self) -> SamplingConfig:
        return self.video_clips.sampling(
            sampling="uniform", clips_per_video=self.clips_per_video, shuffle=False
        )


class DistributedSampler(_ClipSampler):
    """torchvision's clip ``DistributedSampler(sampler, num_replicas=None, rank=None, shuffle=False)``: the
    inner sampler's clips, sharded by video over ranks (default: from ``torch.distributed``)."""

    def __init__(
        self,
        dataset: _ClipSampler,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = False,
    ) -> None:
        if not isinstance(dataset, _ClipSampler):
            raise ConfigError(f"DistributedSampler wraps a clip sampler, got {type(dataset).__name__}")
        super().__init__(dataset.video_clips, dataset.clips_per_video)
        self.dataset, self.num_replicas, self.rank, self.shuffle = dataset, num_replicas, rank, shuffle

    def sampling(self) -> SamplingConfig:
        inner = self.dataset.sampling()
        return SamplingConfig(**{**inner.to_json(), "shuffle": inner.shuffle or self.shuffle})

    def placement(self) -> dict[str, Any]:
        return {k: v for k, v in (("rank", self.rank), ("world_size", self.num_replicas)) if v is not None}


def _clip_items(batch: ClipBatch) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    empty = torch.empty((1, 0))
    audio = batch.audio if batch.audio is not None else [empty] * len(batch)
    return [(batch.video[i], audio[i], batch.label[i], int(batch.video_index[i])) for i in range(len(batch))]
