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

    def size(self, i: int) -> tuple[int, int]:
        return self.sizes[i % len(self.sizes)] if self.sizes else (self.width, self.height)

    @property
    def suffix(self) -> str:
        return ".webm" if self.codec == "libvpx-vp9" else ".mp4"


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
        opts = {"deadline": "realtime", "cpu-used": "8"} if w.codec == "libvpx-vp9" else None
        write_video(
            folder / "videos" / f"{name}_{i:02d}{w.suffix}",
            _frames(w, i),
            fps=w.fps,
            gop=w.gop,
            codec=w.codec,
            options=opts,
        )
    marker.write_text(repr(w))
    return folder
