"""Triton kernels of the fused clip op family; they run on CUDA, or on CPU tensors under TRITON_INTERPRET=1.

One program computes a BLOCK_H x BLOCK_W tile of one output frame, all three channels: for every output
pixel it reads its source texels per channel as uint8 straight from the decoded clip, blends them in float32
with exactly the index/weight arithmetic of torch's upsample_bilinear2d (align_corners=False; with
antialias, that of _upsample_bilinear2d_aa), applies flip,
optional colour jitter and normalisation, and stores once in the output dtype and layout. Nothing is
materialised in between, which is the whole point: the op moves the input once and the output once. Where a
clip lives and where its picture sits on the canvas are compile-time specialisations (``_triton_resample``):
the dense op is the ragged op with ``UNIFORM`` geometry and without ``LETTERBOX``, at no per-clip cost.

Colour jitter needs the mean grey level of each output clip before any pixel can be finished, so it adds a
cheap pre-pass (_gray_sum_kernel) that recomputes the resized clip, reduces it to one float per tile and
writes only those partial sums; the main kernel then reads one float per clip.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from ._fused_args import FusedCall
from ._triton_resample import _picture_rgb

# One program computes a BLOCK_H x BLOCK_W tile of one output frame.
BLOCK_H = 8
BLOCK_W = 64
NUM_WARPS = 4


@triton.jit
def _tile(T, out_h, out_w, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """This program's output row ``n``, frame ``t`` and tile (rows, cols and its in-bounds mask)."""
    pid = tl.program_id(0)
    n = pid // T
    t = pid % T
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)
    mask = (rows < out_h)[:, None] & (cols < out_w)[None, :]
    return pid, n, t, rows, cols, mask


@triton.jit
def _brightness(red, green, blue, factor):
    red = tl.minimum(tl.maximum(tl.math.div_rn(red, 255.0) * factor, 0.0), 1.0)
    green = tl.minimum(tl.maximum(tl.math.div_rn(green, 255.0) * factor, 0.0), 1.0)
    blue = tl.minimum(tl.maximum(tl.math.div_rn(blue, 255.0) * factor, 0.0), 1.0)
    return red, green, blue


@triton.jit
def _gray(red, green, blue):
    return 0.2989 * red + 0.587 * green + 0.114 * blue


@triton.jit
def _blend_clamp(x, other, ratio):
    # torchvision's _blend: ratio * img1 + (1 - ratio) * img2, clamped to [0, 1].
    return tl.minimum(tl.maximum(ratio * x + (1.0 - ratio) * other, 0.0), 1.0)


@triton.jit
def _bf16_bits(x):
    """float32 -> bfloat16 bit pattern, rounded to nearest even (outputs are finite, so no NaN case).

    Done by hand because Triton's interpreter truncates float32 -> bfloat16 while GPUs round: with integer
    stores both paths give the same, correctly rounded, bits.
    """
    bits = x.to(tl.uint32, bitcast=True)
    bits = bits + (0x7FFF + ((bits >> 16) & 1))
    return (bits >> 16).to(tl.int16)


@triton.jit
def _color_jitter(red, green, blue, jitter_ptr, gray_mean_ptr, n):
    """Brightness, contrast (against the clip's mean grey) and saturation of output row ``n``, on [0, 1]."""
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
    return red, green, blue


@triton.jit
def _store_tile_sum(partial_ptr, pid, values):
    """One float per program and tile, in a fixed order the host reduces deterministically (no atomics)."""
    tiles = tl.num_programs(1) * tl.num_programs(2)
    tile = tl.program_id(1) * tl.num_programs(2) + tl.program_id(2)
    tl.store(partial_ptr + pid.to(tl.int64) * tiles + tile, tl.sum(values))


@triton.jit
def _store_rgb(
    out_ptr, red, green, blue, pid, n, t, T, rows, cols, mask, out_h, out_w,
    NCTHW: tl.constexpr, BF16_BITS: tl.constexpr,
):  # fmt: skip
    """Store the 3 normalised tiles of output row ``n``, frame ``t`` in the output's dtype and layout."""
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


@triton.jit
def _gray_sum_kernel(
    data_ptr, geo_ptr, boxes_ptr, dest_ptr, jitter_ptr, partial_ptr, T, H, W, views, out_h, out_w,
    UNIFORM: tl.constexpr, LETTERBOX: tl.constexpr, ANTIALIAS: tl.constexpr, BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):  # fmt: skip
    """Pre-pass for contrast: per tile, the sum of grey levels after brightness inside the picture (flip
    cannot change it)."""
    pid, n, t, rows, cols, mask = _tile(T, out_h, out_w, BLOCK_H, BLOCK_W)
    red, green, blue, inside = _picture_rgb(
        data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, H, W, views, rows, cols, mask, 0, out_h, out_w,
        UNIFORM, LETTERBOX, ANTIALIAS,
    )  # fmt: skip
    red, green, blue = _brightness(red, green, blue, tl.load(jitter_ptr + n * 3))
    _store_tile_sum(partial_ptr, pid, tl.where(inside, _gray(red, green, blue), 0.0))


