"""Triton kernels of the ragged clip op: every clip at its own frame size, one launch for the batch.

Same per-pixel arithmetic as ``_kernels`` (the texel taps, blend, jitter, normalisation and bf16 rounding
are the very same jitted helpers); what differs is where a clip lives: each program reads its clip's
``(offset, height, width)`` from the geometry table instead of deriving it from a batch stride, and its
output row's destination rectangle on the canvas (letterboxing) from ``dest``. Canvas pixels outside the
rectangle are written as 0, the normalised mean colour.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    affine_args,
    device_bytes,
    kernel_flags,
    out_arg,
    output_shape,
    tile_grid,
    tile_partials,
    tiling,
)
from ._kernels import (
    _blend_rgb,
    _box_taps,
    _brightness,
    _color_jitter,
    _gray,
    _store_rgb,
    _store_tile_sum,
    _tile,
)


@triton.jit
def _ragged_rgb(data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, views, rows, cols, mask, flip, out_w):
    """3 float32 tiles of output row ``n`` at canvas (rows, cols) of frame ``t``, and where the picture is."""
    clip = n // views
    off = tl.load(geo_ptr + clip * 3)
    H = tl.load(geo_ptr + clip * 3 + 1).to(tl.int32)
    W = tl.load(geo_ptr + clip * 3 + 2).to(tl.int32)
    dy = tl.load(dest_ptr + n * 4).to(tl.int32)
    dx = tl.load(dest_ptr + n * 4 + 1).to(tl.int32)
    dh = tl.load(dest_ptr + n * 4 + 2).to(tl.int32)
    dw = tl.load(dest_ptr + n * 4 + 3).to(tl.int32)
    # A flipped canvas column j shows what unflipped column out_w - 1 - j would.
    canvas_cols = tl.where(flip != 0, out_w - 1 - cols, cols)
    r = rows - dy
    c = canvas_cols - dx
    inside = mask & ((r >= 0) & (r < dh))[:, None] & ((c >= 0) & (c < dw))[None, :]
    r = tl.minimum(tl.maximum(r, 0), dh - 1)
    c = tl.minimum(tl.maximum(c, 0), dw - 1)
    r0, r1, c0, c1, wx0, wx1, wy0, wy1 = _box_taps(boxes_ptr + n * 4, H, W, r, c, dh, dw)
    frame = data_ptr + off + t.to(tl.int64) * (H * W * 3)
    red, green, blue = _blend_rgb(frame, r0, r1, c0, c1, wx0, wx1, wy0, wy1, inside)
    return red, green, blue, inside


@triton.jit
def _ragged_gray_sum_kernel(
    data_ptr,
    geo_ptr,
    boxes_ptr,
    dest_ptr,
    jitter_ptr,
    partial_ptr,
    T,
    views,
    out_h,
    out_w,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """Pre-pass for contrast: per tile, the sum of grey levels (after brightness) inside the picture."""
    pid, n, t, rows, cols, mask = _tile(T, out_h, out_w, BLOCK_H, BLOCK_W)
    red, green, blue, inside = _ragged_rgb(
        data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, views, rows, cols, mask, 0, out_w
    )
    red, green, blue = _brightness(red, green, blue, tl.load(jitter_ptr + n * 3))
    _store_tile_sum(partial_ptr, pid, tl.where(inside, _gray(red, green, blue), 0.0))


@triton.jit
def _ragged_kernel(
    data_ptr,
    geo_ptr,
    boxes_ptr,
    dest_ptr,
    flip_ptr,
    jitter_ptr,
    gray_mean_ptr,
    out_ptr,
    T,
    views,
    out_h,
    out_w,
    scale0,
    scale1,
    scale2,
    shift0,
    shift1,
    shift2,
    NCTHW: tl.constexpr,
    JITTER: tl.constexpr,
    BF16_BITS: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    pid, n, t, rows, cols, mask = _tile(T, out_h, out_w, BLOCK_H, BLOCK_W)
    flip = tl.load(flip_ptr + n)
    red, green, blue, inside = _ragged_rgb(
        data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, views, rows, cols, mask, flip, out_w
    )
    if JITTER:
        red, green, blue = _color_jitter(red, green, blue, jitter_ptr, gray_mean_ptr, n)
    red = tl.where(inside, red * scale0 + shift0, 0.0)
    green = tl.where(inside, green * scale1 + shift1, 0.0)
    blue = tl.where(inside, blue * scale2 + shift2, 0.0)
    _store_rgb(out_ptr, red, green, blue, pid, n, t, T, rows, cols, mask, out_h, out_w, NCTHW, BF16_BITS)


def ragged_resized_crop_normalize_triton(
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
    """Launch the ragged kernels (on the current CUDA stream); same contract as the reference."""
    dev = data.device
    boxes = boxes.to(device=dev).contiguous()
    n_out = boxes.shape[0]
    out_h, out_w = int(size[0]), int(size[1])
    if dest is None:
        dest = torch.tensor([[0, 0, out_h, out_w]], dtype=torch.int64, device=dev).expand(n_out, 4)
    dest = dest.to(device=dev).contiguous()
    out = torch.empty(output_shape(n_out, frames, out_h, out_w, layout), dtype=out_dtype, device=dev)
    if out.numel() == 0:
        return out
    grid = tile_grid(n_out, frames, out_h, out_w)
    common = (data, geometry.to(device=dev).contiguous(), boxes, dest)
    jitter_arg, mean_arg = boxes, boxes  # unused by the JITTER=False specialisation
    if jitter is not None:
        jitter_arg = jitter.to(device=dev).contiguous()
        partial = tile_partials(grid, dev)
        _ragged_gray_sum_kernel[grid](*common, jitter_arg, partial, frames, views, out_h, out_w, **tiling())
        # Mean over the picture only (not the letterbox bars), in a fixed order: deterministic, no atomics.
        area = (dest[:, 2] * dest[:, 3]).to(torch.float32) * frames
        mean_arg = partial.view(n_out, -1).sum(1).div_(area)
    _ragged_kernel[grid](
        *common, device_bytes(flip, dev), jitter_arg, mean_arg, out_arg(out), frames, views, out_h, out_w,
        *affine_args(mean, std, jitter), **kernel_flags(layout, jitter, out_dtype),
    )  # fmt: skip
    return out
