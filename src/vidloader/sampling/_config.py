"""SamplingConfig: how clips are cut from a video (validated once, hashed into loader state)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from .._errors import ConfigError
from .._validate import check_choice, check_int, check_opt_int, check_positive_float

SamplingMode = Literal["random", "uniform", "multiview", "sliding"]
SAMPLING_MODES: tuple[str, ...] = ("random", "uniform", "multiview", "sliding")
ShortVideo = Literal["pad", "loop", "skip", "error"]
SHORT_VIDEO: tuple[str, ...] = ("pad", "loop", "skip", "error")


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """Clip geometry and choice.

    - ``frames_per_clip`` frames, ``frame_stride`` decoded frames apart, or at ``target_fps`` (the frame for
      time t is the last one whose pts <= t), never both.
    - ``sampling``: "random" (``clips_per_video`` independent random clips per video per epoch), "uniform" /
      "multiview" (``clips_per_video`` evenly spaced clips covering the video; one clip sits at the centre),
      "sliding" (consecutive windows every ``clip_step`` sampled frames; default one clip length).
    - ``short_video``: what a video shorter than one clip (``(frames_per_clip - 1) * frame_stride + 1``
      frames, or ``(frames_per_clip - 1) / target_fps`` seconds) gives. "pad" (default: every video still
      contributes, nothing is dropped silently) repeats its last frame, and the clip says how many frames
      are padding (``ClipSpec.padded``, the loader's ``ClipBatch.frame_mask``); "loop" plays the video again
      from its first frame, keeping the stride; "skip" gives no clip for it; "error" raises ConfigError
      naming it.
    """

    frames_per_clip: int
    frame_stride: int = 1
    target_fps: float | None = None
    clip_step: int | None = None
    sampling: SamplingMode = "random"
    clips_per_video: int = 1
    shuffle: bool = True
    short_video: ShortVideo = "pad"

    def __post_init__(self) -> None:
        check_int("frames_per_clip", self.frames_per_clip, minimum=1)
        check_int("frame_stride", self.frame_stride, minimum=1)
        check_positive_float("target_fps", self.target_fps, allow_none=True)
        check_opt_int("clip_step", self.clip_step, minimum=1)
        check_choice("sampling", self.sampling, SAMPLING_MODES)
        check_int("clips_per_video", self.clips_per_video, minimum=1)
        if self.target_fps is not None and self.frame_stride != 1:
            raise ConfigError(
                f"give either frame_stride (got {self.frame_stride}) or target_fps (got {self.target_fps}), not both"
            )
        check_choice("short_video", self.short_video, SHORT_VIDEO)
        if not isinstance(self.shuffle, bool):
            raise ConfigError(f"shuffle must be True or False, got {self.shuffle!r}")

    @property
    def step(self) -> int:
        """Sliding step in sampled frames (decoded frames in stride mode, target-rate frames with target_fps)."""
        if self.clip_step is not None:
            return self.clip_step
        return self.frames_per_clip * (self.frame_stride if self.target_fps is None else 1)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["short_video"] == "pad":
            # "pad" is what every earlier version did: leaving it out keeps their saved states loadable.
            del out["short_video"]
        return out
