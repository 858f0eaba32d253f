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

from ._kernels import (
    _BLOCK_H,
    _BLOCK_W,
    _NUM_WARPS,
    _bf16_bits,
    _blend,
    _blend_clamp,
    _brightness,
    _gray,
    _source_taps,
)
from ._reference import normalize_affine


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
    box = boxes_ptr + n * 4
    y0 = tl.load(box).to(tl.int32)
    x0 = tl.load(box + 1).to(tl.int32)
    bh = tl.load(box + 2).to(tl.int32)
    bw = tl.load(box + 3).to(tl.int32)
    iy0, iy1, wy0, wy1 = _source_taps(r, bh, dh.to(tl.float32))
    ix0, ix1, wx0, wx1 = _source_taps(c, bw, dw.to(tl.float32))
    # Boxes are validated in Python, except under torch.compile: clamping keeps every read inside the clip.
    ry0 = tl.minimum(tl.maximum(y0 + iy0, 0), H - 1)
    ry1 = tl.minimum(tl.maximum(y0 + iy1, 0), H - 1)
    cx0 = tl.minimum(tl.maximum(x0 + ix0, 0), W - 1)
    cx1 = tl.minimum(tl.maximum(x0 + ix1, 0), W - 1)
    r0 = (ry0 * (W * 3))[:, None]
    r1 = (ry1 * (W * 3))[:, None]
    c0 = (cx0 * 3)[None, :]
    c1 = (cx1 * 3)[None, :]
    frame = data_ptr + off + t.to(tl.int64) * (H * W * 3)
    red = _blend(frame, r0, r1, c0, c1, wx0[None, :], wx1[None, :], wy0[:, None], wy1[:, None], inside)
    green = _blend(frame + 1, r0, r1, c0, c1, wx0[None, :], wx1[None, :], wy0[:, None], wy1[:, None], inside)
    blue = _blend(frame + 2, r0, r1, c0, c1, wx0[None, :], wx1[None, :], wy0[:, None], wy1[:, None], inside)
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
    pid = tl.program_id(0)
    n = pid // T
    t = pid % T
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)
    mask = (rows < out_h)[:, None] & (cols < out_w)[None, :]
    red, green, blue, inside = _ragged_rgb(
        data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, views, rows, cols, mask, 0, out_w
    )
    red, green, blue = _brightness(red, green, blue, tl.load(jitter_ptr + n * 3))
    gray = tl.where(inside, _gray(red, green, blue), 0.0)
    tiles = tl.num_programs(1) * tl.num_programs(2)
    tile = tl.program_id(1) * tl.num_programs(2) + tl.program_id(2)
    tl.store(partial_ptr + pid.to(tl.int64) * tiles + tile, tl.sum(gray))


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
    pid = tl.program_id(0)
    n = pid // T
    t = pid % T
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)
    mask = (rows < out_h)[:, None] & (cols < out_w)[None, :]
    flip = tl.load(flip_ptr + n)
    red, green, blue, inside = _ragged_rgb(
        data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, views, rows, cols, mask, flip, out_w
    )
    if JITTER:
        red, green, blue = _brightness(red, green, blue, tl.load(jitter_ptr + n * 3))
        contrast = tl.load(jitter_ptr + n * 3 + 1)
        saturation = tl.load(jitter_ptr + n * 3 + 2)
        mean_gray = tl.load(gray_mean_ptr + n)
        red = _blend_clamp(red, mean_gray, contrast)
        green = _blend_clamp(green, mean_gray, contrast)
        blue = _blend_clamp(blue, mean_gray, contrast)
        gray = _gray(red, green, blue)
        red = _blend_clamp(red, gray, saturation)
        green = _blend_clamp(green, gray, saturation)
        blue = _blend_clamp(blue, gray, saturation)
    red = tl.where(inside, red * scale0 + shift0, 0.0)
    green = tl.where(inside, green * scale1 + shift1, 0.0)
    blue = tl.where(inside, blue * scale2 + shift2, 0.0)
    if BF16_BITS:
        red = _bf16_bits(red)
        green = _bf16_bits(green)
        blue = _bf16_bits(blue)
    dtype = out_ptr.dtype.element_ty
    if NCTHW:
        plane = out_h * out_w
        pix = rows[:, None] * out_w + cols[None, :]
        n64 = n.to(tl.int64)
        tl.store(out_ptr + ((n64 * 3 + 0) * T + t) * plane + pix, red.to(dtype), mask=mask)
        tl.store(out_ptr + ((n64 * 3 + 1) * T + t) * plane + pix, green.to(dtype), mask=mask)
        tl.store(out_ptr + ((n64 * 3 + 2) * T + t) * plane + pix, blue.to(dtype), mask=mask)
    else:
        pix = (rows[:, None] * out_w + cols[None, :]) * 3
        base = out_ptr + pid.to(tl.int64) * (out_h * out_w * 3)
        tl.store(base + pix, red.to(dtype), mask=mask)
        tl.store(base + pix + 1, green.to(dtype), mask=mask)
        tl.store(base + pix + 2, blue.to(dtype), mask=mask)


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
    geometry = geometry.to(device=dev).contiguous()
    boxes = boxes.to(device=dev).contiguous()
    n_out = boxes.shape[0]
    out_h, out_w = int(size[0]), int(size[1])
    if dest is None:
        dest = torch.tensor([[0, 0, out_h, out_w]], dtype=torch.int64, device=dev).expand(n_out, 4)
    dest = dest.to(device=dev).contiguous()
    flip_u8 = flip.to(device=dev).contiguous().view(torch.uint8)
    shape = (n_out, 3, frames, out_h, out_w) if layout == "NCTHW" else (n_out, frames, out_h, out_w, 3)
    out = torch.empty(shape, dtype=out_dtype, device=dev)
    if out.numel() == 0:
        return out
    grid = (n_out * frames, triton.cdiv(out_h, _BLOCK_H), triton.cdiv(out_w, _BLOCK_W))
    scale, shift = normalize_affine(mean, std, unit_input=jitter is not None)
    common = (data, geometry, boxes, dest)
    if jitter is not None:
        jitter = jitter.to(device=dev).contiguous()
        partial = torch.empty((n_out * frames, grid[1] * grid[2]), dtype=torch.float32, device=dev)
        _ragged_gray_sum_kernel[grid](
            *common,
            jitter,
            partial,
            frames,
            views,
            out_h,
            out_w,
            BLOCK_H=_BLOCK_H,
            BLOCK_W=_BLOCK_W,
            num_warps=_NUM_WARPS,
        )
        # Mean over the picture only (not the letterbox bars), in a fixed order: deterministic, no atomics.
        area = (dest[:, 2] * dest[:, 3]).to(torch.float32) * frames
        gray_mean = partial.view(n_out, -1).sum(1).div_(area)
        jitter_arg, mean_arg = jitter, gray_mean
    else:
        jitter_arg, mean_arg = boxes, boxes  # unused by the JITTER=False specialisation
    bf16_bits = out_dtype == torch.bfloat16
    _ragged_kernel[grid](
        *common,
        flip_u8,
        jitter_arg,
        mean_arg,
        out.view(torch.int16) if bf16_bits else out,
        frames,
        views,
        out_h,
        out_w,
        scale[0],
        scale[1],
        scale[2],
        shift[0],
        shift[1],
        shift[2],
        NCTHW=layout == "NCTHW",
        JITTER=jitter is not None,
        BF16_BITS=bf16_bits,
        BLOCK_H=_BLOCK_H,
        BLOCK_W=_BLOCK_W,
        num_warps=_NUM_WARPS,
    )
    return out
