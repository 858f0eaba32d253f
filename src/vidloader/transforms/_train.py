"""TrainClipTransform: per-clip random resized crop (or resize + random crop) + flip (+ colour jitter) +
normalise, one fused launch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._errors import ConfigError
from ..ops import RaggedClips, check_size
from ._boxes import (
    check_crop_fits,
    check_range,
    check_resize_to,
    check_seeds,
    random_resized_crop_box,
    resized_size,
    source_box,
)
from ._fused import FusedClipTransform, Layout, clip_sizes


def _check_jitter_strength(jitter: object) -> tuple[float, float, float] | None:
    if jitter is None:
        return None
    if (
        isinstance(jitter, (str, bytes))
        or not isinstance(jitter, Sequence)
        or len(jitter) != 3
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in jitter
        )
    ):
        raise ConfigError(
            f"jitter={jitter!r} is not allowed; give None or (brightness, contrast, saturation) strengths >= 0"
        )
    return float(jitter[0]), float(jitter[1]), float(jitter[2])


def _check_prob(name: str, p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ConfigError(f"{name}={p!r} is not allowed; give a probability in [0, 1]")
    return float(p)


class TrainClipTransform(FusedClipTransform):
    """Training augmentation of uint8 ``[B, T, H, W, 3]`` clips into normalised ``out_dtype`` clips.

    Two crop recipes, both ending in one call of the fused op (crop + bilinear resize, antialiased only with
    ``antialias=True`` + flip + jitter + ``(x / 255 - mean) / std`` for the whole batch):

    - ``resize=None`` (default): a random resized crop (torchvision ``RandomResizedCrop`` semantics, ``scale``
      and ``ratio``) resized to ``size``; PyTorchVideo / SlowFast style.
    - ``resize=(h, w)`` or ``resize=short_side``: torchvision's and PyTorchVideo's "resize to (128, 171),
      then random crop 112": torchvision ``Resize(resize)`` then ``RandomCrop(size)``. The crop in the
      resized frame is one box of the source frame, so it runs as a single resampling (whole source pixels:
      within half a source pixel of the two-step result; see ``source_box``).

    Per clip, from ``torch.Generator().manual_seed(seeds[i])`` (a CPU generator, so CPU and GPU batches get
    identical parameters) and in this order: the crop (``RandomResizedCrop.get_params`` draws, or
    ``RandomCrop.get_params``'s ``randint`` for the top then the left edge), one flip coin (drawn even when
    flips are off, so later draws do not depend on it) and, if ``jitter=(b, c, s)``, brightness, contrast and
    saturation factors drawn uniformly from ``[max(0, 1 - x), 1 + x]`` like torchvision's ColorJitter.

    Given a ``vidloader.ops.RaggedClips`` batch (clips of mixed resolutions and aspect ratios, as the loader
    hands them over), every clip's box is drawn from its own native frame and the ragged op crops and resizes
    each clip into its slot of the batch in one launch.

    Args:
        size: output ``(height, width)``, or an int for a square.
        resize: None, or the frame size before a plain random crop of ``size`` (see above).
        scale: area range of the random resized crop (default ``(0.08, 1.0)``); not with ``resize``.
        ratio: aspect range of the random resized crop (default ``(3/4, 4/3)``); not with ``resize``.
        flip: False turns horizontal flips off whatever ``hflip_prob`` says.
        hflip_prob: probability of a horizontal flip (torchvision's ``hflip_prob``; default 0.5).
        preset: named mean/std: "kinetics" (torchvision's video models: mean (0.43216, 0.394666, 0.37645),
            std (0.22803, 0.22145, 0.216989)), "imagenet" ((0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)) or
            "pytorchvideo" (0.45 / 0.225). Not with ``mean``/``std``.
        mean, std: explicit per-channel statistics for x in [0, 1]. With neither these nor ``preset`` the
            default is "pytorchvideo" (0.45 / 0.225), which differs from torchvision's Kinetics values: pass
            ``preset="kinetics"`` to match torchvision's presets.
        out_dtype: torch.float32, torch.float16 or torch.bfloat16.
        layout: "NCTHW" (what torchvision's video models take) or "NTHWC".
        jitter: None or ``(brightness, contrast, saturation)`` strengths >= 0.
        antialias: resize with torch's antialiased bilinear filter (what torchvision v2's ``Resize`` does by
            default); False (the default) is what torchvision's video presets do.

    Raises:
        ConfigError: any argument outside the above, naming it and the allowed values.

    torchvision's ``VideoClassificationPresetTrain(crop_size=(112, 112), resize_size=(128, 171))`` is
    ``TrainClipTransform(size=(112, 112), resize=(128, 171), hflip_prob=0.5, preset="kinetics")``.
    """

    num_views: int = 1
    __vidloader_batched__ = True

    def __init__(
        self,
        *,
        size: int | tuple[int, int],
        resize: int | tuple[int, int] | None = None,
        scale: tuple[float, float] | None = None,
        ratio: tuple[float, float] | None = None,
        flip: bool = True,
        hflip_prob: float = 0.5,
        preset: str | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        out_dtype: torch.dtype = torch.float32,
        layout: Layout = "NCTHW",
        jitter: tuple[float, float, float] | None = None,
        antialias: bool = False,
    ) -> None:
        self.size = check_size(size)
        self.resize = check_resize_to(resize)
        if self.resize is not None and (scale is not None or ratio is not None):
            raise ConfigError(
                f"scale={scale!r} / ratio={ratio!r} belong to the random resized crop; with resize={resize!r} "
                "the crop is a plain random crop of size (leave scale and ratio out)"
            )
        self.scale = check_range("scale", (0.08, 1.0) if scale is None else scale)
        self.ratio = check_range("ratio", (3 / 4, 4 / 3) if ratio is None else ratio)
        if not isinstance(flip, bool):
            raise ConfigError(f"flip={flip!r} is not allowed; choose True or False")
        self.flip = flip
        self.hflip_prob = _check_prob("hflip_prob", hflip_prob)
        self._set_output(preset, mean, std, out_dtype, layout, antialias)
        self.jitter = _check_jitter_strength(jitter)

    def _crop_box(self, g: torch.Generator, height: int, width: int) -> tuple[int, int, int, int]:
        if self.resize is None:
            return random_resized_crop_box(g, height, width, self.scale, self.ratio)
        resized = resized_size(height, width, self.resize)
        check_crop_fits(self.size, resized, self.resize)
        (rh, rw), (ch, cw) = resized, self.size
        i = int(torch.randint(0, rh - ch + 1, size=(1,), generator=g).item())
        j = int(torch.randint(0, rw - cw + 1, size=(1,), generator=g).item())
        return source_box(height, width, resized, (i, j, ch, cw))

    def draw_params(
        self, height: int, width: int, seeds: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The per-clip parameters a call with these seeds uses.

        Args:
            height, width: the source frame size.
            seeds: one int per clip.

        Returns:
            CPU ``boxes`` int64 ``[B, 4]`` (source-frame ``(y0, x0, h, w)``), ``flip`` bool ``[B]`` and the
            jitter factors float32 ``[B, 3]`` (None without jitter).

        Raises:
            ConfigError: bad seeds, or the crop does not fit the resized frame.
        """
        seed_list = check_seeds(seeds)
        return self.draw_params_per_clip([(height, width)] * len(seed_list), seed_list)

    def draw_params_per_clip(
        self, sizes: Sequence[tuple[int, int]], seeds: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``draw_params`` for clips of their own sizes (a ragged batch): each box is drawn from the clip's
        own native frame, so no clip is stretched to another's aspect ratio.

        Args:
            sizes: ``(H_i, W_i)`` of each clip's frames.
            seeds: one int per clip.

        Returns:
            As ``draw_params``.

        Raises:
            ConfigError: bad seeds, or the crop does not fit a resized frame.
        """
        seed_list = check_seeds(seeds, len(sizes))
        boxes, flips, factors = [], [], []
        for seed, (height, width) in zip(seed_list, sizes, strict=True):
            g = torch.Generator().manual_seed(seed)
            boxes.append(self._crop_box(g, height, width))
            coin = torch.rand(1, generator=g).item() < self.hflip_prob
            flips.append(self.flip and coin)
            if self.jitter is not None:
                factors.append(
                    [
                        torch.empty(1).uniform_(max(0.0, 1.0 - x), 1.0 + x, generator=g).item()
                        for x in self.jitter
                    ]
                )
        batch = len(seed_list)
        jitter = (
            torch.tensor(factors, dtype=torch.float32).view(batch, 3) if self.jitter is not None else None
        )
        return (
            torch.tensor(boxes, dtype=torch.int64).view(batch, 4),
            torch.tensor(flips, dtype=torch.bool).view(batch),
            jitter,
        )

    def __call__(self, video_u8: torch.Tensor | RaggedClips, *, seeds: Sequence[int]) -> torch.Tensor:
        """Augment a batch.

        Args:
            video_u8: uint8 ``[B, T, H, W, 3]`` on any device, or a ``RaggedClips`` batch of mixed sizes.
            seeds: one int in ``[0, 2**64)`` per clip.

        Returns:
            ``[B, 3, T, *size]`` (NCTHW) or ``[B, T, *size, 3]`` (NTHWC) of ``out_dtype`` on the video's device.

        Raises:
            ConfigError: a bad video or seeds, or a crop that does not fit the resized frame.
        """
        boxes, flips, jitter = self.draw_params_per_clip(clip_sizes(video_u8), seeds)
        return self._fused(video_u8, boxes, flip=flips, jitter=jitter)

    def __repr__(self) -> str:
        return (
            f"TrainClipTransform(size={self.size}, resize={self.resize}, scale={self.scale}, ratio={self.ratio}, "
            f"flip={self.flip}, hflip_prob={self.hflip_prob}, mean={self.mean}, std={self.std}, "
            f"out_dtype={self.out_dtype}, layout={self.layout!r}, jitter={self.jitter}, antialias={self.antialias})"
        )
