"""EvalClipTransform: deterministic center crop or 3-crop (optionally after a resize) + resize + normalise,
one fused launch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from .._errors import ConfigError
from ..ops import RaggedClips, check_size
from ._boxes import (
    center_crop_boxes,
    check_crop_fits,
    check_resize_to,
    check_seeds,
    resized_size,
    source_box,
    three_crop_boxes,
)
from ._fused import FusedClipTransform, Layout, clip_sizes

CROPS: tuple[int, ...] = (1, 3)


class EvalClipTransform(FusedClipTransform):
    """Evaluation views of uint8 ``[B, T, H, W, 3]`` clips: ``crops`` views per clip, clip-major.

    Without ``resize``: ``crops=1`` is the centered square of side ``min(H, W)``; ``crops=3`` three such
    squares along the long side (left/center/right, or top/center/bottom for portrait frames; SlowFast
    3-crop). Each is resized to ``size``.

    ``resize=(h, w)`` or ``resize=short_side`` reproduces torchvision's ``Resize(resize)`` then
    ``CenterCrop(size)`` (or three crops of ``size`` along the long side of the resized frame) with a single
    resampling: each crop of the resized frame is the source box that maps onto it, in whole source pixels
    (within half a source pixel of the two-step result). ``resize_short=S`` is the older spelling of
    ``resize=S`` (and needs ``S >= max(size)``).

    ``letterbox=True`` (``crops=1``, no ``resize``/``resize_short``) keeps the whole frame instead: it is
    resized to fit inside ``size`` with its aspect ratio kept, centred, and the bars are 0 (the mean colour
    after normalising).

    All views are normalised by the fused op in one launch (boxes repeated per view, the video is not
    copied). Given a ``vidloader.ops.RaggedClips`` batch (mixed resolutions and aspect ratios), each clip's
    boxes come from its own frame size and the ragged op fills the batch in one launch. Seeds are accepted
    for the loader's protocol and ignored: evaluation is deterministic.

    Args:
        size: output ``(height, width)``, or an int for a square.
        crops: 1 (centre) or 3 (start / centre / end of the long side).
        resize: None, or the frame size the crops are taken from (see above).
        resize_short: older spelling of ``resize=int``; not with ``resize``.
        preset, mean, std: normalisation, as in TrainClipTransform (default "pytorchvideo", 0.45 / 0.225;
            torchvision's presets and ``weights.transforms()`` use ``preset="kinetics"``).
        out_dtype: torch.float32, torch.float16 or torch.bfloat16.
        layout: "NCTHW" or "NTHWC".
        letterbox: fit the whole frame inside ``size`` (aspect kept, zero bars) instead of cropping.
        antialias: resize with torch's antialiased bilinear filter (what torchvision v2's ``Resize`` does by
            default); False (the default) is what torchvision's video presets and ``weights.transforms()`` do.

    Raises:
        ConfigError: any argument outside the above, naming it and the allowed values.

    torchvision's ``VideoClassificationPresetEval(crop_size=(112, 112), resize_size=(128, 171))`` and
    ``R3D_18_Weights.KINETICS400_V1.transforms()`` are
    ``EvalClipTransform(size=(112, 112), resize=(128, 171), preset="kinetics")``.
    """

    __vidloader_batched__ = True

    def __init__(
        self,
        *,
        size: int | tuple[int, int],
        crops: Literal[1, 3] = 1,
        resize: int | tuple[int, int] | None = None,
        resize_short: int | None = None,
        preset: str | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        out_dtype: torch.dtype = torch.float32,
        layout: Layout = "NCTHW",
        letterbox: bool = False,
        antialias: bool = False,
    ) -> None:
        self.size = check_size(size)
        if isinstance(crops, bool) or crops not in CROPS:
            raise ConfigError(f"crops={crops!r} is not allowed; choose one of {', '.join(map(repr, CROPS))}")
        self.crops = int(crops)
        if resize_short is not None and (
            isinstance(resize_short, bool)
            or not isinstance(resize_short, int)
            or resize_short < max(self.size)
        ):
            raise ConfigError(
                f"resize_short={resize_short!r} is not allowed; give None or an int >= max(size) = {max(self.size)}"
            )
        if resize_short is not None and resize is not None:
            raise ConfigError(f"give either resize={resize!r} or resize_short={resize_short!r}, not both")
        self.resize_short = resize_short
        self.resize = check_resize_to(resize)
        self._set_output(preset, mean, std, out_dtype, layout, antialias)
        if not isinstance(letterbox, bool):
            raise ConfigError(f"letterbox={letterbox!r} is not allowed; choose True or False")
        if letterbox and (self.crops != 1 or resize_short is not None or resize is not None):
            raise ConfigError(
                f"letterbox=True keeps the whole frame, so it cannot be combined with crops={self.crops}, "
                f"resize={resize!r} or resize_short={resize_short!r}; use letterbox=True alone, or crops / "
                "resize without it"
            )
        self.letterbox = letterbox

    @property
    def num_views(self) -> int:
        return self.crops

    def boxes(self, batch: int, height: int, width: int) -> torch.Tensor:
        """The crop boxes a call uses.

        Args:
            batch: clips in the batch.
            height, width: the source frame size.

        Returns:
            int64 ``[batch * num_views, 4]`` source-frame boxes ``(y0, x0, h, w)`` on the CPU.

        Raises:
            ConfigError: the crop does not fit the resized frame.
        """
        return self.boxes_per_clip([(height, width)] * batch)

    def boxes_per_clip(self, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """The crop boxes for clips of their own sizes (a ragged batch).

        Args:
            sizes: ``(H_i, W_i)`` of each clip's frames.

        Returns:
            int64 ``[len(sizes) * num_views, 4]`` source-frame boxes ``(y0, x0, h, w)`` on the CPU.

        Raises:
            ConfigError: the crop does not fit a resized frame.
        """
        if self.letterbox:
            return torch.tensor([(0, 0, h, w) for h, w in sizes], dtype=torch.int64).view(len(sizes), 4)
        make = center_crop_boxes if self.crops == 1 else three_crop_boxes
        out = []
        for height, width in sizes:
            if self.resize is not None:
                resized = resized_size(height, width, self.resize)
                check_crop_fits(self.size, resized, self.resize)
                views = make(resized[0], resized[1], self.size).tolist()
                rows = [source_box(height, width, resized, tuple(v)) for v in views]
                out.append(torch.tensor(rows, dtype=torch.int64).view(self.crops, 4))
                continue
            crop: tuple[int, int] | None = None
            if self.resize_short is not None:
                short = min(height, width)
                crop = (
                    max(1, min(height, round(self.size[0] * short / self.resize_short))),
                    max(1, min(width, round(self.size[1] * short / self.resize_short))),
                )
            out.append(make([height], [width], crop))
        return torch.cat(out) if out else torch.zeros((0, 4), dtype=torch.int64)

    def letterbox_rects(self, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Canvas rectangles for ``letterbox=True``.

        Args:
            sizes: ``(H_i, W_i)`` of each clip's frames.

        Returns:
            int64 ``[B, 4]`` rectangles ``(y0, x0, h, w)``: each whole frame fitted inside ``size`` with its
            aspect ratio kept (the long side fills the canvas), centred.
        """
        out_h, out_w = self.size
        rows = []
        for h, w in sizes:
            scale = min(out_h / h, out_w / w)
            dh, dw = max(1, min(out_h, round(h * scale))), max(1, min(out_w, round(w * scale)))
            rows.append(((out_h - dh) // 2, (out_w - dw) // 2, dh, dw))
        return torch.tensor(rows, dtype=torch.int64).view(len(rows), 4)

    def __call__(
        self, video_u8: torch.Tensor | RaggedClips, *, seeds: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The evaluation views of a batch.

        Args:
            video_u8: uint8 ``[B, T, H, W, 3]`` on any device, or a ``RaggedClips`` batch of mixed sizes.
            seeds: ignored (checked for length when given).

        Returns:
            ``[B * crops, 3, T, *size]`` (NCTHW) or ``[B * crops, T, *size, 3]`` of ``out_dtype``, clip-major.

        Raises:
            ConfigError: a bad video or seeds, or a crop that does not fit the resized frame.
        """
        sizes = clip_sizes(video_u8)
        if seeds is not None:
            check_seeds(seeds, len(sizes))
        dest = self.letterbox_rects(sizes) if self.letterbox else None
        return self._fused(video_u8, self.boxes_per_clip(sizes), views=self.crops, dest=dest)

    def __repr__(self) -> str:
        return (
            f"EvalClipTransform(size={self.size}, crops={self.crops}, resize={self.resize}, "
            f"resize_short={self.resize_short}, mean={self.mean}, std={self.std}, "
            f"out_dtype={self.out_dtype}, layout={self.layout!r}, letterbox={self.letterbox}, "
            f"antialias={self.antialias})"
        )
