"""What `vidloader bench` runs: its validated settings, the clip plan, and the job every row is given."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .._validate import check_choice, check_int, check_positive_float
from ..backends import output_size
from ..dataset import VideoDataset
from ..sampling import SAMPLING_MODES, ClipSpec, SamplingMode
from ._check import reference
from ._peer_run import PeerJob

if TYPE_CHECKING:
    from ..loader import LoaderConfig

# FFmpeg threads per decoder: vidloader's PyAV decoder runs one per worker (the workers fill the
# cores); every peer's decoder gets the same.
_THREADS = 1


@dataclass(frozen=True)
class BenchSettings:
    """``run_bench``'s options once validated: the loader config of the planner and of every vidloader row
    (PyAV on the CPU; a row replaces the backend and device), and the timing options."""

    loader: LoaderConfig
    sampling: str  # as asked for: the loader's config says "uniform" for "multiview"
    clips: int
    seconds: float | None
    threads: int = _THREADS

    def config(self, *, clips: int, repeats: int, videos: int) -> dict[str, Any]:
        """The report's ``config``; ``clips`` is the number of clips planned, not the number asked for."""
        c = self.loader
        return {
            "sampling": self.sampling,
            "clips_per_video": c.clips_per_video,
            "shared_decode": c.shared_decode,
            "frames": c.frames_per_clip,
            "stride": c.frame_stride,
            "batch_size": c.batch_size,
            "resize": c.resize,
            "workers": c.num_workers,
            "worker_type": c.worker_type,
            "threads": self.threads,
            "clips": clips,
            "repeats": repeats,
            "seconds": self.seconds,
            "seed": c.seed,
            "videos": videos,
        }


def bench_settings(
    dataset: VideoDataset,
    *,
    frames: int = 16,
    stride: int = 2,
    batch_size: int = 8,
    resize: int | tuple[int, int] | None = None,
    workers: int = 2,
    worker_type: str = "thread",
    clips: int = 64,
    sampling: str = "random",
    clips_per_video: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
) -> BenchSettings:
    """The workload ``run_bench`` times, validated (it checks ``backends`` and ``repeats`` first).

    Args:
        dataset: the videos.
        frames, stride, batch_size, resize, workers, worker_type, seed: the clips and the vidloader rows'
            loader (``worker_type`` as ``LoaderConfig``'s: "thread" or "process").
        clips: clips to time (at least two batches).
        sampling, clips_per_video: the plan (default: several random clips per video when the dataset is
            small; 4 per video for "uniform"; every window for "sliding").
        seconds: time each run for at most this long.

    Returns:
        The settings.

    Raises:
        ConfigError: a bad value.
    """
    from ..loader import LoaderConfig

    check_int("clips", clips, minimum=1)
    check_int("workers", workers, minimum=0)
    mode: SamplingMode = check_choice("sampling", sampling, SAMPLING_MODES)
    # Random clips, several per video when the dataset is small, so every run has `clips` clips; the
    # other plans in video order (no shuffle), the way an evaluation pass reads them (sliding: every window).
    if clips_per_video is None:
        clips_per_video = {"random": max(1, -(-clips // len(dataset))), "sliding": 1}.get(sampling, 4)
    loader = LoaderConfig(
        sampling=mode,
        shuffle=sampling == "random",
        clips_per_video=clips_per_video,
        # Random plans of a small workload put several clips of one file in a batch, which a training
        # epoch over a real dataset (one clip per video) never does; vidloader would decode those together
        # and look faster than it is in training, so shared decode passes are only on for the
        # evaluation-style plans.
        shared_decode=sampling != "random",
        batch_size=batch_size,
        frames_per_clip=frames,
        frame_stride=stride,
        seed=seed,
        resize=resize,
        num_workers=workers,
        worker_type=worker_type,  # type: ignore[arg-type]  # LoaderConfig checks it against its choices
        output_layout="NTHWC",
        backend="pyav",
    )
    return BenchSettings(loader, sampling, clips, check_positive_float("seconds", seconds, allow_none=True))


def prepare(
    dataset: VideoDataset, settings: BenchSettings, *, progress: bool
) -> tuple[PeerJob, list[Any], LoaderConfig]:
    """(the job every row runs, the reference frames of its check clips, the vidloader rows' VideoLoader
    config): the plan cut to whole batches, resized to one size when ``resize`` is given."""
    config = settings.loader
    plan, n_batches = _plan(dataset, config, settings.clips, config.batch_size)
    hw = _common_size(dataset, plan, config.resize)
    if hw is not None:
        # Every row resizes to this one size, vidloader's too: on mixed data a short side alone would give
        # each clip its own size (vidloader's batch would not stack) and time different work than the peers.
        config = replace(config, resize=hw)
    check_clips = check_clips_of(plan)
    refs = [reference(dataset[c.video_index], c.frame_indices) for c in check_clips]
    job = PeerJob(
        check_clips=tuple(check_clips),
        plan=tuple(plan),
        batch_size=config.batch_size,
        n_batches=n_batches,
        resize=hw,
        workers=config.num_workers,
        threads=settings.threads,
        frames=config.frames_per_clip,
        repeats=1,
        seconds=settings.seconds,
        progress=progress,
    )
    return job, refs, config


def check_clips_of(plan: list[ClipSpec], most: int = 6) -> list[ClipSpec]:
    """The clips every row's frames are checked on: the plan's first two, then the first clip of each
    video not yet checked, up to ``most``, so a peer that reads another stream of one file, or trips on
    one file's timestamps, is caught on that file.

    Args:
        plan: the benchmark's clips.
        most: how many to check at most.

    Returns:
        The check clips, in plan order.
    """
    chosen = list(plan[:2])
    seen = {c.video_index for c in chosen}
    for clip in plan[2:]:
        if len(chosen) >= most:
            break
        if clip.video_index not in seen:
            chosen.append(clip)
            seen.add(clip.video_index)
    return chosen


def _plan(
    dataset: VideoDataset, config: LoaderConfig, clips: int, batch_size: int
) -> tuple[list[ClipSpec], int]:
    """(the first ``clips`` clips of epoch 0's plan in whole batches, the number of batches); at least two
    batches, or ConfigError."""
    from ..loader import VideoLoader

    planner = VideoLoader(dataset, config=config)
    plan: list[ClipSpec] = planner.clip_plan(0)
    n_batches = max(2, min(clips, len(plan)) // batch_size)
    if n_batches * batch_size > len(plan):
        n_batches = len(plan) // batch_size
    if n_batches < 2:
        raise ConfigError(
            f"the dataset gives {len(plan)} clips; the benchmark needs at least {2 * batch_size}"
        )
    return plan[: n_batches * batch_size], n_batches


def _common_size(
    dataset: VideoDataset, plan: list[ClipSpec], resize: int | tuple[int, int] | None
) -> tuple[int, int] | None:
    """The one (height, width) every row resizes to (the first clip's under ``resize``), or None to keep
    the native size, which all clips must then share (a batch needs one size)."""
    native = {output_size(dataset[c.video_index], None, apply_rotation=False) for c in plan}
    if resize is None and len(native) > 1:
        raise ConfigError(
            f"the clips come in {len(native)} frame sizes (e.g. {sorted(native)[:3]}) and a batch needs one: "
            "give --resize HxW, or --resize <short side> (every clip is then resized to the first clip's "
            "size, for vidloader and the peers alike)"
        )
    if resize is None:
        return None
    return output_size(dataset[plan[0].video_index], resize, apply_rotation=False)
