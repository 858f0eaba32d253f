"""`vidloader inspect`: a contact sheet of what the loader feeds the model.

Layout (exact, so tests and users can rely on it): one row per clip, its T frames left to right, each
``H x W`` as delivered (after the transform, un-normalised), ``PAD`` pixels around every tile, and
``TEXT_LINES`` lines of ``LINE_H`` pixels of text under each row:

    width  = PAD + T * (W + PAD)
    height = PAD + rows * (H + TEXT_LINES * LINE_H + PAD)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PAD, LINE_H, TEXT_LINES = 4, 12, 2


def sheet_size(rows: int, frames: int, height: int, width: int) -> tuple[int, int]:
    """(width, height) of the sheet in pixels."""
    return PAD + frames * (width + PAD), PAD + rows * (height + TEXT_LINES * LINE_H + PAD)


def _indices_text(idx: list[int]) -> str:
    """``a..b step s`` when evenly spaced, else every index (padding repeats the last frame, VFR...)."""
    step = idx[1] - idx[0] if len(idx) > 1 else 1
    if step > 0 and idx == list(range(idx[0], idx[0] + step * len(idx), step)):
        return f"{idx[0]}..{idx[-1]} step {step}"
    return ",".join(map(str, idx))


def contact_sheet(batches, dataset, out: str | Path, *, mean=None, std=None) -> tuple[int, int]:
    """Draw the batches (NCTHW float normalised with mean/std, or NTHWC/NCTHW uint8) to ``out``."""
    from PIL import Image, ImageDraw

    from ..transforms import denormalize

    rows: list[tuple[np.ndarray, str, str]] = []
    for batch in batches:
        video = batch.video
        if video.dtype != torch.uint8:
            video = denormalize(video, mean=mean, std=std, layout="NCTHW")
        if video.shape[-1] != 3:  # NCTHW -> NTHWC
            video = video.permute(0, 2, 3, 4, 1)
        video = video.cpu().numpy()
        for i in range(video.shape[0]):
            info = dataset[int(batch.video_index[i])]
            name = dataset.classes[info.label] if info.label < len(dataset.classes) else str(info.label)
            view = "" if batch.view_index is None else f" view {int(batch.view_index[i])}"
            line1 = f"{name} | {Path(info.path).name} | clip {int(batch.clip_index[i])}{view}"
            idx = batch.frame_index[i].tolist()
            ts = batch.timestamp[i].tolist()
            line2 = f"frames {_indices_text(idx)} | t {ts[0]:.3f}-{ts[-1]:.3f}s"
            rows.append((video[i], line1, line2))
    if not rows:
        raise ValueError("no clips to draw")
    t, h, w = rows[0][0].shape[:3]
    size = sheet_size(len(rows), t, h, w)
    img = Image.new("RGB", size, (24, 24, 24))
    draw = ImageDraw.Draw(img)
    y = PAD
    for clip, line1, line2 in rows:
        for k in range(t):
            img.paste(Image.fromarray(clip[k]), (PAD + k * (w + PAD), y))
        draw.text((PAD, y + h + 1), line1, fill=(230, 230, 230))
        draw.text((PAD, y + h + 1 + LINE_H), line2, fill=(180, 180, 180))
        y += h + TEXT_LINES * LINE_H + PAD
    img.save(out)
    return size
