"""What the two built-in clip transforms share: their output settings and the one fused call they end in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from .._validate import check_bool
from ..ops import (
    RaggedClips,
    check_layout,
    check_out_dtype,
    check_video,
    clip_resized_crop_normalize,
    clip_resized_crop_normalize_ragged,
)
from ._presets import resolve_stats

Layout = Literal["NCTHW", "NTHWC"]


def clip_sizes(video: torch.Tensor | RaggedClips) -> list[tuple[int, int]]:
    """``(H_i, W_i)`` of every clip of a batch: a ``RaggedClips``' own sizes, or a checked uint8
    ``[B, T, H, W, 3]`` tensor's one size per clip."""
    if isinstance(video, RaggedClips):
        return list(video.sizes)
    video = check_video(video)
    return [(int(video.shape[2]), int(video.shape[3]))] * int(video.shape[0])


class FusedClipTransform:
    """Base of the built-in transforms: output ``size``, normalisation, dtype, layout and ``antialias``, and
    the call of the fused op (uniform or ragged, by the batch) that every transform ends in."""

    size: tuple[int, int]
    preset: str | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    out_dtype: torch.dtype
    layout: str
    antialias: bool

    def _set_output(
        self,
        preset: str | None,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        out_dtype: torch.dtype,
        layout: Layout,
        antialias: bool,
    ) -> None:
        """Check and keep the output settings (``size`` is checked first, by the subclass)."""
        self.preset = preset
        self.mean, self.std = resolve_stats(preset, mean, std)
        self.out_dtype = check_out_dtype(out_dtype)
        self.layout = check_layout(layout)
        self.antialias = check_bool("antialias", antialias)

    def _fused(
        self,
        video: torch.Tensor | RaggedClips,
        boxes: torch.Tensor,
        *,
        flip: torch.Tensor | None = None,
        jitter: torch.Tensor | None = None,
        views: int = 1,
        dest: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The batch's boxes (and flips, jitter, letterbox) through the fused op, in one launch; letterbox
        rectangles need the ragged op, which takes a uniform batch as ragged clips without a copy."""
        options: dict[str, Any] = {
            "out_dtype": self.out_dtype,
            "layout": self.layout,
            "jitter": jitter,
            "views": views,
            "antialias": self.antialias,
        }
        if dest is not None and not isinstance(video, RaggedClips):
            video = RaggedClips.from_batch(video)
        if isinstance(video, RaggedClips):
            return clip_resized_crop_normalize_ragged(
                video, boxes, self.size, flip, self.mean, self.std, dest=dest, **options
            )
        return clip_resized_crop_normalize(video, boxes, self.size, flip, self.mean, self.std, **options)
