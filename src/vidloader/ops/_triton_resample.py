"""Triton helpers that find an output row's picture and resample it from its clip: where the clip's frame is,
where the picture sits on the canvas, and the bilinear (optionally antialiased) taps.

Each is specialised by compile-time flags, so the dense op (uniform geometry, the whole canvas) pays for no
per-clip lookup: ``UNIFORM`` takes the frame from the batch stride instead of the geometry table, and
without ``LETTERBOX`` the picture is the whole canvas (no rectangle load, no inside mask); ``ANTIALIAS``
swaps the 2 x 2 bilinear taps for torch's antialiased window, whose size follows the downscale factor.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _source_taps(dst, in_size, out_size_f):
    """Source indices and weights of destination indices ``dst``, as torch's bilinear (align_corners=False).

    torch computes ``scale * (dst + 0.5) - 0.5`` in float32 with one rounding (an FMA, on CPU and CUDA). The
    product of two float32 values is exact in float64 and so is subtracting 0.5 at these magnitudes, so doing
    it in float64 and rounding once reproduces the FMA bit for bit, also under the numpy interpreter. Getting
    this exactly right matters: at a source coordinate near 300 one float32 ulp of the weight is ~1e-5 of the
    0..255 range.
    """
    scale = tl.math.div_rn(in_size.to(tl.float32), out_size_f)
    src = (scale.to(tl.float64) * (dst.to(tl.float64) + 0.5) - 0.5).to(tl.float32)
    src = tl.maximum(src, 0.0)
    i0 = tl.minimum(src.to(tl.int32), in_size - 1)
    lam1 = tl.minimum(tl.maximum(src - i0.to(tl.float32), 0.0), 1.0)
    i1 = i0 + (i0 < in_size - 1).to(tl.int32)
    return i0, i1, 1.0 - lam1, lam1


@triton.jit
def _blend(frame, r0, r1, c0, c1, wx0, wx1, wy0, wy1, mask):
    # torch's order: rows first interpolate along x, then the two rows blend along y.
    p00 = tl.load(frame + r0 + c0, mask=mask, other=0).to(tl.float32)
    p01 = tl.load(frame + r0 + c1, mask=mask, other=0).to(tl.float32)
    p10 = tl.load(frame + r1 + c0, mask=mask, other=0).to(tl.float32)
    p11 = tl.load(frame + r1 + c1, mask=mask, other=0).to(tl.float32)
    return wy0 * (wx0 * p00 + wx1 * p01) + wy1 * (wx0 * p10 + wx1 * p11)


@triton.jit
def _bilinear_rgb(frame, box, H, W, rows, cols, out_h, out_w, mask):
    """The crop ``box`` (y0, x0, h, w) of an ``H x W`` RGB ``frame`` resized to ``out_h x out_w``, at
    (rows, cols): 3 float32 tiles."""
    y0 = tl.load(box).to(tl.int32)
    x0 = tl.load(box + 1).to(tl.int32)
    iy0, iy1, wy0, wy1 = _source_taps(rows, tl.load(box + 2).to(tl.int32), tl.cast(out_h, tl.float32))
    ix0, ix1, wx0, wx1 = _source_taps(cols, tl.load(box + 3).to(tl.int32), tl.cast(out_w, tl.float32))
    # Boxes are validated in Python, except under torch.compile: clamping keeps every read inside the frame.
    r0 = (tl.minimum(tl.maximum(y0 + iy0, 0), H - 1) * (W * 3))[:, None]
    r1 = (tl.minimum(tl.maximum(y0 + iy1, 0), H - 1) * (W * 3))[:, None]
    c0 = (tl.minimum(tl.maximum(x0 + ix0, 0), W - 1) * 3)[None, :]
    c1 = (tl.minimum(tl.maximum(x0 + ix1, 0), W - 1) * 3)[None, :]
    wx0, wx1, wy0, wy1 = wx0[None, :], wx1[None, :], wy0[:, None], wy1[:, None]
    red = _blend(frame, r0, r1, c0, c1, wx0, wx1, wy0, wy1, mask)
    green = _blend(frame + 1, r0, r1, c0, c1, wx0, wx1, wy0, wy1, mask)
    blue = _blend(frame + 2, r0, r1, c0, c1, wx0, wx1, wy0, wy1, mask)
    return red, green, blue


@triton.jit
def _aa_window(dst, in_size, out_size):
    """torch's antialiased bilinear window (``_upsample_bilinear2d_aa``, align_corners=False) of destination
    indices ``dst``: the source indices ``[lo, hi)``, the window centre, 1 / scale and the tap count.

    The triangle filter's support is the downscale factor ``scale = in / out`` when that is > 1 (else 1), so
    every source pixel under an output pixel counts. The arithmetic is that of torch's CPU kernel: float32
    values, each ``+ 0.5`` in float64 as there, and truncation toward zero. A pixel weighs more than 0 only
    if its centre is less than ``support`` from the window centre, so ``ceil(2 * support)`` taps from ``lo``
    hold every non-zero weight (up to float rounding right at the support's edge, where a weight is 0 to
    within an ulp): one count for the whole tile, where ``hi - lo`` varies by a tap between pixels.
    """
    scale = tl.math.div_rn(in_size.to(tl.float32), tl.cast(out_size, tl.float32))
    down = scale >= 1.0
    support = tl.where(down, scale, 1.0)
    invscale = tl.where(down, (1.0 / scale.to(tl.float64)).to(tl.float32), 1.0)
    center = (scale.to(tl.float64) * (dst.to(tl.float64) + 0.5)).to(tl.float32)
    lo = tl.maximum(((center - support).to(tl.float64) + 0.5).to(tl.int32), 0)
    hi = tl.minimum(((center + support).to(tl.float64) + 0.5).to(tl.int32), in_size)
    return lo, hi, center, invscale, tl.math.ceil(2.0 * support).to(tl.int32)


@triton.jit
def _aa_weight(j, lo, hi, center, invscale):
    """The triangle weight of source index ``j`` in its window (0 outside ``[lo, hi)``), before normalising."""
    x = ((j.to(tl.float32) - center).to(tl.float64) + 0.5) * invscale.to(tl.float64)
    x = tl.abs(x.to(tl.float32))
    return tl.where((j >= lo) & (j < hi) & (x < 1.0), 1.0 - x, 0.0)


@triton.jit
def _aa_total(lo, hi, center, invscale, taps):
    """Each window's weight sum, which torch divides every weight by (1 for the empty windows of lanes
    outside the picture)."""
    total = tl.zeros(lo.shape, tl.float32)
    k = taps * 0  # while, not range: Triton's interpreter cannot index a range by a tensor bound
    while k < taps:
        total += _aa_weight(lo + k, lo, hi, center, invscale)
        k += 1
    return tl.where(total > 0.0, total, 1.0)


@triton.jit
def _zeros_rgb(mask):
    return (
        tl.zeros(mask.shape, tl.float32),
        tl.zeros(mask.shape, tl.float32),
        tl.zeros(mask.shape, tl.float32),
    )


@triton.jit
def _aa_row(row, x0, W, lo, hi, center, invscale, total, taps, mask):
    """Source row ``row`` (one per output row) blended along x with the normalised weights: 3 float32 tiles."""
    red, green, blue = _zeros_rgb(mask)
    k = taps * 0
    while k < taps:
        x = lo + k
        wx = tl.math.div_rn(_aa_weight(x, lo, hi, center, invscale), total)[None, :]
        texel = row + (tl.minimum(tl.maximum(x0 + x, 0), W - 1) * 3)[None, :]
        red += wx * tl.load(texel, mask=mask, other=0).to(tl.float32)
        green += wx * tl.load(texel + 1, mask=mask, other=0).to(tl.float32)
        blue += wx * tl.load(texel + 2, mask=mask, other=0).to(tl.float32)
        k += 1
    return red, green, blue


@triton.jit
def _antialiased_rgb(frame, box, H, W, rows, cols, out_h, out_w, mask):
    """The crop ``box`` (y0, x0, h, w) of an ``H x W`` RGB ``frame`` resized to ``out_h x out_w`` with torch's
    antialiased bilinear filter, at (rows, cols): 3 float32 tiles. As torch does, each source row is blended
    along x first and the rows then along y."""
    y0 = tl.load(box).to(tl.int32)
    x0 = tl.load(box + 1).to(tl.int32)
    ylo, yhi, ycenter, yinv, ytaps = _aa_window(rows, tl.load(box + 2).to(tl.int32), out_h)
    xlo, xhi, xcenter, xinv, xtaps = _aa_window(cols, tl.load(box + 3).to(tl.int32), out_w)
    ytotal = _aa_total(ylo, yhi, ycenter, yinv, ytaps)
    xtotal = _aa_total(xlo, xhi, xcenter, xinv, xtaps)
    red, green, blue = _zeros_rgb(mask)
    k = ytaps * 0
    while k < ytaps:
        # Clamped like the bilinear taps: zero-weight taps and bad boxes under torch.compile read in the frame.
        row = frame + (tl.minimum(tl.maximum(y0 + ylo + k, 0), H - 1) * (W * 3))[:, None]
        wy = tl.math.div_rn(_aa_weight(ylo + k, ylo, yhi, ycenter, yinv), ytotal)[:, None]
        row_red, row_green, row_blue = _aa_row(row, x0, W, xlo, xhi, xcenter, xinv, xtotal, xtaps, mask)
        red += wy * row_red
        green += wy * row_green
        blue += wy * row_blue
        k += 1
    return red, green, blue


@triton.jit
def _source_frame(data_ptr, geo_ptr, clip, t, T, H, W, UNIFORM: tl.constexpr):
    """Frame ``t`` of clip ``clip`` and its size: from the batch stride (uniform geometry, ``H x W``) or from
    the clip's ``(offset, height, width)`` row of the geometry table."""
    if UNIFORM:
        frame = data_ptr + (clip.to(tl.int64) * T + t) * (H * W * 3)
        height = H
        width = W
    else:
        height = tl.load(geo_ptr + clip * 3 + 1).to(tl.int32)
        width = tl.load(geo_ptr + clip * 3 + 2).to(tl.int32)
        frame = data_ptr + tl.load(geo_ptr + clip * 3) + t.to(tl.int64) * (height * width * 3)
    return frame, height, width