@triton.jit
def _fused_kernel(
    data_ptr, geo_ptr, boxes_ptr, dest_ptr, flip_ptr, jitter_ptr, gray_mean_ptr, out_ptr,
    T, H, W, views, out_h, out_w, scale0, scale1, scale2, shift0, shift1, shift2,
    UNIFORM: tl.constexpr, LETTERBOX: tl.constexpr, ANTIALIAS: tl.constexpr, NCTHW: tl.constexpr,
    JITTER: tl.constexpr, BF16_BITS: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    pid, n, t, rows, cols, mask = _tile(T, out_h, out_w, BLOCK_H, BLOCK_W)
    red, green, blue, inside = _picture_rgb(
        data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, H, W, views, rows, cols, mask,
        tl.load(flip_ptr + n), out_h, out_w, UNIFORM, LETTERBOX, ANTIALIAS,
    )  # fmt: skip
    if JITTER:
        red, green, blue = _color_jitter(red, green, blue, jitter_ptr, gray_mean_ptr, n)
    red = red * scale0 + shift0
    green = green * scale1 + shift1
    blue = blue * scale2 + shift2
    if LETTERBOX:  # the bars: 0 is the mean colour after normalising
        red = tl.where(inside, red, 0.0)
        green = tl.where(inside, green, 0.0)
        blue = tl.where(inside, blue, 0.0)
    _store_rgb(out_ptr, red, green, blue, pid, n, t, T, rows, cols, mask, out_h, out_w, NCTHW, BF16_BITS)


def tiling() -> dict[str, int]:
    """The tile and warp keywords of every launch."""
    return {"BLOCK_H": BLOCK_H, "BLOCK_W": BLOCK_W, "num_warps": NUM_WARPS}


def launch(call: FusedCall) -> torch.Tensor:
    """Launch the kernels for ``call`` on the current CUDA stream; same contract as the reference."""
    clips = call.clips.contiguous()
    dev = clips.device
    boxes = call.boxes.to(device=dev).contiguous()
    out = torch.empty(call.out_shape(), dtype=call.rows.out_dtype, device=dev)
    if out.numel() == 0:
        return out
    uniform, letterbox = call.geometry is None, call.dest is not None
    # A specialisation that does not read a table (geometry when uniform, dest without letterbox, the jitter
    # ones without jitter) still takes a pointer there: any tensor will do.
    geometry = boxes if call.geometry is None else call.geometry.to(device=dev).contiguous()
    dest = boxes if call.dest is None else call.dest.to(device=dev).contiguous()
    height, width = (clips.shape[2], clips.shape[3]) if uniform else (1, 1)
    out_h, out_w = call.rows.size
    grid = (out.shape[0] * call.frames, triton.cdiv(out_h, BLOCK_H), triton.cdiv(out_w, BLOCK_W))
    where = (clips, geometry, boxes, dest)
    sizes = (call.frames, height, width, call.rows.views, out_h, out_w)
    flags: dict[str, Any] = {
        "UNIFORM": uniform,
        "LETTERBOX": letterbox,
        "ANTIALIAS": call.antialias,
        **tiling(),
    }
    jitter, gray_mean = boxes, boxes
    if call.rows.jitter is not None:
        jitter = call.rows.jitter.to(device=dev).contiguous()
        partial = torch.empty((grid[0], grid[1] * grid[2]), dtype=torch.float32, device=dev)
        _gray_sum_kernel[grid](*where, jitter, partial, *sizes, **flags)
        # Mean over the picture only (not the letterbox bars), in a fixed order: deterministic, no atomics.
        area = (dest[:, 2] * dest[:, 3]).to(torch.float32) if letterbox else out_h * out_w
        gray_mean = partial.view(out.shape[0], -1).sum(1).div_(area * call.frames)
    # Triton has no bool pointer type worth relying on: flips go as their bytes.
    flip = call.rows.flip.to(device=dev).contiguous().view(torch.uint8)
    # bfloat16 is stored as its int16 bits: the kernel rounds by hand (see _bf16_bits).
    out_arg = out.view(torch.int16) if out.dtype == torch.bfloat16 else out
    scale, shift = call.affine()
    _fused_kernel[grid](
        *where, flip, jitter, gray_mean, out_arg, *sizes, *scale, *shift, **flags,
        NCTHW=call.rows.layout == "NCTHW", JITTER=call.rows.jitter is not None,
        BF16_BITS=out.dtype == torch.bfloat16,
    )  # fmt: skip
    return out
