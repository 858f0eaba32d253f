"""What `vidloader bench` runs: its validated settings, the clip plan, and the job every row is given."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .._validate import check_choice, check_int, check_positive_float
from ..backends import check_resize, output_size
from ..dataset import VideoDataset
from ..sampling import SAMPLING_MODES, ClipSpec, SamplingMode
from ._check import reference
from ._peer_run import PeerJob

if TYPE_CHECKING:
    from ..loader import LoaderConfig

# FFmpeg threads per decoder: vidloader's PyAV decoder runs one per worker (the workers fill the
# cores; FFmpeg frame threads would also log from their own threads, which PyAV's Python log callback,
# needed to see decode errors, can deadlock on); every peer's decoder gets the same.
_THREADS = 1


@dataclass(frozen=True)
class BenchSettings:
    """``run_bench``'s options once validated, with what follows from them."""

    sampling: SamplingMode
    clips_per_video: int
    shared_decode: bool
    frames: int
    stride: int
    batch_size: int
    resize: int | tuple[int, int] | None
    workers: int
    threads: int
    clips: int
    seconds: float | None
    seed: int

    def loader_config(self) -> LoaderConfig:
        """The VideoLoader config of the planner and of every vidloader row (the PyAV backend on the CPU; a
        row replaces the backend and device)."""
        from ..loader import LoaderConfig

        return LoaderConfig(
            sampling=self.sampling,
            shuffle=self.sampling == "random",
            clips_per_video=self.clips_per_video,
            batch_size=self.batch_size,
            frames_per_clip=self.frames,
            frame_stride=self.stride,
            seed=self.seed,
            resize=self.resize,
            num_workers=self.workers,
            output_layout="NTHWC",
            shared_decode=self.shared_decode,
            backend="pyav",
        )

    def config(self, *, clips: int, repeats: int, videos: int) -> dict[str, Any]:
        """The report's ``config``; ``clips`` is the number of clips planned, not the number asked for."""
        return {
            "sampling": self.sampling,
            "clips_per_video": self.clips_per_video,
            "shared_decode": self.shared_decode,
            "frames": self.frames,
            "stride": self.stride,
            "batch_size": self.batch_size,
            "resize": self.resize,
            "workers": self.workers,
            "threads": self.threads,
            "clips": clips,
            "repeats": repeats,
            "seconds": self.seconds,
            "seed": self.seed,
            "videos": videos,
        }


def bench_settings(
    dataset: VideoDataset,
    *,
    sampling: str,
    clips: int,
    clips_per_video: int | None,
    frames: int,
    stride: int,
    batch_size: int,
    resize: int | tuple[int, int] | None,
    workers: int,
    seconds: float | None,
    seed: int,
) -> BenchSettings:
    """Validate the options ``run_bench`` passes on (it checks ``backends`` and ``repeats`` first)."""
    check_int("clips", clips, minimum=1)
    check_int("workers", workers, minimum=0)
    seconds = check_positive_float("seconds", seconds, allow_none=True)
    resize = check_resize(resize)
    mode: SamplingMode = check_choice("sampling", sampling, SAMPLING_MODES)
    # Random clips, several per video when the dataset is small, so every run has `clips` clips; the
    # other plans in video order (no shuffle), the way an evaluation pass reads them (sliding: every window).
    if clips_per_video is None:
        clips_per_video = {"random": max(1, -(-clips // len(dataset))), "sliding": 1}.get(sampling, 4)
    per_video = check_int("clips_per_video", clips_per_video, minimum=1)
    return BenchSettings(
        sampling=mode,
        clips_per_video=per_video,
        # Random plans of a small workload put several clips of one file in a batch, which a training
        # epoch over a real dataset (one clip per video) never does; vidloader would decode those together
        # and look faster than it is in training, so shared decode passes are only on for the
        # evaluation-style plans.
        shared_decode=sampling != "random",
        frames=frames,
        stride=stride,
        batch_size=batch_size,
        resize=resize,
        workers=workers,
        threads=_THREADS,
        clips=clips,
        seconds=seconds,
        seed=seed,
    )


def prepare(
    dataset: VideoDataset, settings: BenchSettings, *, progress: bool
) -> tuple[PeerJob, list[Any], LoaderConfig]:
    """(the job every row runs, the reference frames of its check clips, the vidloader rows' VideoLoader
    config): the plan cut to whole batches, resized to one size when ``resize`` is given."""
    config = settings.loader_config()
    plan, n_batches = _plan(dataset, config, settings.clips, settings.batch_size)
    hw = _common_size(dataset, plan, settings.resize)
    if hw is not None:
        # Every row resizes to this one size, vidloader's too: on mixed data a short side alone would give
        # each clip its own size (vidloader's batch would not stack) and time different work than the peers.
        config = replace(config, resize=hw)
    check_clips = plan[:2]
    refs = [reference(dataset[c.video_index], c.frame_indices) for c in check_clips]
    job = PeerJob(
        check_clips=tuple(check_clips),
        plan=tuple(plan),
        batch_size=settings.batch_size,
        n_batches=n_batches,
        resize=hw,
        workers=settings.workers,
        threads=settings.threads,
        frames=settings.frames,
        repeats=1,
        seconds=settings.seconds,
        progress=progress,
    )
    return job, refs, config


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
