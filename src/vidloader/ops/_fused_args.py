"""The arguments of the fused clip op family in one record, and the one check both wrappers run on them.

``clip_resized_crop_normalize`` is ``clip_resized_crop_normalize_ragged`` with uniform geometry: the two ops
take the same per-row arguments and differ only in how their input clips are laid out (a ``[B, T, H, W, 3]``
batch, or a packed buffer with an ``(offset, H, W)`` row per clip) and in the ragged op's optional letterbox
rectangles. A ``FusedCall`` holds either; the op bodies, their fakes, the reference and the Triton launcher
all take one, so the argument list is written once, in the two schemas below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from .._validate import check_bool
from ._checks import (
    check_channel_stats,
    check_flip,
    check_jitter,
    check_layout,
    check_out_dtype,
    check_rects,
    check_size,
    check_views,
)

# The per-row arguments both ops share, in schema order (the fields of Rows).
ROW_SCHEMA = (
    "SymInt[] size, Tensor flip, float[] mean, float[] std, ScalarType out_dtype, str layout, Tensor? jitter, "
    "SymInt views"
)
DENSE_SCHEMA = f"(Tensor video, Tensor boxes, {ROW_SCHEMA}, bool antialias=False) -> Tensor"
RAGGED_SCHEMA = (
    f"(Tensor data, Tensor geometry, SymInt frames, Tensor boxes, {ROW_SCHEMA}, Tensor? dest, "
    "bool antialias=False) -> Tensor"
)


class Rows(NamedTuple):
    """What every output row is made into: output size, flips, normalisation, dtype, layout, jitter, views."""

    size: list[int]
    flip: torch.Tensor
    mean: list[float]
    std: list[float]
    out_dtype: torch.dtype
    layout: str
    jitter: torch.Tensor | None
    views: int


class FusedCall(NamedTuple):
    """One call of the op family: clips, where each lives, the crop boxes, the rows and the letterbox.

    ``clips`` is uint8 ``[B, T, H, W, 3]`` when ``geometry`` is None (uniform geometry: the dense op), else the
    flat packed buffer in which clip ``i`` is ``[frames, H_i, W_i, 3]`` at ``geometry[i] = (offset_i, H_i,
    W_i)``. Output row ``n`` is clip ``n // views`` cropped to ``boxes[n]`` and resized into ``dest[n]`` of
    the output canvas (the whole canvas when ``dest`` is None), with torch's antialiased bilinear filter
    if ``antialias``.
    """

    clips: torch.Tensor
    geometry: torch.Tensor | None
    frames: int
    boxes: torch.Tensor
    rows: Rows
    dest: torch.Tensor | None = None
    antialias: bool = False

    @classmethod
    def from_dense(cls, video: torch.Tensor, boxes: torch.Tensor, *rest: Any) -> FusedCall:
        """The dense op's arguments, in ``DENSE_SCHEMA`` order (a trailing default may be left out)."""
        rows = len(Rows._fields)
        return cls(video, None, video.shape[1], boxes, Rows(*rest[:rows]), None, *rest[rows:])

    @classmethod
    def from_ragged(
        cls, data: torch.Tensor, geometry: torch.Tensor, frames: int, boxes: torch.Tensor, *rest: Any
    ) -> FusedCall:
        """The ragged op's arguments, in ``RAGGED_SCHEMA`` order (a trailing default may be left out)."""
        rows = len(Rows._fields)
        return cls(data, geometry, frames, boxes, Rows(*rest[:rows]), *rest[rows:])

    def op_args(self) -> tuple[Any, ...]:
        """The arguments of the op this call belongs to (dense without ``geometry``), in its schema order."""
        if self.geometry is None:
            return (self.clips, self.boxes, *self.rows, self.antialias)
        return (self.clips, self.geometry, self.frames, self.boxes, *self.rows, self.dest, self.antialias)

    def out_shape(self) -> tuple[Any, ...]:
        """``[N, 3, frames, H', W']`` (NCTHW) or ``[N, frames, H', W', 3]`` (NTHWC), ``N`` the boxes' rows."""
        n, (height, width) = self.boxes.shape[0], self.rows.size
        if self.rows.layout == "NCTHW":
            return (n, 3, self.frames, height, width)
        return (n, self.frames, height, width, 3)

    def affine(self) -> tuple[list[float], list[float]]:
        """``(x - mean) / std`` as ``x * scale + shift`` per channel, computed in float64.

        Without jitter x is in [0, 255] and the 1/255 is folded into ``scale``, so the common path does one
        multiply-add per element; jitter works on [0, 1] and divides first.
        """
        div = 1.0 if self.rows.jitter is not None else 255.0
        scale = [1.0 / (div * s) for s in self.rows.std]
        shift = [-m / s for m, s in zip(self.rows.mean, self.rows.std, strict=True)]
        return scale, shift


def check_call(
    clips: torch.Tensor,
    geometry: torch.Tensor | None,
    frames: int,
    sizes: Sequence[tuple[int, int]],
    boxes: Any,
    rows: tuple[Any, ...],
    dest: Any,
    antialias: Any,
) -> FusedCall:
    """Check what a wrapper was given and put it on the clips' device, as a FusedCall.

    Args:
        clips, geometry, frames: the input clips as ``FusedCall`` holds them (already checked).
        sizes: ``(H_i, W_i)`` of each clip, on the host: every box must lie inside its own clip's frame.
        boxes: crop boxes, one per clip and view.
        rows: the wrapper's ``size, flip, mean, std, out_dtype, layout, jitter, views`` (``flip`` None means no
            flips), unchecked.
        dest: letterbox rectangles inside the ``size`` canvas, or None.
        antialias: True or False.

    Returns:
        The call, every tensor on the clips' device.

    Raises:
        ConfigError: an argument outside what the wrappers document (the message names it).
    """
    size, flip, mean, std, out_dtype, layout, jitter, views = rows
    views = check_views(views)
    antialias = check_bool("antialias", antialias)
    out_h, out_w = check_size(size)
    mean_t = check_channel_stats("mean", mean)
    std_t = check_channel_stats("std", std, nonzero=True)
    out_dtype = check_out_dtype(out_dtype)
    layout = check_layout(layout)
    n_out = len(sizes) * views
    per_row = [s for s in sizes for _ in range(views)]
    boxes = check_rects("boxes", boxes, n_out, [h for h, _ in per_row], [w for _, w in per_row])
    if dest is not None:
        dest = check_rects("dest", dest, n_out, [out_h] * n_out, [out_w] * n_out)
    device = clips.device
    flip = torch.zeros(n_out, dtype=torch.bool, device=device) if flip is None else check_flip(flip, n_out)
    if jitter is not None:
        jitter = check_jitter(jitter, n_out).to(device, non_blocking=True)
    checked = Rows(
        [out_h, out_w], flip.to(device, non_blocking=True), list(mean_t), list(std_t), out_dtype, layout,
        jitter, views,
    )  # fmt: skip
    return FusedCall(
        clips,
        None if geometry is None else geometry.to(device, non_blocking=True),
        frames,
        boxes.to(device, non_blocking=True),
        checked,
        None if dest is None else dest.to(device, non_blocking=True),
        antialias,
    )