@triton.jit
def _placement(dest_ptr, n, rows, cols, mask, flip, out_h, out_w, LETTERBOX: tl.constexpr):
    """Where output row ``n``'s picture is in the tile: picture rows and columns, picture size, and the mask
    of the pixels that show it (the letterbox bars are outside)."""
    # A flipped canvas column j shows what unflipped column out_w - 1 - j would: flip after resize, exactly.
    canvas_cols = tl.where(flip != 0, out_w - 1 - cols, cols)
    if LETTERBOX:
        dy = tl.load(dest_ptr + n * 4).to(tl.int32)
        dx = tl.load(dest_ptr + n * 4 + 1).to(tl.int32)
        height = tl.load(dest_ptr + n * 4 + 2).to(tl.int32)
        width = tl.load(dest_ptr + n * 4 + 3).to(tl.int32)
        r = rows - dy
        c = canvas_cols - dx
        inside = mask & ((r >= 0) & (r < height))[:, None] & ((c >= 0) & (c < width))[None, :]
        r = tl.minimum(tl.maximum(r, 0), height - 1)
        c = tl.minimum(tl.maximum(c, 0), width - 1)
    else:
        r = rows
        c = canvas_cols
        height = out_h
        width = out_w
        inside = mask
    return r, c, height, width, inside


@triton.jit
def _picture_rgb(
    data_ptr, geo_ptr, boxes_ptr, dest_ptr, n, t, T, H, W, views, rows, cols, mask, flip, out_h, out_w,
    UNIFORM: tl.constexpr, LETTERBOX: tl.constexpr, ANTIALIAS: tl.constexpr,
):  # fmt: skip
    """3 float32 tiles of output row ``n`` at canvas (rows, cols) of frame ``t``, and the mask of the pixels
    inside its picture."""
    frame, height, width = _source_frame(data_ptr, geo_ptr, n // views, t, T, H, W, UNIFORM)
    r, c, pic_h, pic_w, inside = _placement(dest_ptr, n, rows, cols, mask, flip, out_h, out_w, LETTERBOX)
    box = boxes_ptr + n * 4
    if ANTIALIAS:
        red, green, blue = _antialiased_rgb(frame, box, height, width, r, c, pic_h, pic_w, inside)
    else:
        red, green, blue = _bilinear_rgb(frame, box, height, width, r, c, pic_h, pic_w, inside)
    return red, green, blue, inside
