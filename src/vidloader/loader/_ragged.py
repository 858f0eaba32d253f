"""Batches whose clips have different frame sizes (mixed datasets): packed as RaggedClips for the transform.

A transform crops and resizes each clip from its own decoded size into its slot of the fixed-size batch
(``vidloader.ops.clip_resized_crop_normalize_ragged``), so nothing is stretched to a common size first.
Without a transform there is no geometry to apply and the batch cannot be stacked: that is a ConfigError
saying what to pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .._errors import ConfigError
from ..backends import PreparedClip
from ..ops import RaggedClips


def mixed_shape_error(paths: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> ConfigError:
    """The error for a batch of mixed frame sizes when the loader has no transform to hand them to."""
    first = shapes[0]
    k = next(i for i, s in enumerate(shapes) if s != first)
    return ConfigError(
        f"clips in one batch differ in shape: {paths[0]} gives {first[1:3]} (H, W) but {paths[k]} gives "
        f"{shapes[k][1:3]}; without a transform the loader can only stack equal frames. Pass a transform "
        "(e.g. transform=vidloader.transforms.TrainClipTransform(size=112) or EvalClipTransform(size=112)), "
        "which crops and resizes every clip from its own size, or resize=(height, width) to stretch every "
        "video to one size (resize=<short side> keeps aspect ratios, so it does not make mixed ones equal)"
    )


def ragged_frames(
    decoded: Sequence[tuple[Any, Any]],
    device: torch.device,
    dali_decode: Callable[[list[PreparedClip]], torch.Tensor],
) -> RaggedClips:
    """The batch's frames as RaggedClips on ``device``, clip ``i`` at its own ``(H_i, W_i)``.

    Host frames go through one (pinned, for CUDA) packed buffer and one transfer; DALI clips are decoded
    in groups of one output size (a DALI batch must be uniform to become one tensor) and copied into their
    slots on the device.
    """
    shapes = [tuple(d.shape) for _, d in decoded]
    lengths = {s[0] for s in shapes}
    if len(lengths) != 1:
        raise ConfigError(f"clips in one batch have different frame counts {sorted(lengths)}")
    sizes = [(int(s[1]), int(s[2])) for s in shapes]
    frames_per_clip = lengths.pop()
    if all(isinstance(d, PreparedClip) for _, d in decoded):
        out = RaggedClips.empty(sizes, frames_per_clip, device=device)
    else:
        host = RaggedClips.empty(sizes, frames_per_clip, pin_memory=device.type == "cuda")
        for i, (_, d) in enumerate(decoded):
            if not isinstance(d, PreparedClip):
                host.clip(i).numpy()[...] = d.frames
        out = host.to(device, non_blocking=True)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (_, d) in enumerate(decoded):
        if isinstance(d, PreparedClip):
            groups.setdefault(sizes[i], []).append(i)
    for rows in groups.values():
        frames = dali_decode([decoded[i][1] for i in rows]).to(device)
        for k, i in enumerate(rows):
            out.clip(i).copy_(frames[k])
    return out
