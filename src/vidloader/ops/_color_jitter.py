"""Standalone colour jitter of uint8 clips: the fused op with an identity crop, no flip and no normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._errors import ConfigError
from ._checks import check_video
from ._fused_op import clip_resized_crop_normalize


def _factors(name: str, value: torch.Tensor | Sequence[float] | float, batch: int) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu", torch.float32)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.full((batch,), float(value), dtype=torch.float32)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        t = torch.tensor(list(value), dtype=torch.float32)
    else:
        raise ConfigError(
            f"{name}={value!r} is not allowed; give one float or one per clip ([B] tensor or list)"
        )
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ConfigError(f"{name} has shape {tuple(t.shape)}; need [{batch}] (one factor per clip)")
    return t


def clip_color_jitter(
    video: torch.Tensor,
    brightness: torch.Tensor | Sequence[float] | float,
    contrast: torch.Tensor | Sequence[float] | float,
    saturation: torch.Tensor | Sequence[float] | float,
    *,
    out_dtype: torch.dtype = torch.float32,
    layout: str = "NTHWC",
) -> torch.Tensor:
    """Per-clip brightness -> contrast -> saturation of uint8 ``[B, T, H, W, 3]`` clips, as [0, 1] floats.

    Semantics are torchvision's adjust_brightness / adjust_contrast / adjust_saturation on [0, 1] floats,
    clamped after each step, in that fixed order, except that contrast blends with the mean grey level of
    the whole clip rather than of each frame. Factors are floats or ``[B]`` tensors, >= 0 (1 = unchanged).
    This runs the fused op with the full frame as the box, so it is the same code as the fused path.

    Args:
        video: uint8 ``[B, T, H, W, 3]``.
        brightness: factor(s), a float or one per clip.
        contrast: factor(s), a float or one per clip.
        saturation: factor(s), a float or one per clip.
        out_dtype: a float dtype.
        layout: "NTHWC" or "NCTHW" for the output.

    Returns:
        The jittered clips in [0, 1].

    Raises:
        ConfigError: a bad video, factor, dtype or layout.
    """
    video = check_video(video)
    batch, _, height, width, _ = video.shape
    factors = torch.stack(
        [
            _factors("brightness", brightness, batch),
            _factors("contrast", contrast, batch),
            _factors("saturation", saturation, batch),
        ],
        dim=1,
    )
    boxes = torch.tensor([[0, 0, height, width]], dtype=torch.int64).expand(batch, 4).contiguous()
    return clip_resized_crop_normalize(
        video,
        boxes,
        (height, width),
        None,
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        out_dtype=out_dtype,
        layout=layout,
        jitter=factors,
    )
