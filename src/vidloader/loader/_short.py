"""Videos shorter than one clip: counted once per loader, and the padded frames of each batch as a mask."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from .._errors import ConfigError
from ..dataset import VideoDataset
from ..sampling import ClipSpec, SamplingConfig, is_short

log = logging.getLogger("vidloader")


def short_videos(dataset: VideoDataset, cfg: SamplingConfig) -> list[str]:
    """Paths of the videos shorter than one clip; raises under ``short_video="error"``, logs otherwise.

    Raises:
        ConfigError: some video is short and ``cfg.short_video == "error"`` (refused at construction, not
            part-way through an epoch).
    """
    paths = [v.path for v in dataset if is_short(v, cfg)]
    if not paths:
        return paths
    listed = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    if cfg.short_video == "error":
        raise ConfigError(
            f"{len(paths)} videos are shorter than one clip of {cfg.frames_per_clip} frames ({listed}) and "
            "short_video='error'; choose short_video='pad', 'loop' or 'skip', or shorten the clip"
        )
    what = {
        "pad": "repeats their last frame (ClipBatch.frame_mask marks the padding)",
        "loop": "plays them again from the start",
        "skip": "gives them no clip",
    }[cfg.short_video]
    log.warning(
        "vidloader: %d videos are shorter than one clip (%s); short_video=%r %s",
        len(paths),
        listed,
        cfg.short_video,
        what,
    )
    return paths


def frame_mask(clips: Sequence[ClipSpec]) -> torch.Tensor:
    """bool ``[B, T]``: True for real frames, False for frames that only repeat a short video's last one."""
    t = len(clips[0].frame_indices) if clips else 0
    mask = torch.ones((len(clips), t), dtype=torch.bool)
    for i, c in enumerate(clips):
        if c.padded:
            mask[i, t - c.padded :] = False
    return mask
