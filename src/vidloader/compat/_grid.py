"""torchvision's clip grid, computed as torchvision 0.26 computes it, so the port's clips are torchvision's
frame for frame.

A video's grid (``VideoClips.compute_clips_for_video``): its frame rate as torchcodec reports it, the frames
kept at ``frame_rate`` (``VideoClips._resample_video_idx``: an integral step ``fps / frame_rate`` keeps every
step-th frame; any other keeps the float32 floors of ``k * step`` for ``k < floor(frames * frame_rate /
fps)``), and its windows (``unfold``): ``frames_per_clip`` kept frames every ``step_between_clips`` kept
frames. A video with no window gives no clip (torchvision drops it). Windows are numbered across the dataset,
video after video (``cumulative_sizes``); ``UniformClipSampler`` picks ``floor(torch.linspace(...))`` of those
numbers and ``get_clip_location`` maps each back to (video, window). The arithmetic is torchvision's own calls
on torch, so float32 rounds the same way here as there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..dataset import VideoInfo


def torchcodec_fps(info: VideoInfo) -> float:
    """The frame rate torchvision's ``VideoClips`` reads for a video: torchcodec's ``average_fps`` after its
    exact scan, ``frames / (end - start)`` with ``start`` the first frame's pts and ``end`` the last frame's
    pts plus its duration, both in seconds as torchcodec computes them (``double(pts) * num / den``).

    The index holds every frame's pts but not the last frame's duration: it is the pts step, exact for a
    constant frame rate (the mean step, rounded, otherwise; torchcodec reads the packet's own duration).

    Args:
        info: the video.

    Returns:
        The frame rate in frames per second, e.g. 30.000000000000004 for 60 frames of 1/30 s in a time base
        of 1/15360.
    """
    n = info.num_frames
    if n < 2 or not info.frame_pts:
        return float(info.fps)  # torchcodec's header rate, as the probe read it
    first = info.frame_pts[info.first_frame]
    last = info.frame_pts[info.first_frame + n - 1]
    duration = round((last - first) / (n - 1))
    num, den = info.time_base_num, info.time_base_den
    span = float(last + duration) * num / den - float(first) * num / den
    return n / span if span != 0.0 else float(info.fps)


def _integral_step(fps: float, rate: float) -> int | None:
    """``fps / rate`` when torchvision takes it as an integer step (a slice), else None."""
    step = fps / rate
    return int(step) if step.is_integer() else None


def kept_count(num_frames: int, fps: float, rate: float) -> int:
    """How many frames of a video torchvision keeps at ``rate`` frames per second."""
    step = _integral_step(fps, rate)
    if step is not None:
        return -(-num_frames // step)  # len(range(0, num_frames, step))
    return math.floor(num_frames * rate / fps)


def kept_frames(count: int, fps: float, rate: float) -> np.ndarray:
    """The first ``count`` frames torchvision keeps at ``rate`` (indices into the decoded frames)."""
    step = _integral_step(fps, rate)
    if step is not None:
        return np.arange(count, dtype=np.int64) * step
    # torchvision's own expression: a float32 arange times the float64 step, floored.
    return (torch.arange(count, dtype=torch.float32) * (fps / rate)).floor().to(torch.int64).numpy()


def window_count(kept: int, frames_per_clip: int, step_between_clips: int) -> int:
    """Windows of ``frames_per_clip`` kept frames every ``step_between_clips`` (``unfold``'s count)."""
    return max((kept - frames_per_clip) // step_between_clips + 1, 0)


class ClipGrid:
    """Every video's windows on torchvision's grid, and the frames of any of them.

    Args:
        num_frames: frames of each video, in dataset order.
        video_fps: each video's frame rate as torchvision reads it (``torchcodec_fps``).
        frames_per_clip: frames in a clip (``clip_length_in_frames``).
        step_between_clips: kept frames between window starts (``frames_between_clips``).
        frame_rate: the rate frames are kept at; None keeps every frame.
        first_frames: each video's first decoded frame (a segment's offset in its stream; default 0).
    """

    def __init__(
        self,
        num_frames: Sequence[int],
        video_fps: Sequence[float],
        frames_per_clip: int,
        step_between_clips: int,
        frame_rate: float | None,
        first_frames: Sequence[int] | None = None,
    ) -> None:
        self.frames_per_clip, self.step = frames_per_clip, step_between_clips
        self.frame_rate, self.video_fps = frame_rate, list(video_fps)
        # torchvision keeps every frame without a frame_rate (the video's own rate, a step of 1).
        keys = [(f, f if frame_rate is None else frame_rate) for f in self.video_fps]
        kept = [kept_count(n, f, r) for n, (f, r) in zip(num_frames, keys, strict=True)]
        counts = [window_count(k, frames_per_clip, step_between_clips) for k in kept]
        self.counts = np.array(counts, np.int64).reshape(-1)
        self.cumulative = np.cumsum(self.counts)
        first = [0] * len(kept) if first_frames is None else first_frames
        self._first = np.array(first, np.int64).reshape(-1)
        # A video's kept frames depend only on (fps, rate): one table per distinct pair, as long as its
        # longest video needs, shared by every video of that pair.
        longest: dict[tuple[float, float], int] = {}
        for key, k in zip(keys, kept, strict=True):
            longest[key] = max(longest.get(key, 0), k)
        table = {key: i for i, key in enumerate(longest)}
        self._table_of = np.array([table[key] for key in keys], np.int64).reshape(-1)
        self._kept = [kept_frames(n, fps, rate) for (fps, rate), n in longest.items()]

    @classmethod
    def of_videos(
        cls,
        videos: Sequence[VideoInfo],
        frames_per_clip: int,
        step_between_clips: int,
        frame_rate: float | None,
    ) -> ClipGrid:
        """The grid of indexed videos, each at the frame rate torchcodec reports for it."""
        return cls(
            [v.num_frames for v in videos],
            [torchcodec_fps(v) for v in videos],
            frames_per_clip,
            step_between_clips,
            frame_rate,
            first_frames=[v.first_frame for v in videos],
        )

    def __len__(self) -> int:
        """Windows over all videos (``VideoClips.num_clips()``)."""
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def locate(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(video, window within the video) of dataset-wide window numbers (``get_clip_location``)."""
        video = np.searchsorted(self.cumulative, numbers, side="right")
        before = np.concatenate([[0], self.cumulative])[video]
        return video, numbers - before

    def frames(self, video: np.ndarray, window: np.ndarray) -> np.ndarray:
        """Decoded-frame indices ``[clips, frames_per_clip]`` of the windows ``(video[i], window[i])``."""
        at = window[:, None] * self.step + np.arange(self.frames_per_clip)
        out = np.zeros(at.shape, np.int64)
        table = self._table_of[video]
        for t in np.unique(table).tolist():
            rows = table == t
            out[rows] = self._kept[t][at[rows]]
        return out + self._first[video][:, None]

    def uniform(self, clips_per_video: int) -> np.ndarray:
        """The window numbers ``UniformClipSampler(video_clips, clips_per_video)`` yields, in its order."""
        start, picked = 0, []
        for length in self.counts.tolist():
            if length == 0:
                continue
            span = torch.linspace(start, start + length - 1, steps=clips_per_video)
            picked.append(span.floor().to(torch.int64))
            start += length
        return torch.cat(picked).numpy() if picked else np.zeros(0, np.int64)

    def random(self, max_clips_per_video: int, generator: np.random.Generator) -> np.ndarray:
        """``min(windows, max_clips_per_video)`` distinct windows of every video, all shuffled together
        (``RandomClipSampler``'s choice, drawn from ``generator``)."""
        starts = self.cumulative - self.counts
        picked = [
            start + generator.choice(length, min(length, max_clips_per_video), replace=False)
            for start, length in zip(starts.tolist(), self.counts.tolist(), strict=True)
            if length > 0
        ]
        numbers = np.concatenate(picked) if picked else np.zeros(0, np.int64)
        return numbers[generator.permutation(len(numbers))]


def shard_rows(num_clips: int, rank: int, num_replicas: int, group_size: int = 1) -> np.ndarray:
    """Positions of a sampler's clips that one rank takes, as torchvision's clip ``DistributedSampler``: the
    list padded with its own start to ``num_replicas * ceil(len / num_replicas)`` (in groups of
    ``group_size`` consecutive clips), then every ``num_replicas``-th group from ``rank``."""
    per_rank = -(-(num_clips // group_size) // num_replicas) * group_size
    padded = np.arange(per_rank * num_replicas, dtype=np.int64) % max(num_clips, 1)
    return padded.reshape(-1, group_size)[rank::num_replicas].reshape(-1)
