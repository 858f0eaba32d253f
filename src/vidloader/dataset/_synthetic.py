"""Media made with PyAV: the embedded demo dataset, benchmark workloads and test clips all come from here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ._encoding import add_audio_stream, configure_video, encode_audio, encode_frames, peek

_DEMO_VERSION = "demo-v2"
DEMO_CLASSES = ("move_down", "move_left", "move_right", "move_up", "orbit_ccw", "orbit_cw")


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float | Fraction = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    bframes: int | None = None,
    options: dict[str, str] | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int | None = None,
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    audio_codec: str = "aac",
) -> Path:
    """Encode RGB uint8 frames ``[H, W, 3]`` into ``path``.

    ``pts`` (in ``time_base`` units) makes a variable-frame-rate file; ``rotation`` writes a display matrix;
    ``audio`` (float32 ``[channels, samples]`` in [-1, 1]) adds an audio stream.

    Args:
        path: the output file (the container follows its suffix).
        frames: RGB uint8 ``[H, W, 3]`` frames.
        fps: frame rate (and time base) of a constant-rate file.
        codec: FFmpeg encoder name.
        pix_fmt: encoder pixel format.
        gop: keyframe interval.
        bframes: B-frames between references.
        options: extra encoder options.
        pts: per-frame timestamps in ``time_base`` units (variable frame rate).
        time_base: the stream time base for ``pts``.
        rotation: display rotation in degrees.
        audio: float32 ``[channels, samples]`` in [-1, 1], or None.
        audio_rate: audio sample rate.
        audio_codec: FFmpeg audio encoder name.

    Returns:
        ``path``.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first, frames = peek(frames)
    h, w = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    with av.open(str(path), mode="w") as out:
        vs: Any = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        configure_video(
            vs, codec=codec, gop=gop, bframes=bframes, options=options, time_base=time_base, rotation=rotation
        )
        aus = add_audio_stream(out, audio, audio_codec, audio_rate) if audio is not None else None
        encode_frames(out, vs, frames, pts=pts, time_base=time_base)
        if audio is not None:
            encode_audio(out, aus, audio, audio_rate)
    return path


