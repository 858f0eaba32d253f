"""Named synthetic benchmark workloads, generated once with PyAV into a data folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._errors import ConfigError
from ..dataset import write_video


@dataclass(frozen=True)
class Workload:
    files: int
    seconds: float
    width: int
    height: int
    gop: int
    fps: int = 25
    codec: str = "libx264"
    # Mixed resolutions: file i is sizes[i % len(sizes)] (width, height) instead of width x height.
    sizes: tuple[tuple[int, int], ...] = ()
    bframes: int | None = None  # None: the encoder's default
    # libvpx-vp9's encode: "realtime" (every frame a reference, no hidden frames) or "good" (what FFmpeg
    # gives by default: alt-ref frames decoded but never shown on their own, as in published WebM sets).
    vp9_deadline: str = "realtime"

    def size(self, i: int) -> tuple[int, int]:
        return self.sizes[i % len(self.sizes)] if self.sizes else (self.width, self.height)

    @property
    def suffix(self) -> str:
        return {"libvpx-vp9": ".webm", "mpeg4": ".avi"}.get(self.codec, ".mp4")

    def encoder_options(self) -> dict[str, str] | None:
        """Options for ``write_video`` beyond the GOP and B-frames."""
        if self.codec != "libvpx-vp9":
            return None
        return {"deadline": self.vp9_deadline, "cpu-used": "8" if self.vp9_deadline == "realtime" else "4"}


WORKLOADS: dict[str, Workload] = {
    "tiny": Workload(files=3, seconds=2.4, width=96, height=64, gop=25),
    "360p-gop250": Workload(files=8, seconds=10, width=640, height=360, gop=250),
    "1080p-gop30": Workload(files=4, seconds=10, width=1920, height=1080, gop=30),
    "1080p-gop250": Workload(files=4, seconds=10, width=1920, height=1080, gop=250),
    # Long enough that a clip's GOPs are a small part of each file (benchmarks/remote.py: bytes per clip).
    "1080p-gop250-32s": Workload(files=2, seconds=32, width=1920, height=1080, gop=250),
    "long-10min": Workload(files=1, seconds=600, width=640, height=360, gop=250),
    # VP9: the codec DALI's CPU decoder has, so DALI paths (ours and DALI's reader) can be compared on a CPU.
    "tiny-vp9": Workload(files=3, seconds=2.4, width=96, height=64, gop=25, codec="libvpx-vp9"),
    "360p-vp9-gop250": Workload(files=8, seconds=10, width=640, height=360, gop=250, codec="libvpx-vp9"),
    # Mixed sizes and aspect ratios (landscape, square, portrait, 4:3, 720p): bench it with a fixed
    # `--resize HxW`, so every backend delivers one batch shape.
    "mixed-gop250": Workload(
        files=6,
        seconds=10,
        width=640,
        height=360,
        gop=250,
        sizes=((640, 360), (480, 480), (360, 640), (854, 480), (320, 240), (1280, 720)),
    ),
    # Shaped like the datasets people train on. UCF-101 / HMDB-51: MPEG-4 Part 2 (Xvid/DivX) in AVI,
    # 320x240, 25 fps, a keyframe every 12 frames, B-frames; AVI stores no presentation timestamps, so a
    # loader has to rebuild them (several peers return neighbouring frames here).
    "ucf-like": Workload(files=12, seconds=7, width=320, height=240, gop=12, codec="mpeg4", bframes=2),
    # Kinetics (as distributed after the usual re-encode): H.264 in MP4, short side 256, 30 fps, long GOPs
    # (x264's default keyint 250), 3 B-frames.
    "kinetics-like": Workload(files=8, seconds=10, width=340, height=256, gop=250, fps=30, bframes=3),
    # Something-Something-v2: VP9 in WebM, 240 high, 12 fps, about 4 s, a single keyframe; FFmpeg's default
    # ("good") VP9 encode, alt-ref frames included.
    "ssv2-like": Workload(
        files=16, seconds=4, width=426, height=240, gop=9999, fps=12, codec="libvpx-vp9", vp9_deadline="good"
    ),
}


def _frames(w: Workload, seed: int):
    """A smooth texture panning under a moving disc: natural bitrates, unlike per-pixel noise."""
    import cv2

    width, height = w.size(seed)
    w = replace(w, width=width, height=height)

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(8, w.height // 8), max(16, w.width // 4), 3), dtype=np.uint8)
    tex = cv2.resize(small, (w.width * 3, w.height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0 : w.height, 0 : w.width]
    r = max(4, w.height // 8)
    n = int(w.seconds * w.fps)
    for t in range(n):
        x0 = (t * 3 + seed * 37) % (w.width * 2)
        frame = np.ascontiguousarray(tex[:, x0 : x0 + w.width])
        cy = w.height / 2 + w.height / 3 * np.sin(t / 15 + seed)
        cx = (t * 5 + seed * 50) % w.width
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (230, 60, 40)
        yield frame


def ensure_workload(name: str, root: str | Path, *, progress: bool = True) -> Path:
    """``root/name`` filled with the workload's files (reused when already complete)."""
    from tqdm import tqdm

    if name not in WORKLOADS:
        raise ConfigError(f"--synthetic {name!r} is not a workload; choose one of {sorted(WORKLOADS)}")
    w = WORKLOADS[name]
    folder = Path(root) / name
    marker = folder / ".complete"
    if marker.exists():
        return folder
    for i in tqdm(range(w.files), desc=f"generating {name}", disable=not progress, unit="file"):
        write_video(
            folder / "videos" / f"{name}_{i:02d}{w.suffix}",
            _frames(w, i),
            fps=w.fps,
            gop=w.gop,
            bframes=w.bframes,
            codec=w.codec,
            options=w.encoder_options(),
        )
    marker.write_text(repr(w))
    return folder
