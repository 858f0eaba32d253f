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

from collections.abc import Sequence

import numpy as np
import torch

from ..dataset import VideoDataset, VideoInfo


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


def torchcodec_fps_of(videos: VideoDataset) -> np.ndarray:
    """``torchcodec_fps`` of every video of a dataset, read from its columns with the same float64
    arithmetic, element by element (no VideoInfo per video)."""
    cols = videos.columns
    n, first = cols.array("num_frames").astype(np.int64), cols.array("first_frame").astype(np.int64)
    out = cols.array("fps").astype(np.float64)
    rows = np.flatnonzero(n >= 2)
    try:
        p0 = cols.pts_at(rows, first[rows])
        p1 = cols.pts_at(rows, first[rows] + n[rows] - 1)
    except IndexError:
        # Videos built by hand without timestamps (held as VideoInfo, so few): one at a time.
        return np.array([torchcodec_fps(v) for v in videos], np.float64)
    duration = np.round((p1 - p0) / (n[rows] - 1)).astype(np.int64)
    num = cols.array("time_base_num").astype(np.int64)[rows]
    den = cols.array("time_base_den").astype(np.int64)[rows]
    span = (p1 + duration).astype(np.float64) * num / den - p0.astype(np.float64) * num / den
    with np.errstate(divide="ignore"):
        out[rows] = np.where(span != 0.0, n[rows] / span, out[rows])
    return out


def _integral_step(fps: float, rate: float) -> int | None:
    """``fps / rate`` when torchvision takes it as an integer step (a slice), else None."""
    step = fps / rate
    return int(step) if step.is_integer() else None


def kept_frames(count: int, fps: float, rate: float) -> np.ndarray:
    """The first ``count`` frames torchvision keeps at ``rate`` (indices into the decoded frames)."""
    step = _integral_step(fps, rate)
    if step is not None:
        return np.arange(count, dtype=np.int64) * step
    # torchvision's own expression: a float32 arange times the float64 step, floored.
    return (torch.arange(count, dtype=torch.float32) * (fps / rate)).floor().to(torch.int64).numpy()


def kept_counts(num_frames: np.ndarray, fps: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """How many frames of each video torchvision keeps at ``rate`` frames per second: ``len(range(0, n, step))``
    for an integral step ``fps / rate``, else ``floor(n * rate / fps)`` (float64, as torchvision computes it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        step = fps / rate
        integral = np.isfinite(step) & (step == np.floor(step)) & (step > 0)
        whole = np.where(integral, step, 1.0).astype(np.int64)
        floored = np.floor(num_frames * rate / fps)
    floored = np.where(np.isfinite(floored), floored, 0).astype(np.int64)
    return np.where(integral, -(-num_frames // whole), floored)


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
        num_frames: Sequence[int] | np.ndarray,
        video_fps: Sequence[float] | np.ndarray,
        frames_per_clip: int,
        step_between_clips: int,
        frame_rate: float | None,
        first_frames: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        self.frames_per_clip, self.step = frames_per_clip, step_between_clips
        self.frame_rate = frame_rate
        fps = np.asarray(video_fps, np.float64).reshape(-1)
        n = np.asarray(num_frames, np.int64).reshape(-1)
        self._fps = fps
        # torchvision keeps every frame without a frame_rate (the video's own rate, a step of 1).
        rate = fps if frame_rate is None else np.full(len(fps), float(frame_rate))
        kept = kept_counts(n, fps, rate)
        self.counts = np.maximum((kept - frames_per_clip) // step_between_clips + 1, 0)
        self.cumulative = np.cumsum(self.counts)
        self._first = (
            np.zeros(len(n), np.int64) if first_frames is None else np.asarray(first_frames, np.int64)
        )
        # A video's kept frames depend only on (fps, rate), and rate is one number or fps: one table per
        # distinct fps, as long as its longest video needs, shared by every video of that fps.
        distinct, self._table_of = np.unique(fps, return_inverse=True)
        self._table_of = self._table_of.reshape(-1).astype(np.int64)
        longest = np.zeros(len(distinct), np.int64)
        np.maximum.at(longest, self._table_of, kept)
        rates = distinct if frame_rate is None else np.full(len(distinct), float(frame_rate))
        self._kept = [
            kept_frames(int(k), f, r)
            for k, f, r in zip(longest.tolist(), distinct.tolist(), rates.tolist(), strict=True)
        ]

    @property
    def video_fps(self) -> list[float]:
        """Each video's frame rate as torchvision reads it."""
        return self._fps.tolist()

    @classmethod
    def of_videos(
        cls,
        videos: VideoDataset,
        frames_per_clip: int,
        step_between_clips: int,
        frame_rate: float | None,
    ) -> ClipGrid:
        """The grid of indexed videos, each at the frame rate torchcodec reports for it, read from the
        dataset's columns (no VideoInfo per video)."""
        cols = videos.columns
        return cls(
            cols.array("num_frames"),
            torchcodec_fps_of(videos),
            frames_per_clip,
            step_between_clips,
            frame_rate,
            first_frames=cols.array("first_frame"),
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
        (``RandomClipSampler``'s choice, drawn from ``generator``).

        Every video at once, by Floyd's algorithm: step ``i`` draws ``t`` in ``[0, n - k + i]`` for each
        video of ``n`` windows that takes ``k > i``, and a ``t`` already taken gives ``n - k + i`` instead;
        each video ends with a uniformly random ``k``-subset. Cost: ``k`` array passes over the videos.
        """
        live = np.flatnonzero(self.counts > 0)
        n = self.counts[live]
        k = np.minimum(n, max_clips_per_video)
        steps = int(k.max()) if len(k) else 0
        picked = np.full((len(live), steps), -1, np.int64)
        for i in range(steps):
            rows = np.flatnonzero(k > i)
            top = n[rows] - k[rows] + i
            t = generator.integers(0, top + 1)
            taken = (picked[rows, :i] == t[:, None]).any(axis=1)
            picked[rows, i] = np.where(taken, top, t)
        starts = (self.cumulative - self.counts)[live]
        numbers = (starts[:, None] + picked)[picked >= 0]
        return numbers[generator.permutation(len(numbers))]


def shard_rows(num_clips: int, rank: int, num_replicas: int, group_size: int = 1) -> np.ndarray:
    """Positions of a sampler's clips that one rank takes, as torchvision's clip ``DistributedSampler``: the
    list padded with its own start to ``num_replicas * ceil(len / num_replicas)`` (in groups of
    ``group_size`` consecutive clips), then every ``num_replicas``-th group from ``rank``."""
    per_rank = -(-(num_clips // group_size) // num_replicas) * group_size
    padded = np.arange(per_rank * num_replicas, dtype=np.int64) % max(num_clips, 1)
    return padded.reshape(-1, group_size)[rank::num_replicas].reshape(-1)
