"""Crop boxes ``(y0, x0, h, w)`` for the fused clip op: random-resized (train), center and 3-crop (eval)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._errors import ConfigError

_SEED_LIMIT = 2**64


def check_seeds(seeds: object, batch: int | None = None) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ConfigError(f"seeds must be a list of ints, got {type(seeds).__name__}")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < _SEED_LIMIT:
            raise ConfigError(f"seeds contains {s!r}; every seed must be an int in [0, 2**64)")
        out.append(int(s))
    if batch is not None and len(out) != batch:
        raise ConfigError(
            f"got {len(out)} seeds for a batch of {batch} clips; need exactly one seed per clip"
        )
    return out


def _per_clip(name: str, value: int | Sequence[int], batch: int) -> list[int]:
    values = [value] * batch if isinstance(value, int) else list(value)
    if len(values) != batch:
        raise ConfigError(
            f"{name} has {len(values)} entries for a batch of {batch}; give one per clip or one int"
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} contains {v!r}; frame sizes must be ints >= 1")
    return values


def _batch_of(*values: int | Sequence[int]) -> int:
    lengths = {len(v) for v in values if not isinstance(v, int)}
    if len(lengths) > 1:
        raise ConfigError(f"per-clip arguments have different lengths {sorted(lengths)}; they must match")
    return lengths.pop() if lengths else 1


def check_range(name: str, value: object) -> tuple[float, float]:
    """A ``(lo, hi)`` pair with ``0 < lo <= hi``, both finite."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        )
    ):
        raise ConfigError(f"{name}={value!r} is not allowed; give a (min, max) pair of finite numbers")
    lo, hi = float(value[0]), float(value[1])
    if not 0 < lo <= hi:
        raise ConfigError(f"{name}={value!r} is not allowed; need 0 < min <= max")
    return lo, hi


def random_resized_crop_box(
    generator: torch.Generator,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params``, drawing from ``generator`` instead of the global RNG.

    Same draws in the same order, so with a generator seeded like the global RNG the box is identical: up to
    10 tries of (area, log-aspect) and then a position, else a central crop clamped to ``ratio``.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = torch.exp(
            torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]), generator=generator)
        ).item()
        w = round(math.sqrt(target_area * aspect_ratio))
        h = round(math.sqrt(target_area / aspect_ratio))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, size=(1,), generator=generator).item())
            j = int(torch.randint(0, width - w + 1, size=(1,), generator=generator).item())
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = round(w / min(ratio))
    elif in_ratio > max(ratio):
        h = height
        w = round(h * max(ratio))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop_boxes(
    heights: int | Sequence[int],
    widths: int | Sequence[int],
    scale: tuple[float, float],
    ratio: tuple[float, float],
    seeds: Sequence[int],
) -> torch.Tensor:
    """int64 ``[B, 4]`` boxes, clip ``i`` drawn from ``torch.Generator().manual_seed(seeds[i])``.

    These are the boxes TrainClipTransform uses (it draws the box first from each clip's generator).

    Args:
        heights: frame height(s), one or per clip.
        widths: frame width(s), one or per clip.
        scale: range of the crop's share of the frame area.
        ratio: range of the crop's aspect ratio.
        seeds: one seed per clip.

    Returns:
        int64 ``[B, 4]`` of ``(y0, x0, h, w)``.
    """
    seed_list = check_seeds(seeds)
    batch = len(seed_list)
    hs, ws = _per_clip("heights", heights, batch), _per_clip("widths", widths, batch)
    scale, ratio = check_range("scale", scale), check_range("ratio", ratio)
    rows = [
        random_resized_crop_box(torch.Generator().manual_seed(s), h, w, scale, ratio)
        for s, h, w in zip(seed_list, hs, ws, strict=True)
    ]
    return torch.tensor(rows, dtype=torch.int64).view(batch, 4)


def _crop_size(crop: int | Sequence[int] | None, height: int, width: int) -> tuple[int, int]:
    if crop is None:
        side = min(height, width)
        return side, side
    ch, cw = (crop, crop) if isinstance(crop, int) else tuple(crop)
    if isinstance(ch, bool) or isinstance(cw, bool) or not isinstance(ch, int) or not isinstance(cw, int):
        raise ConfigError(f"crop={crop!r} is not allowed; give None, an int or an (h, w) pair of ints")
    if not (1 <= ch <= height and 1 <= cw <= width):
        raise ConfigError(
            f"crop={crop!r} does not fit a {height}x{width} frame; need 1 <= h <= {height}, 1 <= w <= {width}"
        )
    return ch, cw


