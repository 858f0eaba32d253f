"""Argument checks for the clip ops, run in the Python wrappers so the custom ops themselves stay traceable.

Every failure raises ConfigError naming the argument, the bad value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .._errors import ConfigError

LAYOUTS: tuple[str, ...] = ("NCTHW", "NTHWC")
OUT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)


def _compiling() -> bool:
    return bool(torch.compiler.is_compiling())


def check_layout(layout: Any) -> str:
    """Check an ops layout.

    Args:
        layout: "NCTHW" or "NTHWC".

    Returns:
        The layout.

    Raises:
        ConfigError: the value is not allowed (the message names it and what is).
    """
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r} is not allowed; choose one of {', '.join(map(repr, LAYOUTS))}")
    return layout


def check_out_dtype(out_dtype: Any) -> torch.dtype:
    """Check an ops output dtype.

    Args:
        out_dtype: torch.float32, torch.float16 or torch.bfloat16.

    Returns:
        The dtype.

    Raises:
        ConfigError: the value is not allowed (the message names it and what is).
    """
    if not isinstance(out_dtype, torch.dtype) or out_dtype not in OUT_DTYPES:
        raise ConfigError(
            f"out_dtype={out_dtype!r} is not allowed; choose one of {', '.join(map(str, OUT_DTYPES))}"
        )
    return out_dtype


def check_size(size: Any, name: str = "size") -> tuple[int, int]:
    """``size`` as ``(height, width)``; an int means a square.

    Args:
        size: an int >= 1 or a (height, width) pair of them.
        name: the argument's name, for the message.

    Returns:
        ``(height, width)``.

    Raises:
        ConfigError: the value is not allowed (the message names it and what is).
    """
    if isinstance(size, int) and not isinstance(size, bool):
        pair: tuple[Any, ...] = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        pair = tuple(size)
    else:
        raise ConfigError(
            f"{name}={size!r} is not allowed; give an int or a (height, width) pair of ints >= 1"
        )
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(
                f"{name}={size!r} is not allowed; give an int or a (height, width) pair of ints >= 1"
            )
    return int(pair[0]), int(pair[1])


def check_channel_stats(name: str, values: Any, *, nonzero: bool = False) -> tuple[float, float, float]:
    """Three finite per-channel numbers (R, G, B).

    Args:
        name: the argument's name, for the message.
        values: a sequence or tensor of 3 numbers.
        nonzero: refuse zeros (for std, which divides).

    Returns:
        The three values as floats.

    Raises:
        ConfigError: the value is not allowed (the message names it and what is).
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().flatten().tolist()
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != 3:
        raise ConfigError(f"{name}={values!r} is not allowed; give 3 numbers, one per RGB channel")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name}={values!r} is not allowed; every value must be a finite number")
        if nonzero and v == 0:
            raise ConfigError(
                f"{name}={values!r} is not allowed; values divide the input and must be non-zero"
            )
        out.append(float(v))
    return out[0], out[1], out[2]


def check_video(video: Any) -> torch.Tensor:
    """Check a clip batch for the ops.

    Args:
        video: uint8 ``[B, T, H, W, 3]`` with non-empty frames.

    Returns:
        The tensor.

    Raises:
        ConfigError: the value is not allowed (the message names it and what is).
    """
    if not isinstance(video, torch.Tensor):
        raise ConfigError(f"video must be a torch.Tensor, got {type(video).__name__}")
    if video.dtype != torch.uint8:
        raise ConfigError(f"video has dtype {video.dtype}; only torch.uint8 [B, T, H, W, C] is allowed")
    if video.dim() != 5:
        raise ConfigError(
            f"video has shape {tuple(video.shape)} (rank {video.dim()}); need rank 5 [B, T, H, W, C]"
        )
    if video.shape[-1] != 3:
        raise ConfigError(
            f"video has C={video.shape[-1]} channels (shape {tuple(video.shape)}); only C=3 (RGB) is allowed"
        )
    if video.shape[2] < 1 or video.shape[3] < 1:
        raise ConfigError(f"video has empty frames (shape {tuple(video.shape)}); need H >= 1 and W >= 1")
    return video


