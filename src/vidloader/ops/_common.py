"""What the uniform and the ragged clip op share outside their kernels and argument checks.

The backend choice and the dispatch of an op body to it (with the CUDA device made current for Triton), the
output shape the op, its fake and both implementations agree on, and the host side of the Triton launches:
tile sizes, grid, the normalisation constants and the compile-time flags. Nothing here imports Triton, so
the package imports without it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from ._reference import normalize_affine

Backend = Literal["triton", "reference"]

# One program computes a BLOCK_H x BLOCK_W tile of one output frame.
BLOCK_H = 8
BLOCK_W = 64
NUM_WARPS = 4


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
