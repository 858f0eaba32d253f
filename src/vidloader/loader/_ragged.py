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
    items: Sequence[Any],
    device: torch.device,
    decode_group: Callable[[list[int]], tuple[list[int], torch.Tensor | None]],
) -> tuple[RaggedClips | None, list[int]]:
    """The batch's frames as RaggedClips on ``device`` (clip ``i`` at its own ``(H_i, W_i)``), and the
    positions of ``items`` it holds.

    DALI clips (``PreparedClip``) are decoded first, in groups of one output size (a DALI batch must be
    uniform to become one tensor), each group by ``decode_group(positions)``, which makes one backend call
    for a healthy group and returns the positions that decoded with their frames (the failing ones were
    already raised or counted under on_error). Host frames then go through one packed buffer (pinned for
    CUDA) and one transfer, and the DALI frames are copied into their slots on the device. None when nothing
    is left.

    Raises:
        ConfigError: the clips have different frame counts (a sampling bug, never user data).
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, d in enumerate(items):
        if isinstance(d, PreparedClip):
            groups.setdefault(tuple(d.shape), []).append(i)
    dali: dict[int, torch.Tensor] = {}  # position in `items` -> its frames on the device
    dropped: set[int] = set()
    for rows in groups.values():
        kept_rows, frames = decode_group(rows)
        dropped |= set(rows) - set(kept_rows)
        if frames is not None:
            for k, i in enumerate(kept_rows):
                dali[i] = frames[k]
    keep = [i for i in range(len(items)) if i not in dropped]
    if not keep:
        return None, []
    shapes = [tuple(items[i].shape) for i in keep]
    lengths = {s[0] for s in shapes}
    if len(lengths) != 1:
        raise ConfigError(f"clips in one batch have different frame counts {sorted(lengths)}")
    sizes = [(int(s[1]), int(s[2])) for s in shapes]
    frames_per_clip = lengths.pop()
    if all(i in dali for i in keep):  # frames born on the device: nothing to send from the host
        out = RaggedClips.empty(sizes, frames_per_clip, device=device)
    else:
        host = RaggedClips.empty(sizes, frames_per_clip, pin_memory=device.type == "cuda")
        for j, i in enumerate(keep):
            if i not in dali:
                host.clip(j).numpy()[...] = items[i].frames
        out = host.to(device, non_blocking=True)
    for j, i in enumerate(keep):
        if i in dali:
            out.clip(j).copy_(dali[i])
    return out, keep
