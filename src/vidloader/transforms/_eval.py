"""EvalClipTransform: deterministic center crop or 3-crop + resize + normalise, one fused launch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from .._errors import ConfigError
from ..ops import RaggedClips, clip_resized_crop_normalize, clip_resized_crop_normalize_ragged
from ..ops._checks import check_channel_stats, check_layout, check_out_dtype, check_size, check_video
from ._boxes import center_crop_boxes, check_seeds, three_crop_boxes

Layout = Literal["NCTHW", "NTHWC"]
CROPS: tuple[int, ...] = (1, 3)


class EvalClipTransform:
    """Evaluation views of uint8 ``[B, T, H, W, 3]`` clips: ``crops`` views per clip, clip-major.

    ``crops=1``: the centered square of side ``min(H, W)``; ``crops=3``: three such squares along the long
    side (left/center/right, or top/center/bottom for portrait frames; SlowFast 3-crop). Each is resized to
    ``size`` and normalised by the fused op in one launch (boxes repeated per view, the video is not copied).

    ``resize_short=S`` reproduces "resize the short side to S, then crop ``size``" with a single resampling:
    the crop becomes the source-space box that maps onto it, ``round(size * min(H, W) / S)`` pixels per side
    (integer pixels, so it can differ from the two-step pipeline by a sub-pixel shift/scale). Needs
    ``S >= max(size)``. Seeds are accepted for the loader's protocol and ignored: evaluation is deterministic.

    ``letterbox=True`` (``crops=1``, no ``resize_short``) keeps the whole frame instead: it is resized to fit
    inside ``size`` with its aspect ratio kept, centred, and the bars are 0 (the mean colour after
    normalising).

    Given a :class:`vidloader.ops.RaggedClips` batch (mixed resolutions and aspect ratios), each clip's boxes
    come from its own frame size and the ragged op fills the batch in one launch.
    """

    def __init__(
        self,
        *,
        size: int | tuple[int, int],
        crops: Literal[1, 3] = 1,
        resize_short: int | None = None,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        out_dtype: torch.dtype = torch.float32,
        layout: Layout = "NCTHW",
        letterbox: bool = False,
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
        self.resize_short = resize_short
        self.mean = check_channel_stats("mean", mean)
        self.std = check_channel_stats("std", std, nonzero=True)
        self.out_dtype = check_out_dtype(out_dtype)
        self.layout = check_layout(layout)
        if not isinstance(letterbox, bool):
            raise ConfigError(f"letterbox={letterbox!r} is not allowed; choose True or False")
        if letterbox and (self.crops != 1 or resize_short is not None):
            raise ConfigError(
                f"letterbox=True keeps the whole frame, so it cannot be combined with crops={self.crops} or "
                f"resize_short={resize_short!r}; use letterbox=True alone, or crops / resize_short without it"
            )
        self.letterbox = letterbox

    @property
    def num_views(self) -> int:
        return self.crops

    def boxes(self, batch: int, height: int, width: int) -> torch.Tensor:
        """int64 ``[batch * num_views, 4]`` boxes (CPU) for ``batch`` clips of ``height x width``."""
        return self.boxes_per_clip([(height, width)] * batch)

    def boxes_per_clip(self, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """int64 ``[B * num_views, 4]`` boxes (CPU), clip ``i`` of its own ``sizes[i] = (H_i, W_i)``."""
        if self.letterbox:
            rows = [(0, 0, h, w) for h, w in sizes]
            return torch.tensor(rows, dtype=torch.int64).view(len(rows), 4)
        out = []
        make = center_crop_boxes if self.crops == 1 else three_crop_boxes
        for height, width in sizes:
            short = min(height, width)
            crop: tuple[int, int] | None = None
            if self.resize_short is not None:
                crop = (
                    max(1, min(height, round(self.size[0] * short / self.resize_short))),
                    max(1, min(width, round(self.size[1] * short / self.resize_short))),
                )
            out.append(make([height], [width], crop))
        return torch.cat(out) if out else torch.zeros((0, 4), dtype=torch.int64)

    def letterbox_rects(self, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """int64 ``[B, 4]`` canvas rectangles ``(y0, x0, h, w)``: each whole frame fitted inside ``size``
        with its aspect ratio kept (the long side fills the canvas), centred."""
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
        if isinstance(video_u8, RaggedClips):
            if seeds is not None:
                check_seeds(seeds, len(video_u8))
            return self._ragged(video_u8)
        video_u8 = check_video(video_u8)
        if self.letterbox:
            return self._ragged(RaggedClips.from_batch(video_u8))
        if seeds is not None:
            check_seeds(seeds, video_u8.shape[0])
        batch, _, height, width, _ = video_u8.shape
        return clip_resized_crop_normalize(
            video_u8,
            self.boxes(batch, height, width),
            self.size,
            None,
            self.mean,
            self.std,
            out_dtype=self.out_dtype,
            layout=self.layout,
            views=self.crops,
        )

    def _ragged(self, clips: RaggedClips) -> torch.Tensor:
        return clip_resized_crop_normalize_ragged(
            clips,
            self.boxes_per_clip(clips.sizes),
            self.size,
            None,
            self.mean,
            self.std,
            out_dtype=self.out_dtype,
            layout=self.layout,
            views=self.crops,
            dest=self.letterbox_rects(clips.sizes) if self.letterbox else None,
        )

    def __repr__(self) -> str:
        return (
            f"EvalClipTransform(size={self.size}, crops={self.crops}, resize_short={self.resize_short}, "
            f"mean={self.mean}, std={self.std}, out_dtype={self.out_dtype}, layout={self.layout!r}, "
            f"letterbox={self.letterbox})"
        )
