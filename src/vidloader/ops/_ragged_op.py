"""``torch.ops.vidloader.clip_resized_crop_normalize_ragged``: the fused clip op on clips of mixed sizes.

Each clip of a :class:`RaggedClips` batch is cropped and resized from its own decoded size into its slot of
one fixed-size output batch, in one launch for the whole batch (Triton on CUDA or under TRITON_INTERPRET=1,
the pure-torch reference otherwise). An optional destination rectangle per output row letterboxes: the
picture is resized into that rectangle of the canvas and the rest of the canvas is 0 (the mean colour
after normalisation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._errors import ConfigError
from ._checks import check_rects
from ._common import check_row_args, check_settings, output_shape, run_backend
from ._ragged_clips import RaggedClips
from ._reference import ragged_resized_crop_normalize_reference


def _load_triton() -> Callable[..., torch.Tensor]:
    from ._ragged_kernels import ragged_resized_crop_normalize_triton

    return ragged_resized_crop_normalize_triton


@torch.library.custom_op(
    "vidloader::clip_resized_crop_normalize_ragged", mutates_args=(), device_types=("cpu", "cuda")
)
def _ragged_op(
    data: torch.Tensor,
    geometry: torch.Tensor,
    frames: int,
    boxes: torch.Tensor,
    size: list[int],
    flip: torch.Tensor,
    mean: list[float],
    std: list[float],
    out_dtype: torch.dtype,
    layout: str,
    jitter: torch.Tensor | None,
    views: int,
    dest: torch.Tensor | None,
) -> torch.Tensor:
    args = (data, geometry, frames, boxes, size, flip, mean, std, out_dtype, layout, jitter, views, dest)
    return run_backend(data.device, _load_triton, ragged_resized_crop_normalize_reference, args)


@_ragged_op.register_fake
def _(
    data: torch.Tensor,
    geometry: torch.Tensor,
    frames: int,
    boxes: torch.Tensor,
    size: list[int],
    flip: torch.Tensor,
    mean: list[float],
    std: list[float],
    out_dtype: torch.dtype,
    layout: str,
    jitter: torch.Tensor | None,
    views: int,
    dest: torch.Tensor | None,
) -> torch.Tensor:
    return data.new_empty(output_shape(boxes.shape[0], frames, size[0], size[1], layout), dtype=out_dtype)


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

    Returns:
        ``[B * views, ...]`` tensor of ``out_dtype`` on the clips' device, in ``layout``.

    Raises:
        ConfigError: for any argument outside the above.
    """
    if not isinstance(clips, RaggedClips):
        raise ConfigError(f"clips must be a vidloader.ops.RaggedClips, got {type(clips).__name__}")
    settings = check_settings(size, mean, std, out_dtype, layout, views)
    rows = len(clips) * settings.views
    boxes = check_rects(
        "boxes", boxes, rows, _per_row(clips.heights, settings.views), _per_row(clips.widths, settings.views)
    )
    if dest is not None:
        dest = check_rects("dest", dest, rows, [settings.out_h] * rows, [settings.out_w] * rows)
    device = clips.device
    flip, jitter = check_row_args(flip, jitter, rows, device)
    return torch.ops.vidloader.clip_resized_crop_normalize_ragged(
        clips.data,
        clips.geometry().to(device, non_blocking=True),
        clips.frames,
        boxes.to(device, non_blocking=True),
        *settings.op_args(flip, jitter),
        None if dest is None else dest.to(device, non_blocking=True),
    )


def _per_row(values: list[int], views: int) -> list[int]:
    """One value per clip repeated for each of its ``views`` output rows."""
    return [v for v in values for _ in range(views)]