def check_rects(name: str, rects: Any, rows: int, heights: list[int], widths: list[int]) -> torch.Tensor:
    """int64 ``[rows, 4]`` of ``(y0, x0, h, w)``, row ``n`` non-empty and inside a ``heights[n] x widths[n]`` area.

    Crop boxes (in their clip's frame) and letterbox rectangles (in the output canvas) alike. The value check
    reads the rectangles on the host: free for CPU tensors (what the transforms pass), one synchronisation for
    CUDA ones. It is skipped under torch.compile, where the kernel clamps its reads to the frame instead, so a
    bad box can give wrong pixels but never an out-of-bounds read.
    """
    if not isinstance(rects, torch.Tensor):
        raise ConfigError(
            f"{name} must be an int64 torch.Tensor [N, 4] of (y0, x0, h, w), got {type(rects).__name__}"
        )
    if rects.dtype != torch.int64:
        raise ConfigError(
            f"{name} has dtype {rects.dtype}; only torch.int64 [N, 4] (y0, x0, h, w) is allowed"
        )
    if rects.dim() != 2 or rects.shape[1] != 4 or rects.shape[0] != rows:
        count = rects.dim() == 2 and rects.shape[0] != rows
        short = f": {rects.shape[0]} rows but the batch needs {rows}" if count else ""
        raise ConfigError(
            f"{name} has shape {tuple(rects.shape)}; need [{rows}, 4], [B, 4] rows of (y0, x0, h, w), one per "
            f"clip and view{short}"
        )
    if _compiling() or rows == 0:
        return rects
    y0, x0, h, w = rects.cpu().unbind(1)
    hmax, wmax = torch.tensor(heights), torch.tensor(widths)
    bad = (h < 1) | (w < 1) | (y0 < 0) | (x0 < 0) | (y0 + h > hmax) | (x0 + w > wmax)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        r = tuple(int(v) for v in rects[i].tolist())
        raise ConfigError(
            f"{name}[{i}]=(y0={r[0]}, x0={r[1]}, h={r[2]}, w={r[3]}) is not allowed for a {heights[i]}x{widths[i]} "
            f"area; need h >= 1, w >= 1, 0 <= y0, y0 + h <= {heights[i]}, 0 <= x0, x0 + w <= {widths[i]}"
        )
    return rects


def check_flip(flip: Any, rows: int) -> torch.Tensor:
    if not isinstance(flip, torch.Tensor):
        raise ConfigError(f"flip must be a bool torch.Tensor [B] (or None), got {type(flip).__name__}")
    if flip.dtype != torch.bool:
        raise ConfigError(f"flip has dtype {flip.dtype}; only torch.bool [B] is allowed")
    if flip.dim() != 1 or flip.shape[0] != rows:
        raise ConfigError(f"flip has shape {tuple(flip.shape)}; need [{rows}] (one per output clip)")
    return flip


def check_jitter(jitter: Any, rows: int) -> torch.Tensor:
    """float32 ``[rows, 3]`` of (brightness, contrast, saturation) factors, each finite and >= 0."""
    if not isinstance(jitter, torch.Tensor):
        raise ConfigError(
            f"jitter must be a float32 torch.Tensor [B, 3] or None, got {type(jitter).__name__}"
        )
    if jitter.dtype != torch.float32:
        raise ConfigError(f"jitter has dtype {jitter.dtype}; only torch.float32 [B, 3] is allowed")
    if jitter.dim() != 2 or jitter.shape[0] != rows or jitter.shape[1] != 3:
        raise ConfigError(
            f"jitter has shape {tuple(jitter.shape)}; need [{rows}, 3] rows of (brightness, contrast, saturation)"
        )
    if _compiling() or rows == 0:
        return jitter
    host = jitter.detach().cpu()
    bad = ~torch.isfinite(host).all(1) | (host < 0).any(1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ConfigError(
            f"jitter[{i}]={tuple(host[i].tolist())} is not allowed; factors must be finite and >= 0 "
            "(1 leaves the clip unchanged)"
        )
    return jitter


def check_views(views: Any) -> int:
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise ConfigError(f"views={views!r} is not allowed; need an int >= 1")
    return views
