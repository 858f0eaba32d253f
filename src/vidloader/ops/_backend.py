"""Which implementation runs a call of the fused op family: the Triton kernels or the pure-torch reference.

Nothing here imports Triton at module level, so the package imports without it.
"""

from __future__ import annotations

import functools
import os
from typing import Literal

import torch

from ._fused_args import FusedCall
from ._reference import fused_reference

Backend = Literal["triton", "reference"]


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


def run_fused(call: FusedCall) -> torch.Tensor:
    """The op body of both ops: ``call`` through the Triton launcher or the reference, by ``backend_for``."""
    device = call.clips.device
    if backend_for(device) != "triton":
        return fused_reference(call)
    from ._kernels import launch  # imported on use

    if device.type == "cuda":
        # Triton launches on the current device; make that the tensors' (cuda:1 while cuda:0 is current).
        with torch.cuda.device(device):
            return launch(call)
    return launch(call)
