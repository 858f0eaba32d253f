"""EvalClipTransform: deterministic center crop or 3-crop + resize + normalise, one fused launch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from .._errors import ConfigError
from ..ops import (
    check_channel_stats,
    check_layout,
    check_out_dtype,
    check_size,
    check_video,
    clip_resized_crop_normalize,
)
from ._boxes import center_crop_boxes, check_seeds, three_crop_boxes

Layout = Literal["NCTHW", "NTHWC"]
CROPS: tuple[int, ...] = (1, 3)


class EvalClipTransform:
    """Evaluation views of uint8 ``[B, T, H, W, 3]`` clips: ``crops`` views per clip, clip-major.

    ``crops=1``: the centered square of side ``min(H, W)``; ``crops=3``: three such squares along the long
    side (left/center/right, or top/center/bottom for portrait frames; SlowFast 3-crop). Each is resized to
    ``size`` and normalised by the fused op in one launch (boxes repeated per view, the video is not copied).

    ``resize_short=S`` reproduces "resize the short side to S, then crop ``size``" with a single resampling:
    the crop becomes the source-space box that maps onto it, ``round(size * min(H, W) / S)`` pixels per side
    (integer pixels, so it can differ from the two-step pipeline by a sub-pixel shift/scale). Needs
    ``S >= max(size)``. Seeds are accepted for the loader's protocol and ignored: evaluation is deterministic.

    Args:
        size: output (height, width), or an int for a square.
        crops: views per clip, 1 or 3.
        resize_short: the short side a two-step pipeline would resize to first, or None.
        mean: per-channel mean.
        std: per-channel std.
        out_dtype: a float dtype.
        layout: "NCTHW" or "NTHWC".

    Raises:
        ConfigError: a bad value (named in the message).
    """

    def __init__(
        self,
        *,
        size: int | tuple[int, int],
        crops: Literal[1, 3] = 1,
        resize_short: int | None = None,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        out_dtype: torch.dtype = torch.float32,
        layout: Layout = "NCTHW",
    ) -> None:
        self.size = check_size(size)
        if isinstance(crops, bool) or crops not in CROPS:
            raise ConfigError(f"crops={crops!r} is not allowed; choose one of {', '.join(map(repr, CROPS))}")
        self.crops = int(crops)
        if resize_short is not None and (
            isinstance(resize_short, bool)
            or not isinstance(resize_short, int)
            or resize_short < max(self.size)
        ):
            raise ConfigError(
                f"resize_short={resize_short!r} is not allowed; give None or an int >= max(size) = {max(self.size)}"
            )
        self.resize_short = resize_short
        self.mean = check_channel_stats("mean", mean)
        self.std = check_channel_stats("std", std, nonzero=True)
        self.out_dtype = check_out_dtype(out_dtype)
        self.layout = check_layout(layout)

    @property
    def num_views(self) -> int:
        return self.crops

    def boxes(self, batch: int, height: int, width: int) -> torch.Tensor:
        """int64 ``[batch * num_views, 4]`` boxes (CPU) for ``batch`` clips of ``height x width``."""
        short = min(height, width)
        crop: tuple[int, int] | None = None
        if self.resize_short is not None:
            crop = (
                max(1, min(height, round(self.size[0] * short / self.resize_short))),
                max(1, min(width, round(self.size[1] * short / self.resize_short))),
            )
        make = center_crop_boxes if self.crops == 1 else three_crop_boxes
        return make([height] * batch, [width] * batch, crop)

    def __call__(self, video_u8: torch.Tensor, *, seeds: Sequence[int] | None = None) -> torch.Tensor:
        video_u8 = check_video(video_u8)
        if seeds is not None:
            check_seeds(seeds, video_u8.shape[0])
        batch, _, height, width, _ = video_u8.shape
        return clip_resized_crop_normalize(
            video_u8,
            self.boxes(batch, height, width),
            self.size,
            None,
            self.mean,
            self.std,
            out_dtype=self.out_dtype,
            layout=self.layout,
            views=self.crops,
        )

    def __repr__(self) -> str:
        return (
            f"EvalClipTransform(size={self.size}, crops={self.crops}, resize_short={self.resize_short}, "
            f"mean={self.mean}, std={self.std}, out_dtype={self.out_dtype}, layout={self.layout!r})"
        )
