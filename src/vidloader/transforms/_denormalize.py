"""Undo the normalisation of a processed clip batch, for looking at it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._errors import ConfigError
from ..ops import check_channel_stats, check_layout


def denormalize(
    video: torch.Tensor, mean: Sequence[float], std: Sequence[float], layout: str = "NCTHW"
) -> torch.Tensor:
    """``round((x * std + mean) * 255)`` clamped to uint8, returned as ``[N, T, H, W, 3]`` for display.

    ``video`` is a float tensor in ``layout`` ("NCTHW" or "NTHWC"), as the clip transforms produce it.

    Args:
        video: the normalised float clips.
        mean: the mean they were normalised with.
        std: the std they were normalised with.
        layout: "NCTHW" or "NTHWC".

    Returns:
        uint8 ``[N, T, H, W, 3]``.

    Raises:
        ConfigError: a bad layout, mean or std.
    """
    if not isinstance(video, torch.Tensor) or not video.is_floating_point():
        raise ConfigError(
            f"video must be a floating-point torch.Tensor, got {getattr(video, 'dtype', type(video))}"
        )
    layout = check_layout(layout)
    channel_dim = 1 if layout == "NCTHW" else 4
    if video.dim() != 5 or video.shape[channel_dim] != 3:
        raise ConfigError(f"video has shape {tuple(video.shape)}; need a {layout} tensor with 3 channels")
    mean_t = torch.tensor(check_channel_stats("mean", mean), dtype=torch.float32, device=video.device)
    std_t = torch.tensor(
        check_channel_stats("std", std, nonzero=True), dtype=torch.float32, device=video.device
    )
    x = video.float()
    if layout == "NCTHW":
        x = x.permute(0, 2, 3, 4, 1)
    x = (x * std_t + mean_t).mul_(255.0).round_().clamp_(0.0, 255.0)
    return x.to(torch.uint8).contiguous()
