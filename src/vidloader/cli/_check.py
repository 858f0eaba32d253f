"""Is a backend's clip the right frames? Compared against a sequential PyAV decode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dataset import VideoInfo

MEAN_ABS_BOUND, PSNR_BOUND = 4.0, 35.0
LUMA_MAD_BOUND, LUMA_PSNR_BOUND = 2.0, 40.0
_RANK = ("exact", "close rgb", "close luma", "DIFFERS")


def reference(info: VideoInfo, indices: Sequence[int]) -> np.ndarray:
    """The frames at ``indices`` from decoding the stream from its start, ``to_ndarray(format="rgb24")``."""
    import av

    want, last, got = set(indices), max(indices), {}
    frame: Any
    with av.open(info.path) as c:
        for i, frame in enumerate(c.decode(c.streams[info.stream_index])):
            if i in want:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    return np.stack([got[i] for i in indices])


def _mad_psnr(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    mse = float((diff**2).mean())
    return float(diff.mean()), 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Same frames as the reference? ``exact``, ``close`` or ``DIFFERS``, with the figures behind it.

    ``close`` on RGB means within MEAN_ABS_BOUND / PSNR_BOUND. Decoders also differ in how they upsample
    4:2:0 chroma (FFmpeg's swscale, behind PyAV's rgb24, takes the nearest chroma sample; DALI
    interpolates), which on colourful fine texture alone exceeds the RGB bound; BT.601 luma of the RGB
    frames cancels the chroma terms, so a frame that is within LUMA_MAD_BOUND / LUMA_PSNR_BOUND on luma is
    the right frame with other chroma (``basis: "luma"``). A neighbouring frame of real video is far
    outside both (mean |luma diff| ≈ 14 on the 360p workloads)."""
    if got.shape != want.shape:
        return {"check": "DIFFERS", "why": f"shape {got.shape} vs {want.shape}"}
    mad, psnr = _mad_psnr(got, want)
    res: dict[str, Any] = {"mean_abs_diff": round(mad, 3), "psnr_db": round(psnr, 2)}
    if mad == 0:
        return {"check": "exact", **res}
    if mad <= MEAN_ABS_BOUND and psnr >= PSNR_BOUND:
        return {"check": "close", "basis": "rgb", **res}
    lmad, lpsnr = _mad_psnr(_luma(got.astype(np.float64)), _luma(want.astype(np.float64)))
    res.update(luma_mean_abs_diff=round(lmad, 3), luma_psnr_db=round(lpsnr, 2))
    if lmad <= LUMA_MAD_BOUND and lpsnr >= LUMA_PSNR_BOUND:
        return {"check": "close", "basis": "luma", **res}
    return {"check": "DIFFERS", **res}


def worst_check(got: Sequence[np.ndarray], refs: Sequence[np.ndarray]) -> dict[str, Any]:
    """The worst of ``compare`` over the check clips (the row's check fields)."""
    checks = [compare(np.asarray(g), r) for g, r in zip(got, refs, strict=True)]
    return max(checks, key=lambda c: _RANK.index(" ".join(filter(None, (c["check"], c.get("basis"))))))
