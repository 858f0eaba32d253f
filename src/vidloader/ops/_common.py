"""What the uniform and the ragged clip op share outside their kernels and argument checks.

The validation of the arguments both wrappers take alike, the backend choice and the dispatch of an op body
to it (with the CUDA device made current for Triton), the output shape the op, its fake and both
implementations agree on, and the host side of the Triton launches: tile sizes, grid, the normalisation
constants and the compile-time flags. Nothing here imports Triton, so the package imports without it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ._checks import (
    check_channel_stats,
    check_flip,
    check_jitter,
    check_layout,
    check_out_dtype,
    check_size,
    check_views,
)

Backend = Literal["triton", "reference"]

# One program computes a BLOCK_H x BLOCK_W tile of one output frame.
BLOCK_H = 8
BLOCK_W = 64
NUM_WARPS = 4


def normalize_affine(
    mean: tuple[float, ...] | list[float], std: tuple[float, ...] | list[float], *, unit_input: bool
) -> tuple[list[float], list[float]]:
    """``(x - mean) / std`` as ``x * scale + shift`` per channel, computed in float64.

    ``unit_input`` says x is already in [0, 1] (jitter path); otherwise x is in [0, 255] and the 1/255 is
    folded into ``scale`` so the common path does one multiply-add per element.
    """
    div = 1.0 if unit_input else 255.0
    scale = [1.0 / (div * s) for s in std]
    shift = [-m / s for m, s in zip(mean, std, strict=True)]
    return scale, shift


@dataclass(frozen=True)
class OpSettings:
    """The validated arguments both ops take alike (output size, normalisation, dtype, layout, views)."""

    out_h: int
    out_w: int
    mean: list[float]
    std: list[float]
    out_dtype: torch.dtype
    layout: str
    views: int

    def op_args(self, flip: torch.Tensor, jitter: torch.Tensor | None) -> tuple[Any, ...]:
        """The run of op arguments both schemas share: ``size, flip, mean, std, out_dtype, layout, jitter,
        views``."""
        size = [self.out_h, self.out_w]
        return (size, flip, self.mean, self.std, self.out_dtype, self.layout, jitter, self.views)


def check_settings(size: Any, mean: Any, std: Any, out_dtype: Any, layout: Any, views: Any) -> OpSettings:
    """Check the arguments both op wrappers take alike, in the order the wrappers document them."""
    views = check_views(views)
    out_h, out_w = check_size(size)
    mean_t = check_channel_stats("mean", mean)
    std_t = check_channel_stats("std", std, nonzero=True)
    out_dtype = check_out_dtype(out_dtype)
    layout = check_layout(layout)
    return OpSettings(out_h, out_w, list(mean_t), list(std_t), out_dtype, layout, views)


def check_row_args(
    flip: Any, jitter: Any, rows: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``flip`` (None means no flips) and ``jitter`` (or None) for ``rows`` output clips, on ``device``."""
    if flip is None:
        flip = torch.zeros(rows, dtype=torch.bool, device=device)
    flip = check_flip(flip, rows)
    if jitter is not None:
        jitter = check_jitter(jitter, rows).to(device, non_blocking=True)
    return flip.to(device, non_blocking=True), jitter


@functools.cache
def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def backend_for(device: torch.device) -> Backend:
    """Which implementation the op body runs for tensors on ``device``.

    Args:
        device: the tensors' device.

    Returns:
        "triton" on CUDA or under ``TRITON_INTERPRET=1`` when Triton imports, else "reference" (pure torch).
    """
    wants_triton = device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    return "triton" if wants_triton and _triton_importable() else "reference"


def run_backend(
    device: torch.device,
    load_triton: Callable[[], Callable[..., torch.Tensor]],
    reference: Callable[..., torch.Tensor],
    args: tuple[Any, ...],
) -> torch.Tensor:
    """An op body: ``reference(*args)``, or the Triton launcher ``load_triton()`` returns (imported on use)."""
    if backend_for(device) != "triton":
        return reference(*args)
    launch = load_triton()
    if device.type == "cuda":
        # Triton launches on the current device; make that the tensors' (cuda:1 while cuda:0 is current).
        with torch.cuda.device(device):
            return launch(*args)
    return launch(*args)


def output_shape(rows: Any, frames: Any, height: Any, width: Any, layout: str) -> tuple[Any, ...]:
    """The op's output shape: ``[rows, 3, frames, H', W']`` (NCTHW) or ``[rows, frames, H', W', 3]``."""
    return (rows, 3, frames, height, width) if layout == "NCTHW" else (rows, frames, height, width, 3)


def tile_grid(rows: int, frames: int, out_h: int, out_w: int) -> tuple[int, int, int]:
    """The launch grid: one program per output frame and tile."""
    # triton.cdiv, spelled out so that this module does not import Triton.
    return (rows * frames, (out_h + BLOCK_H - 1) // BLOCK_H, (out_w + BLOCK_W - 1) // BLOCK_W)


def tile_partials(grid: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """Room for the grey pre-pass: one float32 per program and tile."""
    return torch.empty((grid[0], grid[1] * grid[2]), dtype=torch.float32, device=device)


def tiling() -> dict[str, int]:
    """The tile and warp keywords of every launch."""
    return {"BLOCK_H": BLOCK_H, "BLOCK_W": BLOCK_W, "num_warps": NUM_WARPS}


def device_bytes(flip: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``flip`` on ``device`` as uint8: Triton has no bool pointer type worth relying on, the bytes are the same."""
    return flip.to(device=device).contiguous().view(torch.uint8)


def out_arg(out: torch.Tensor) -> torch.Tensor:
    """What the main kernel stores into: bfloat16 as its int16 bits (the kernel rounds by hand)."""
    return out.view(torch.int16) if out.dtype == torch.bfloat16 else out


def affine_args(mean: Sequence[float], std: Sequence[float], jitter: torch.Tensor | None) -> list[float]:
    """``scale0, scale1, scale2, shift0, shift1, shift2`` of the main kernel (see ``normalize_affine``)."""
    scale, shift = normalize_affine(list(mean), list(std), unit_input=jitter is not None)
    return [*scale, *shift]


def kernel_flags(layout: str, jitter: torch.Tensor | None, out_dtype: torch.dtype) -> dict[str, Any]:
    """The main kernel's compile-time flags and tiling."""
    return {
        "NCTHW": layout == "NCTHW",
        "JITTER": jitter is not None,
        "BF16_BITS": out_dtype == torch.bfloat16,
        **tiling(),
    }
