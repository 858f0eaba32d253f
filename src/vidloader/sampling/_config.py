"""SamplingConfig: how clips are cut from a video (validated once, hashed into loader state)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any, Literal

from .._errors import ConfigError
from .._option import documented, option
from .._validate import check_bool, check_choice, check_int, check_opt_int, check_positive_float

SamplingMode = Literal["random", "uniform", "multiview", "sliding"]
# "multiview" is the old name of "uniform" (the same plan); still accepted, with a DeprecationWarning.
SAMPLING_MODES: tuple[str, ...] = ("random", "uniform", "multiview", "sliding")
ClipsPerVideoMode = Literal["exact", "without_replacement"]
CLIPS_PER_VIDEO_MODES: tuple[str, ...] = ("exact", "without_replacement")
ShortVideo = Literal["pad", "loop", "skip", "error"]
SHORT_VIDEO: tuple[str, ...] = ("pad", "loop", "skip", "error")


@documented
@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """Clip geometry and choice: how many clips each video gives per epoch, and where they are.

    An option that applies only in some modes is accepted here in any mode (planning ignores it); a
    ``VideoLoader`` refuses it where it has no effect.

    Raises:
        ConfigError: a value outside the above, naming it and the allowed ones.
    """

    frames_per_clip: int = option(doc="frames in a clip.")
    frame_stride: int = option(
        1, doc="decoded frames between consecutive frames of a clip (1 = consecutive frames)."
    )
    target_fps: float | None = option(
        None,
        doc="""sample frames in time instead: the frame for time t is the last one whose pts <= t.
            Give either this or ``frame_stride``, never both.""",
    )
    clip_step: int | None = option(
        None,
        doc="""step between window starts, in sampled frames (default: one clip length, so windows do not
            overlap; torchvision's ``step_between_clips``).""",
        applies=lambda c: c.windowed,
        when="with sampling='sliding' or clips_per_video_mode='without_replacement'",
    )
    sampling: SamplingMode = option(
        "random",
        doc="""which plan:

            - "random": per video and epoch, clips at random starts (see ``clips_per_video_mode``).
            - "uniform": ``clips_per_video`` evenly spaced clips covering the video (one clip sits at the
              centre); the same every epoch. Evaluation's multi-clip ("10-clip") testing. "multiview" is an
              older name for this plan: accepted, normalised to "uniform", with a DeprecationWarning.
            - "sliding": every window, ``clip_step`` sampled frames apart.""",
    )
    clips_per_video: int = option(
        1,
        doc="clips per video per epoch (see the mode).",
        applies=lambda c: c.sampling != "sliding",
        when="with sampling='random' or 'uniform' ('sliding' gives every window)",
    )
    clips_per_video_mode: ClipsPerVideoMode = option(
        "exact",
        doc="""for "random" only.

            - "exact" (default): exactly ``clips_per_video`` independent clips per video, each start drawn
              uniformly over the whole video, with replacement (two clips of a short video may coincide).
            - "without_replacement": torchvision's ``RandomClipSampler``: the candidates are the sliding
              windows every ``clip_step`` sampled frames; each epoch takes ``min(clips_per_video,
              windows)`` distinct ones at random, so ``clips_per_video`` is a maximum and the epoch's clip
              count depends on the video lengths (``VideoLoader.num_clips`` says it; ranks are padded to
              the longest like "sliding").""",
    )
    shuffle: bool = option(
        True,
        doc="""shuffle the videos' order (and, with several clips per video, the clips across the rank's
            whole epoch).""",
    )
    short_video: ShortVideo = option(
        "pad",
        doc="""what a video shorter than one clip (``(frames_per_clip - 1) * frame_stride + 1`` frames, or
            ``(frames_per_clip - 1) / target_fps`` seconds) gives. "pad" (default: every video still
            contributes, nothing is dropped silently) repeats its last frame, and the clip says how many
            frames are padding (``ClipSpec.padded``, the loader's ``ClipBatch.frame_mask``); "loop" plays
            the video again from its first frame, keeping the stride; "skip" gives no clip for it; "error"
            raises ConfigError naming it.""",
    )

    def __post_init__(self) -> None:
        check_int("frames_per_clip", self.frames_per_clip, minimum=1)
        check_int("frame_stride", self.frame_stride, minimum=1)
        check_positive_float("target_fps", self.target_fps, allow_none=True)
        check_opt_int("clip_step", self.clip_step, minimum=1)
        check_choice("sampling", self.sampling, SAMPLING_MODES)
        check_int("clips_per_video", self.clips_per_video, minimum=1)
        check_choice("clips_per_video_mode", self.clips_per_video_mode, CLIPS_PER_VIDEO_MODES)
        if self.clips_per_video_mode != "exact" and self.sampling != "random":
            raise ConfigError(
                f"clips_per_video_mode={self.clips_per_video_mode!r} needs sampling='random', got "
                f"sampling={self.sampling!r}; 'uniform' and 'sliding' always give their fixed clips"
            )
        if self.sampling == "multiview":
            warnings.warn(
                'sampling="multiview" is the same plan as sampling="uniform"; use "uniform" '
                '("multiview" will be removed)',
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "sampling", "uniform")
        if self.target_fps is not None and self.frame_stride != 1:
            raise ConfigError(
                f"give either frame_stride (got {self.frame_stride}) or target_fps (got {self.target_fps}), not both"
            )
        check_choice("short_video", self.short_video, SHORT_VIDEO)
        check_bool("shuffle", self.shuffle)

    @property
    def windowed(self) -> bool:
        """Whether clips are chosen among the sliding windows (so the clip count varies per video)."""
        return self.sampling == "sliding" or self.clips_per_video_mode == "without_replacement"

    @property
    def step(self) -> int:
        """Sliding step in sampled frames (decoded frames in stride mode, target-rate frames with target_fps)."""
        if self.clip_step is not None:
            return self.clip_step
        return self.frames_per_clip * (self.frame_stride if self.target_fps is None else 1)

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON-safe dict (what loader state records and checks on resume)."""
        # Only the sampling fields, also for a subclass (a LoaderConfig): saved states record the plan.
        d = {f.name: getattr(self, f.name) for f in fields(SamplingConfig)}
        # Fields left out at their defaults so states saved before they existed still load ("pad" is what
        # every earlier version did).
        if d["clips_per_video_mode"] == "exact":
            del d["clips_per_video_mode"]
        if d["short_video"] == "pad":
            del d["short_video"]
        return d