def center_crop_boxes(
    heights: int | Sequence[int], widths: int | Sequence[int], crop: int | Sequence[int] | None = None
) -> torch.Tensor:
    """int64 ``[B, 4]`` centered boxes; ``crop=None`` is the square of the short side.

    Offsets round like torchvision's CenterCrop: ``round((H - h) / 2)``.

    Args:
        heights: frame height(s), one or per clip.
        widths: frame width(s), one or per clip.
        crop: crop size (int or (h, w)), or None.

    Returns:
        int64 ``[B, 4]`` of ``(y0, x0, h, w)``.
    """
    batch = _batch_of(heights, widths)
    rows = []
    for h_img, w_img in zip(
        _per_clip("heights", heights, batch), _per_clip("widths", widths, batch), strict=True
    ):
        ch, cw = _crop_size(crop, h_img, w_img)
        rows.append((round((h_img - ch) / 2.0), round((w_img - cw) / 2.0), ch, cw))
    return torch.tensor(rows, dtype=torch.int64).view(batch, 4)


def three_crop_boxes(
    heights: int | Sequence[int], widths: int | Sequence[int], crop: int | Sequence[int] | None = None
) -> torch.Tensor:
    """int64 ``[B * 3, 4]`` boxes, clip-major: start / center / end of the long side, centered on the short.

    As SlowFast's / PyTorchVideo's ``uniform_crop`` 3-crop test: frames taller than wide are cropped
    top / center / bottom, others (squares included) left / center / right; the centre offset is
    ``ceil((L - l) / 2)``. ``crop=None`` is the square of the short side.

    Args:
        heights: frame height(s), one or per clip.
        widths: frame width(s), one or per clip.
        crop: crop size (int or (h, w)), or None.

    Returns:
        int64 ``[B * 3, 4]`` of ``(y0, x0, h, w)``.
    """
    batch = _batch_of(heights, widths)
    rows = []
    for h_img, w_img in zip(
        _per_clip("heights", heights, batch), _per_clip("widths", widths, batch), strict=True
    ):
        ch, cw = _crop_size(crop, h_img, w_img)
        y_mid, x_mid = math.ceil((h_img - ch) / 2), math.ceil((w_img - cw) / 2)
        if h_img > w_img:
            rows += [(y, x_mid, ch, cw) for y in (0, y_mid, h_img - ch)]
        else:
            rows += [(y_mid, x, ch, cw) for x in (0, x_mid, w_img - cw)]
    return torch.tensor(rows, dtype=torch.int64).view(batch * 3, 4)


def check_resize_to(resize: object) -> int | tuple[int, int] | None:
    """``resize=`` of the clip transforms: None, a short side (int) or an ``(h, w)`` pair, all >= 1."""
    if resize is None:
        return None
    if isinstance(resize, int) and not isinstance(resize, bool) and resize >= 1:
        return resize
    if (
        isinstance(resize, Sequence)
        and not isinstance(resize, (str, bytes))
        and len(resize) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in resize)
    ):
        return int(resize[0]), int(resize[1])
    raise ConfigError(
        f"resize={resize!r} is not allowed; give None, a short side (int >= 1) or an (height, width) pair"
    )


def resized_size(height: int, width: int, resize: int | tuple[int, int]) -> tuple[int, int]:
    """The frame size after torchvision's ``Resize(resize)``.

    Args:
        height, width: the source frame size.
        resize: ``(h, w)``, or the short side.

    Returns:
        ``(h, w)`` as given, or for an int the short side set to it and the long side
        ``int(resize * long / short)`` (truncated, as torchvision does).
    """
    if not isinstance(resize, int):
        return resize
    if width <= height:
        return int(resize * height / width), resize
    return resize, int(resize * width / height)


def source_box(
    height: int, width: int, resized: tuple[int, int], box: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """A crop box ``(y, x, h, w)`` of the frame resized to ``resized``, as a box of the source frame.

    Args:
        height, width: the source frame size.
        resized: the resized frame size the box refers to.
        box: ``(y, x, h, w)`` in the resized frame.

    Returns:
        ``(y0, x0, h, w)`` in whole source pixels, inside the source frame, at least 1x1.

    A bilinear resize followed by a crop samples the source on the grid of the crop's region; the fused op
    samples its box's region on the same kind of grid, so cropping the source at the region and resizing
    once gives the two-step result. Box edges are whole source pixels, so the region is rounded to them
    (the result can then differ from the two-step pipeline by up to half a source pixel in position and
    scale; tests/test_transforms.py measures it against torchvision).
    """
    sy, sx = height / resized[0], width / resized[1]
    y, x, h, w = box
    y0, x0 = round(y * sy), round(x * sx)
    y1, x1 = max(y0 + 1, round((y + h) * sy)), max(x0 + 1, round((x + w) * sx))
    y0, x0 = min(y0, height - 1), min(x0, width - 1)
    return y0, x0, min(y1, height) - y0, min(x1, width) - x0


def check_crop_fits(size: tuple[int, int], resized: tuple[int, int], resize: object) -> None:
    if size[0] > resized[0] or size[1] > resized[1]:
        raise ConfigError(
            f"crop size={size} does not fit the frame resized by resize={resize!r} to {resized}; "
            "choose a larger resize or a smaller size"
        )
