"""Pure-torch reference of the fused clip op family: the semantics the Triton kernel is tested against.

One implementation (``fused_reference`` of a ``FusedCall``) serves both ops; the two public functions take the
ops' own arguments. It is also the CPU implementation (no Triton on CPU outside the interpreter), so it is
written to be fast rather than literal: per clip, the crop is converted to float32 NCHW once, resized by
torch's own bilinear kernel (which *defines* the resize semantics, antialiased or not), colour-jittered in place if asked, and
then normalisation, the output layout and the output dtype are applied by a single write into the output
tensor. The horizontal flip is the only extra copy, made for flipped clips only, because a strided view
cannot run backwards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._fused_args import FusedCall

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale.
GRAY_WEIGHTS: tuple[float, float, float] = (0.2989, 0.587, 0.114)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma of ``[T, 3, H, W]`` floats as ``[T, 1, H, W]``, in torchvision's operation order."""
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _color_jitter_(x: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """torchvision's adjust_brightness -> adjust_contrast -> adjust_saturation on [0, 1] floats, in place.

    The one deliberate difference: the contrast mean is the mean grey level of the whole clip (all frames),
    not of each frame, so a clip keeps one consistent look over time.
    """
    x.mul_(brightness).clamp_(0.0, 1.0)
    mean_gray = _gray(x).mean()
    x.mul_(contrast).add_((1.0 - contrast) * mean_gray).clamp_(0.0, 1.0)
    gray = _gray(x).mul_(1.0 - saturation)  # before x changes: the blend partner is the old grey
    x.mul_(saturation).add_(gray).clamp_(0.0, 1.0)
    return x


def fused_reference(call: FusedCall) -> torch.Tensor:
    """Output row ``n`` is clip ``n // views`` cropped to ``boxes[n]``, resized into ``dest[n]`` of its canvas
    (the whole canvas without ``dest``), flipped with the canvas if ``flip[n]``, jittered and normalised;
    canvas pixels outside ``dest[n]`` are 0 (the normalised mean colour). Arguments are assumed validated.

    Args:
        call: the op's arguments.

    Returns:
        ``call.out_shape()`` in the call's ``out_dtype``, on the clips' device.
    """
    out = (torch.empty if call.dest is None else torch.zeros)(
        call.out_shape(), dtype=call.rows.out_dtype, device=call.clips.device
    )
    if out.numel() == 0:
        return out
    clips: torch.Tensor | list[torch.Tensor] = call.clips  # uniform: clips[i] is clip i
    if call.geometry is not None:
        f = call.frames
        clips = [call.clips[o : o + f * h * w * 3].view(f, h, w, 3) for o, h, w in call.geometry.tolist()]
    _write_rows(out, clips, call)
    return out


def _write_rows(out: torch.Tensor, clips: torch.Tensor | list[torch.Tensor], call: FusedCall) -> None:
    """Row ``n`` of ``out`` from ``clips[n // views]``, into ``dest[n]`` of its canvas (mirrored with the canvas
    when flipped) or, without ``dest``, the whole canvas."""
    rows = call.rows
    scale, shift = (
        torch.tensor(v, dtype=torch.float32, device=out.device).view(1, 3, 1, 1) for v in call.affine()
    )
    box_rows, flips = call.boxes.tolist(), rows.flip.tolist()
    factors = rows.jitter.tolist() if rows.jitter is not None else None
    dests = call.dest.tolist() if call.dest is not None else None
    out_w = rows.size[1]
    for n in range(out.shape[0]):
        dst = _row_dst(out[n], rows.layout)
        if dests is not None:
            dy, dx, dh, dw = dests[n]
            if flips[n]:
                dx = out_w - dx - dw  # mirroring the canvas mirrors where the picture sits on it
            dst = dst[:, :, dy : dy + dh, dx : dx + dw]
        row_factors = None if factors is None else factors[n]
        clip = clips[n // rows.views]
        _write_row(clip, box_rows[n], bool(flips[n]), row_factors, dst, (scale, shift), call.antialias)


def _row_dst(row: torch.Tensor, layout: str) -> torch.Tensor:
    """One output clip as a ``[T, 3, H', W']`` view, whatever the layout."""
    return row.permute(1, 0, 2, 3) if layout == "NCTHW" else row.permute(0, 3, 1, 2)


def _write_row(
    clip: torch.Tensor,
    box: list[int],
    flip: bool,
    factors: list[float] | None,
    dst: torch.Tensor,
    affine: tuple[torch.Tensor, torch.Tensor],
    antialias: bool,
) -> None:
    """Crop ``box`` of uint8 ``clip [T, H, W, 3]``, resize to ``dst``'s size, flip, jitter, normalise (``x *
    scale + shift``, ``affine = (scale, shift)``) into ``dst`` (a ``[T, 3, H', W']`` view of the output)."""
    y0, x0, h, w = box
    t_len, out_h, out_w = dst.shape[0], dst.shape[2], dst.shape[3]
    # NCHW float32: torch's generic bilinear kernel is ~1.8x faster than its channels-last one at C=3.
    crop = torch.empty((t_len, 3, h, w), dtype=torch.float32, device=clip.device)
    crop.copy_(clip[:, y0 : y0 + h, x0 : x0 + w, :].permute(0, 3, 1, 2))
    if antialias and out_w == 1 and out_h != h:
        # torch's antialiased CPU kernel gets a one-column output wrong from contiguous NCHW input when the
        # height changes (torch 2.11); from channels-last input it follows the filter, as for every other shape.
        crop = crop.contiguous(memory_format=torch.channels_last)
    res = F.interpolate(crop, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=antialias)
    if flip:
        res = res.flip(-1)
    if factors is not None:
        _color_jitter_(res.div_(255.0), *factors)
    # One write: normalise, cast to out_dtype and scatter into the output layout together.
    torch.addcmul(affine[1], res, affine[0], out=dst)


def resized_crop_normalize_reference(
    video: torch.Tensor,
    boxes: torch.Tensor,
    size: list[int],
    flip: torch.Tensor,
    mean: list[float],
    std: list[float],
    out_dtype: torch.dtype,
    layout: str,
    jitter: torch.Tensor | None,
    views: int,
    antialias: bool = False,
) -> torch.Tensor:
    """The reference of ``torch.ops.vidloader.clip_resized_crop_normalize`` (same arguments): output row ``n``
    is clip ``n // views`` of ``video`` cropped to ``boxes[n]``, resized, flipped if ``flip[n]``, jittered by
    ``jitter[n]`` and normalised. Arguments are assumed validated.

    Args:
        video: uint8 ``[B, T, H, W, 3]``.
        boxes: int64 ``[B * views, 4]`` of ``(y0, x0, h, w)``.
        size: output ``[height, width]``.
        flip: bool ``[B * views]``.
        mean: per-channel mean.
        std: per-channel std.
        out_dtype: a float dtype.
        layout: "NCTHW" or "NTHWC".
        jitter: float32 ``[B * views, 3]`` colour factors, or None.
        views: output rows per clip.
        antialias: True resizes as ``F.interpolate(..., antialias=True)``.

    Returns:
        ``[B * views, ...]`` in ``layout`` and ``out_dtype``.
    """
    call = FusedCall.from_dense(
        video, boxes, size, flip, mean, std, out_dtype, layout, jitter, views, antialias
    )
    return fused_reference(call)


def ragged_resized_crop_normalize_reference(
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
    antialias: bool = False,
) -> torch.Tensor:
    """The reference of ``torch.ops.vidloader.clip_resized_crop_normalize_ragged`` (same arguments): input clip
    ``i`` is ``data[offset_i :]`` viewed as ``[frames, H_i, W_i, 3]`` with ``geometry[i] = (offset_i, H_i,
    W_i)``; output row ``n`` is clip ``n // views`` cropped to ``boxes[n]``, resized into ``dest[n] = (y0, x0,
    h, w)`` of the ``size`` canvas (the whole canvas when ``dest`` is None), flipped (the whole canvas) if
    ``flip[n]``, jittered and normalised; canvas pixels outside ``dest[n]`` are 0 (the normalised mean
    colour). Arguments are assumed validated.

    Args:
        data: the packed uint8 frames of every clip.
        geometry: int64 ``[B, 3]`` rows ``(offset, H, W)``.
        frames: frames per clip.
        boxes: int64 ``[B * views, 4]`` crop boxes ``(y0, x0, h, w)`` in each clip's own frame.
        size: output ``[height, width]``.
        flip: bool ``[B * views]``.
        mean, std: per-channel statistics for x in [0, 1].
        out_dtype: the output dtype.
        layout: "NCTHW" or "NTHWC".
        jitter: float32 ``[B * views, 3]`` brightness/contrast/saturation factors, or None.
        views: output rows per clip.
        dest: int64 ``[B * views, 4]`` canvas rectangles (letterbox), or None for the whole canvas.
        antialias: True resizes as ``F.interpolate(..., antialias=True)``.

    Returns:
        ``[B * views, 3, frames, *size]`` (NCTHW) or ``[B * views, frames, *size, 3]`` of ``out_dtype``.
    """
    call = FusedCall.from_ragged(
        data,
        geometry,
        frames,
        boxes,
        size,
        flip,
        mean,
        std,
        out_dtype,
        layout,
        jitter,
        views,
        dest,
        antialias,
    )
    return fused_reference(call)