def textured_frames(n: int, height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """Frames whose content changes every frame and differs across the image, so any off-by-one shows.

    Args:
        n: frames.
        height: frame height.
        width: frame width.
        seed: varies the texture.

    Returns:
        uint8 ``[n, height, width, 3]``.
    """
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        # A moving gradient over a fixed noise texture: smooth enough to encode well, unique per frame.
        grad = ((xx * 3 + yy * 2 + i * 9) % 256).astype(np.uint8)
        frame = (base // 4 + grad[..., None] // 2).astype(np.uint8)
        frame[: min(8, height), : min(8 * 3, width)] = (i * 37) % 256  # frame counter patch
        out[i] = frame
    return out


def _demo_clip(
    label: str, rng: np.random.Generator, *, size: int, frames: int, width: int | None = None
) -> np.ndarray:
    """One demo clip, ``size x width`` (square by default). Every class has the same per-frame distribution
    of position, size, colour and background (motion wraps round the frame; orbits start at a uniform
    angle), so the label exists only in how frames follow each other."""
    h, w = size, size if width is None else width
    size = min(h, w)
    bg_lo = rng.integers(0, 90)
    bg = rng.integers(bg_lo, bg_lo + 80, size=(h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
    bg = np.kron(bg, np.ones((4, 4, 1), dtype=np.uint8))[:h, :w]
    colour = rng.integers(140, 256, size=3)
    radius = rng.uniform(size * 0.12, size * 0.2)
    speed = rng.uniform(size * 0.04, size * 0.07)  # pixels per frame
    y0, x0 = rng.uniform(0, h), rng.uniform(0, w)
    angle0 = rng.uniform(0, 2 * math.pi)
    orbit_r = rng.uniform(size * 0.15, size * 0.3)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((frames, h, w, 3), dtype=np.uint8)
    for t in range(frames):
        if label.startswith("orbit"):
            sign = 1.0 if label == "orbit_ccw" else -1.0
            a = angle0 + sign * t * speed / orbit_r
            cy, cx = h / 2 - orbit_r * math.sin(a), w / 2 + orbit_r * math.cos(a)
        else:
            dy, dx = {"move_down": (1, 0), "move_up": (-1, 0), "move_left": (0, -1), "move_right": (0, 1)}[
                label
            ]
            cy, cx = (y0 + dy * speed * t) % h, (x0 + dx * speed * t) % w
        # Toroidal distance, so a shape leaving one edge comes back at the other.
        ddy = np.minimum(np.abs(yy - cy), h - np.abs(yy - cy))
        ddx = np.minimum(np.abs(xx - cx), w - np.abs(xx - cx))
        noise = rng.integers(0, 24, size=(h, w, 1), dtype=np.uint8)
        frame = bg + noise
        frame[(ddy**2 + ddx**2) <= radius**2] = colour
        out[t] = frame
    return out


def _mixed_geometry(rng: np.random.Generator, size: int, frames: int, k: int) -> tuple[int, int, int, int]:
    """(height, width, frames, fps) of the ``k``-th clip of the mixed demo; even sizes (H.264 4:2:0)."""
    short = 2 * round(size * float(rng.uniform(0.8, 1.5)) / 2)
    long = 2 * round(short * float(rng.choice([1.0, 4 / 3, 16 / 9])) / 2)
    h, w = (long, short) if rng.random() < 0.3 else (short, long)
    n = max(2, frames // 3) if k % 7 == 6 else frames
    return h, w, n, int(rng.choice([15, 24, 30, 60]))


def make_demo_dataset(
    root: str | Path,
    *,
    seed: int = 0,
    train_per_class: int = 40,
    val_per_class: int = 12,
    size: int = 64,
    frames: int = 32,
    fps: int = 15,
    progress: bool = True,
    mixed: bool = False,
) -> Path:
    """Write the synthetic action dataset to ``root/{train,val}/<class>/*.mp4`` (deterministic from seed).

    ``mixed=True`` makes it look like scraped data: each clip gets its own frame size (landscape, portrait
    and square, ``size`` on the short side give or take), frame rate (15 to 60 fps) and every seventh clip
    is short (a third of ``frames``), so a loader has to handle mixed resolutions and short videos.

    Returns ``root``. Existing complete datasets (a ``.complete`` marker) are left as they are.

    Args:
        root: where to write it.
        seed: makes the files deterministic.
        train_per_class: training videos per class.
        val_per_class: validation videos per class.
        size: frame height and width.
        frames: frames per video.
        fps: frame rate.
        progress: show a progress bar.

    Returns:
        ``root``.
    """
    from tqdm import tqdm

    root = Path(root)
    marker = root / ".complete"
    # The marker records how the data was made, so a changed generator or argument rebuilds it.
    stamp = f"{_DEMO_VERSION} seed={seed} train={train_per_class} val={val_per_class} size={size} frames={frames} fps={fps}"
    stamp += " mixed\n" if mixed else "\n"
    if marker.exists() and marker.read_text() == stamp:
        return root
    for old in root.glob("*/*/*.mp4"):
        old.unlink()
    jobs = [
        (split, label, i)
        for split, n in (("train", train_per_class), ("val", val_per_class))
        for label in DEMO_CLASSES
        for i in range(n)
    ]
    for k, (split, label, i) in enumerate(tqdm(jobs, desc="demo data", disable=not progress, unit="clip")):
        clip_seed = [seed, ("train", "val").index(split), DEMO_CLASSES.index(label), i]
        rng = np.random.default_rng(clip_seed)
        h, w, n, rate = size, size, frames, fps
        if mixed:
            h, w, n, rate = _mixed_geometry(np.random.default_rng([*clip_seed, 1]), size, frames, k)
        clip = _demo_clip(label, rng, size=h, width=w, frames=n)
        write_video(root / split / label / f"{label}_{i:04d}.mp4", clip, fps=rate, gop=16, bframes=2)
    marker.write_text(stamp)
    return root
