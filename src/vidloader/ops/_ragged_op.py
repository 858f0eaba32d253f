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
from ._checks import (
    _compiling,
    check_channel_stats,
    check_flip,
    check_jitter,
    check_layout,
    check_out_dtype,
    check_size,
    check_views,
)
from ._common import output_shape, run_backend
from ._ragged import RaggedClips
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


def _check_rects(name: str, rects: object, rows: int, heights: list[int], widths: list[int]) -> torch.Tensor:
    """int64 ``[rows, 4]`` of ``(y0, x0, h, w)``, row ``n`` inside a ``heights[n] x widths[n]`` area."""
    if not isinstance(rects, torch.Tensor) or rects.dtype != torch.int64:
        raise ConfigError(
            f"{name} must be an int64 torch.Tensor [N, 4] of (y0, x0, h, w), got "
            f"{getattr(rects, 'dtype', type(rects).__name__)}"
        )
    if rects.dim() != 2 or rects.shape[1] != 4 or rects.shape[0] != rows:
        raise ConfigError(f"{name} has shape {tuple(rects.shape)}; need [{rows}, 4] (one per clip and view)")
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
    views = check_views(views)
    out_h, out_w = check_size(size)
    mean_t = check_channel_stats("mean", mean)
    std_t = check_channel_stats("std", std, nonzero=True)
    out_dtype = check_out_dtype(out_dtype)
    layout = check_layout(layout)
    rows = len(clips) * views
    boxes = _check_rects(
        "boxes",
        boxes,
        rows,
        [h for h in clips.heights for _ in range(views)],
        [w for w in clips.widths for _ in range(views)],
    )
    if dest is not None:
        dest = _check_rects("dest", dest, rows, [out_h] * rows, [out_w] * rows)
    device = clips.device
    if flip is None:
        flip = torch.zeros(rows, dtype=torch.bool, device=device)
    flip = check_flip(flip, rows)
    if jitter is not None:
        jitter = check_jitter(jitter, rows).to(device, non_blocking=True)
    return torch.ops.vidloader.clip_resized_crop_normalize_ragged(
        clips.data,
        clips.geometry().to(device, non_blocking=True),
        clips.frames,
        boxes.to(device, non_blocking=True),
        [out_h, out_w],
        flip.to(device, non_blocking=True),
        list(mean_t),
        list(std_t),
        out_dtype,
        layout,
        jitter,
        views,
        None if dest is None else dest.to(device, non_blocking=True),
    )
