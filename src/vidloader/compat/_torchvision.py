"""torchvision's ``Kinetics`` dataset and the ``VideoClips`` grid it holds, over a vidloader VideoDataset, so a
torchvision training script switches by changing its imports and constructor names only."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .._errors import ConfigError
from .._validate import check_int, check_positive_float
from ..dataset import VideoDataset
from ..loader import ClipBatch
from ..sampling import ClipPlan, SamplingConfig
from ._cache import check_reader
from ._grid import ClipGrid

log = logging.getLogger("vidloader")

KINETICS_VERSIONS = ("400", "600", "700")
OUTPUT_FORMATS = ("TCHW", "THWC")


class VideoClips:
    """torchvision's ``VideoClips`` for vidloader: every video's windows of ``frames_per_clip`` frames kept at
    ``frame_rate`` (None: every frame), a window every ``step_between_clips`` kept frames, numbered across the
    videos. Computed as torchvision computes them (its frame rates and float32 rounding included, see
    ``_grid``) from the index, without decoding. A video with no window gives no clip, as in torchvision
    (logged once).

    ``video_paths``, ``video_fps``, ``num_videos()``, ``num_clips()`` and ``get_clip_location()`` are
    torchvision's.
    """

    def __init__(
        self, videos: VideoDataset, frames_per_clip: int, step_between_clips: int, frame_rate: float | None
    ) -> None:
        self.videos = videos
        self.frames_per_clip = check_int("frames_per_clip", frames_per_clip, minimum=1)
        self.step_between_clips = check_int("step_between_clips", step_between_clips, minimum=1)
        check_positive_float("frame_rate", frame_rate, allow_none=True)
        self.frame_rate = frame_rate  # as given: torchvision's arithmetic takes an int rate as it is
        self.grid = ClipGrid.of_videos(videos, frames_per_clip, step_between_clips, frame_rate)
        _log_dropped(videos, self.grid.counts, frames_per_clip, frame_rate)

    @property
    def video_paths(self) -> list[str]:
        return [v.path for v in self.videos]

    @property
    def video_fps(self) -> list[float]:
        """Each video's frame rate as torchvision reads it (torchcodec's ``average_fps``)."""
        return self.grid.video_fps

    def num_videos(self) -> int:
        return len(self.videos)

    def num_clips(self) -> int:
        """Windows over all videos."""
        return len(self.grid)

    def get_clip_location(self, idx: int) -> tuple[int, int]:
        """(video, window within the video) of window number ``idx``."""
        video, window = self.grid.locate(np.array([idx], np.int64))
        return int(video[0]), int(window[0])

    def plan(self, numbers: np.ndarray) -> ClipPlan:
        """The clips of window numbers ``numbers``, in that order (``clip_index``: the window in its video)."""
        video, window = self.grid.locate(numbers)
        return ClipPlan(video, window, self.grid.frames(video, window))

    def sampling(self, **choice: Any) -> SamplingConfig:
        """The grid plus a clip choice as a SamplingConfig: what a loader's state records (the port plans the
        clips itself). The grid's step only where the choice picks among its windows (a loader refuses a
        step that has no effect); videos without a window give no clip (``short_video="skip"``)."""
        cfg = SamplingConfig(
            frames_per_clip=self.frames_per_clip, target_fps=self.frame_rate, short_video="skip", **choice
        )
        return replace(cfg, clip_step=self.step_between_clips) if cfg.windowed else cfg


def _log_dropped(
    videos: VideoDataset, counts: np.ndarray, frames_per_clip: int, frame_rate: float | None
) -> None:
    dropped = np.flatnonzero(counts == 0)
    if len(dropped):
        more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
        listed = ", ".join(videos.columns.paths_of(dropped[:5])) + more
        log.warning(
            "vidloader: %d of %d videos have no clip of %d frames at frame_rate=%s (%s); they give no clip, "
            "as torchvision skips them",
            len(dropped),
            len(videos),
            frames_per_clip,
            frame_rate,
            listed,
        )


class Kinetics:
    """``torchvision.datasets.Kinetics`` for vidloader: ``root/<split>/<class>/<video>``, clips on a grid.

    Indexes the videos (no decoding); ``DataLoader`` decodes. ``samples``, ``classes``, ``class_to_idx``,
    ``transform`` and ``video_clips`` are there as torchvision has them, and ``len()`` is the number of
    windows on torchvision's grid (videos too short for one give none). Items come in batches, not by
    ``dataset[i]``: ``(video, audio, label, video_idx)`` per clip when a ``collate_fn`` asks for them (the
    reference scripts' ``KineticsWithVideoId`` items; audio is an empty ``[1, 0]`` tensor).

    It pickles, for the reference scripts' ``--cache-dataset``; a process that has not imported
    ``vidloader.compat.torchvision`` refuses to read it back (torchvision's own script finding the port's
    cache under the name both write, see ``_cache``).

    Args:
        root: the folder holding ``split``.
        frames_per_clip: frames in a clip.
        num_classes: "400", "600" or "700" (only checked; nothing is downloaded).
        split: the sub-folder, e.g. "train" or "val".
        frame_rate: keep frames at this rate as torchvision does (every ``fps / frame_rate``-th frame, at
            the rate torchcodec reports); None keeps every frame.
        step_between_clips: kept frames between window starts.
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

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], Kinetics], tuple[dict[str, Any]]]:
        # A pickled Kinetics is what a dataset cache holds: reading it back checks who reads it (_cache).
        return _restore_kinetics, (dict(self.__dict__),)


def _restore_kinetics(state: dict[str, Any]) -> Kinetics:
    """A pickled Kinetics back, in a process that uses the port (see ``_cache.check_reader``)."""
    check_reader()
    kinetics = Kinetics.__new__(Kinetics)
    kinetics.__dict__.update(state)
    return kinetics


def _clip_items(batch: ClipBatch) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    empty = torch.empty((1, 0))
    audio = batch.audio if batch.audio is not None else [empty] * len(batch)
    return [(batch.video[i], audio[i], batch.label[i], int(batch.video_index[i])) for i in range(len(batch))]
