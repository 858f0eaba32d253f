"""VideoMAE-style tube masking: the same random spatial patches are masked in every frame of a sample."""

from __future__ import annotations

import math

import torch

from .._errors import ConfigError


def tube_mask(
    batch: int,
    T: int,
    H: int,
    W: int,
    ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bool ``[batch, T, H, W]`` mask (True = masked) over a ``T x H x W`` patch grid.

    Each sample masks exactly ``round(ratio * H * W)`` spatial patches (Python rounding), chosen uniformly
    without replacement, and the same patches in all ``T`` frames ("tubes"). Randomness comes from
    ``generator`` (on its own device; the default CPU generator if None), so a seeded generator gives the same
    mask on every device; the result is moved to ``device`` (default: the generator's device, else CPU).

    Args:
        batch: samples.
        T: frames of the patch grid.
        H: patch rows.
        W: patch columns.
        ratio: share of spatial patches masked, in [0, 1].
        generator: the randomness (default: torch's CPU generator).
        device: where the mask goes.

    Returns:
        bool ``[batch, T, H, W]``.

    Raises:
        ConfigError: a bad size or ratio.
    """
    for name, value in (("batch", batch), ("T", T), ("H", H), ("W", W)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "batch" else 1):
            raise ConfigError(
                f"{name}={value!r} is not allowed; need an int >= {0 if name == 'batch' else 1}"
            )
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (0.0 <= ratio <= 1.0):
        raise ConfigError(f"ratio={ratio!r} is not allowed; need a number in [0, 1]")
    if not math.isfinite(ratio):
        raise ConfigError(f"ratio={ratio!r} is not allowed; need a number in [0, 1]")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    rng_device = generator.device if generator is not None else torch.device("cpu")
    out_device = torch.device(device) if device is not None else rng_device
    patches = H * W
    k = round(ratio * patches)
    # Ranking i.i.d. uniform noise picks a uniformly random k-subset per sample (as VideoMAE does).
    noise = torch.rand((batch, patches), generator=generator, device=rng_device)
    chosen = noise.argsort(dim=1)[:, :k]
    flat = torch.zeros((batch, patches), dtype=torch.bool, device=rng_device)
    flat.scatter_(1, chosen, True)
    return flat.view(batch, 1, H, W).expand(batch, T, H, W).contiguous().to(out_device)
