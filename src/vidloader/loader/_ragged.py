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

from .._errors import ConfigError, DecodeError
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
    isolate: Callable[[list[tuple[Any, Any]]], list[tuple[Any, Any]]],
) -> tuple[RaggedClips | None, list[tuple[Any, Any]]]:
    """The batch's frames as RaggedClips on ``device`` (clip ``i`` at its own ``(H_i, W_i)``), and the
    (clip, frames) pairs it holds.

    DALI clips are decoded first, in groups of one output size (a DALI batch must be uniform to become one
    tensor); a group that fails goes through ``isolate``, which raises or drops the clips that fail alone
    (on_error), so only they are lost. Host frames then go through one packed buffer (pinned for CUDA) and
    one transfer, and the DALI frames are copied into their slots on the device. None when nothing is left.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (_, d) in enumerate(decoded):
        if isinstance(d, PreparedClip):
            groups.setdefault(tuple(d.shape), []).append(i)
    dali: dict[int, torch.Tensor] = {}  # row in `decoded` -> its frames on the device
    dropped: set[int] = set()
    for rows in groups.values():
        group = [decoded[i] for i in rows]
        try:
            frames = dali_decode([d for _, d in group])
        except DecodeError:
            kept = {id(d) for _, d in isolate(group)}
            dropped |= {i for i in rows if id(decoded[i][1]) not in kept}
            rows = [i for i in rows if i not in dropped]
            if not rows:
                continue
            frames = dali_decode([decoded[i][1] for i in rows])
        for k, i in enumerate(rows):
            dali[i] = frames[k]
    keep = [i for i in range(len(decoded)) if i not in dropped]
    if not keep:
        return None, []
    shapes = [tuple(decoded[i][1].shape) for i in keep]
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
                host.clip(j).numpy()[...] = decoded[i][1].frames
        out = host.to(device, non_blocking=True)
    for j, i in enumerate(keep):
        if i in dali:
            out.clip(j).copy_(dali[i])
    return out, [decoded[i] for i in keep]
