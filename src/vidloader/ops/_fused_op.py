"""``torch.ops.vidloader.clip_resized_crop_normalize`` and ``..._ragged``: one op family, and its wrappers.

Both ops are ``torch.library.custom_op`` s, so torch.compile sees one opaque node with a fake (shape-only)
implementation instead of tracing into Triton or the reference loop. Their schemas differ only in how the
input clips are laid out; each op's arguments become one ``FusedCall``, which the one body (``run_fused``:
the Triton kernels on CUDA or under ``TRITON_INTERPRET=1``, the pure-torch reference otherwise) and the one
fake take. Validation lives in the wrappers, outside the ops, so the ops stay traceable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .._errors import ConfigError
from ._backend import run_fused
from ._checks import check_video
from ._fused_args import DENSE_SCHEMA, RAGGED_SCHEMA, FusedCall, check_call
from ._ragged_clips import RaggedClips


def _fake(call: FusedCall) -> torch.Tensor:
    return call.clips.new_empty(call.out_shape(), dtype=call.rows.out_dtype)


def _define(name: str, schema: str, to_call: Callable[..., FusedCall]) -> None:
    """Register ``vidloader::name`` with ``schema``: its arguments, as ``to_call`` reads them, run the op."""

    def body(*args: Any) -> torch.Tensor:
        return run_fused(to_call(*args))

    body.__name__ = name
    op = torch.library.custom_op(
        f"vidloader::{name}", body, mutates_args=(), device_types=("cpu", "cuda"), schema=schema
    )
    op.register_fake(lambda *args: _fake(to_call(*args)))


_define("clip_resized_crop_normalize", DENSE_SCHEMA, FusedCall.from_dense)
_define("clip_resized_crop_normalize_ragged", RAGGED_SCHEMA, FusedCall.from_ragged)


def _invoke(call: FusedCall) -> torch.Tensor:
    """The op a checked call belongs to: the dense one for uniform geometry, else the ragged one."""
    if call.geometry is None:
        return torch.ops.vidloader.clip_resized_crop_normalize(*call.op_args())
    return torch.ops.vidloader.clip_resized_crop_normalize_ragged(*call.op_args())


def clip_resized_crop_normalize(
    video_u8: torch.Tensor,
    boxes: torch.Tensor,
    size: int | Sequence[int],
    flip: torch.Tensor | None,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    out_dtype: torch.dtype = torch.float32,
    layout: str = "NCTHW",
    jitter: torch.Tensor | None = None,
    views: int = 1,
    antialias: bool = False,
) -> torch.Tensor:
    """Crop, resize, flip, colour-jitter and normalise a batch of clips in one pass.

    Args:
        video_u8: uint8 ``[B, T, H, W, 3]`` RGB clips (made contiguous if they are not).
        boxes: int64 ``[B * views, 4]`` crop boxes ``(y0, x0, h, w)``, one per output clip, clip-major; the
            same box is used for every frame of that clip. CPU or the video's device (CPU avoids a sync for
            the bounds check).
        size: output ``(H', W')`` (an int means square). Resizing is
            ``F.interpolate(mode="bilinear", align_corners=False, antialias=antialias)`` on float32 of the box.
        flip: bool ``[B * views]``: mirror that output clip horizontally; None means no flips.
        mean, std: 3 per-channel values; the output is ``(x / 255 - mean) / std``.
        out_dtype: torch.float32, torch.float16 or torch.bfloat16.
        layout: "NCTHW" (``[N, 3, T, H', W']``) or "NTHWC" (``[N, T, H', W', 3]``).
        jitter: optional float32 ``[B * views, 3]`` (brightness, contrast, saturation) factors, applied as
            torchvision's adjust_* on [0, 1] after resizing and before normalising, clamped after each step;
            contrast blends with the mean grey level of the whole output clip. Costs one extra read-only
            pre-pass over the input on the kernel path.
        views: output clips per input clip; output row ``n`` comes from input clip ``n // views``. Lets
            multi-crop evaluation run in one launch without copying the video.
        antialias: resize with torch's antialiased bilinear filter (torchvision v2 ``Resize``'s default),
            whose support widens with the downscale factor; upscaling is unchanged by it. Default False, as
            torchvision's video presets.

    Returns:
        ``[B * views, ...]`` tensor of ``out_dtype`` on the video's device, in ``layout``.

    Raises:
        ConfigError: for any argument outside the above.
    """
    video_u8 = check_video(video_u8)
    batch, frames, height, width = video_u8.shape[:4]
    rows = (size, flip, mean, std, out_dtype, layout, jitter, views)
    sizes = [(height, width)] * batch
    return _invoke(check_call(video_u8.contiguous(), None, frames, sizes, boxes, rows, None, antialias))


def clip_resized_crop_normalize_ragged(
    clips: RaggedClips,
    boxes: torch.Tensor,
    size: int | Sequence[int],
    flip: torch.Tensor | None,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    out_dtype: torch.dtype = torch.float32,
    layout: str = "NCTHW",
    jitter: torch.Tensor | None = None,
    views: int = 1,
    dest: torch.Tensor | None = None,
    antialias: bool = False,
) -> torch.Tensor:
    """Crop, resize, flip, jitter and normalise clips of mixed frame sizes into one batch, in one pass.

    Same semantics as :func:`clip_resized_crop_normalize` row by row, except that clip ``i`` has its own
    ``clips.sizes[i]`` and each box must lie inside its own clip's frame.

    Args:
        clips: the ragged uint8 batch (``B`` clips of ``clips.frames`` frames).
        boxes: int64 ``[B * views, 4]`` crop boxes ``(y0, x0, h, w)`` in the source clip's pixels.
        size: output canvas ``(H', W')`` (an int means square).
        flip: bool ``[B * views]`` mirrors the whole output canvas; None means no flips.
        mean, std: 3 per-channel values; the output is ``(x / 255 - mean) / std``.
        out_dtype: torch.float32, torch.float16 or torch.bfloat16.
        layout: "NCTHW" or "NTHWC".
        jitter: optional float32 ``[B * views, 3]`` (brightness, contrast, saturation) factors; contrast
            blends with the mean grey of the picture (letterbox bars excluded).
        views: output clips per input clip (row ``n`` comes from clip ``n // views``).
        dest: optional int64 ``[B * views, 4]`` rectangles ``(y0, x0, h, w)`` of the canvas the box is
            resized into (letterboxing); the rest of the canvas is 0. None means the whole canvas.
        antialias: resize with torch's antialiased bilinear filter (see :func:`clip_resized_crop_normalize`).

    Returns:
        ``[B * views, ...]`` tensor of ``out_dtype`` on the clips' device, in ``layout``.

    Raises:
        ConfigError: for any argument outside the above.
    """
    if not isinstance(clips, RaggedClips):
        raise ConfigError(f"clips must be a vidloader.ops.RaggedClips, got {type(clips).__name__}")
    rows = (size, flip, mean, std, out_dtype, layout, jitter, views)
    geometry = clips.geometry()
    return _invoke(check_call(clips.data, geometry, clips.frames, clips.sizes, boxes, rows, dest, antialias))
