"""TrainClipTransform: per-clip random resized crop + flip (+ colour jitter) + normalise, one fused launch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from .._errors import ConfigError
from ..ops import RaggedClips, clip_resized_crop_normalize, clip_resized_crop_normalize_ragged
from ..ops._checks import check_channel_stats, check_layout, check_out_dtype, check_size, check_video
from ._boxes import check_range, check_seeds, random_resized_crop_box

Layout = Literal["NCTHW", "NTHWC"]


def _check_jitter_strength(jitter: object) -> tuple[float, float, float] | None:
    if jitter is None:
        return None
    if (
        isinstance(jitter, (str, bytes))
        or not isinstance(jitter, Sequence)
        or len(jitter) != 3
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in jitter
        )
    ):
        raise ConfigError(
            f"jitter={jitter!r} is not allowed; give None or (brightness, contrast, saturation) strengths >= 0"
        )
    return float(jitter[0]), float(jitter[1]), float(jitter[2])


class TrainClipTransform:
    """Training augmentation of uint8 ``[B, T, H, W, 3]`` clips into normalised ``out_dtype`` clips.

    Per clip, from ``torch.Generator().manual_seed(seeds[i])`` (a CPU generator, so CPU and GPU batches get
    identical parameters) and in this order: a crop box with torchvision ``RandomResizedCrop.get_params``
    semantics, one flip coin (p = 0.5; drawn even when ``flip=False`` so the later draws do not depend on it)
    and, if ``jitter=(b, c, s)`` is set, brightness, contrast and saturation factors drawn uniformly from
    ``[max(0, 1 - x), 1 + x]`` like torchvision's ColorJitter (applied in that fixed order). Then one call of
    the fused op does crop, resize to ``size``, flip, jitter and ``(x / 255 - mean) / std`` for the batch.

    Given a :class:`vidloader.ops.RaggedClips` batch (clips of mixed resolutions and aspect ratios, as the
    loader hands them over), every clip's box is drawn from its own native frame and the ragged op crops and
    resizes each clip into its slot of the batch in one launch.
    """

    num_views: int = 1

    def __init__(
        self,
        *,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        out_dtype: torch.dtype = torch.float32,
        layout: Layout = "NCTHW",
        jitter: tuple[float, float, float] | None = None,
    ) -> None:
        self.size = check_size(size)
        self.scale = check_range("scale", scale)
        self.ratio = check_range("ratio", ratio)
        if not isinstance(flip, bool):
            raise ConfigError(f"flip={flip!r} is not allowed; choose True or False")
        self.flip = flip
        self.mean = check_channel_stats("mean", mean)
        self.std = check_channel_stats("std", std, nonzero=True)
        self.out_dtype = check_out_dtype(out_dtype)
        self.layout = check_layout(layout)
        self.jitter = _check_jitter_strength(jitter)

    def draw_params(
        self, height: int, width: int, seeds: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The per-clip parameters a call with these seeds uses: CPU ``boxes [B, 4]``, ``flip [B]``, ``jitter``."""
        seed_list = check_seeds(seeds)
        return self.draw_params_per_clip([(height, width)] * len(seed_list), seed_list)

    def draw_params_per_clip(
        self, sizes: Sequence[tuple[int, int]], seeds: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`draw_params` for clips of their own ``sizes[i] = (H_i, W_i)`` (a ragged batch): each box is
        drawn from the clip's own native frame, so no clip is stretched to another's aspect ratio."""
        seed_list = check_seeds(seeds, len(sizes))
        boxes, flips, factors = [], [], []
        for seed, (height, width) in zip(seed_list, sizes, strict=True):
            g = torch.Generator().manual_seed(seed)
            boxes.append(random_resized_crop_box(g, height, width, self.scale, self.ratio))
            coin = torch.rand(1, generator=g).item() < 0.5
            flips.append(self.flip and coin)
            if self.jitter is not None:
                factors.append(
                    [
                        torch.empty(1).uniform_(max(0.0, 1.0 - x), 1.0 + x, generator=g).item()
                        for x in self.jitter
                    ]
                )
        batch = len(seed_list)
        jitter = (
            torch.tensor(factors, dtype=torch.float32).view(batch, 3) if self.jitter is not None else None
        )
        return (
            torch.tensor(boxes, dtype=torch.int64).view(batch, 4),
            torch.tensor(flips, dtype=torch.bool).view(batch),
            jitter,
        )

    def __call__(self, video_u8: torch.Tensor | RaggedClips, *, seeds: Sequence[int]) -> torch.Tensor:
        if isinstance(video_u8, RaggedClips):
            boxes, flips, jitter = self.draw_params_per_clip(video_u8.sizes, seeds)
            return clip_resized_crop_normalize_ragged(
                video_u8,
                boxes,
                self.size,
                flips,
                self.mean,
                self.std,
                out_dtype=self.out_dtype,
                layout=self.layout,
                jitter=jitter,
            )
        video_u8 = check_video(video_u8)
        seed_list = check_seeds(seeds, video_u8.shape[0])
        boxes, flips, jitter = self.draw_params(video_u8.shape[2], video_u8.shape[3], seed_list)
        return clip_resized_crop_normalize(
            video_u8,
            boxes,
            self.size,
            flips,
            self.mean,
            self.std,
            out_dtype=self.out_dtype,
            layout=self.layout,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        return (
            f"TrainClipTransform(size={self.size}, scale={self.scale}, ratio={self.ratio}, flip={self.flip}, "
            f"mean={self.mean}, std={self.std}, out_dtype={self.out_dtype}, layout={self.layout!r}, "
            f"jitter={self.jitter})"
        )
