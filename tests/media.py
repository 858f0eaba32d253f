"""Test media: small files encoded with PyAV once per test session, and the real clips in ../shared/media.

Test modules import the fixtures they use (``from media import media_fixture, probe_cache_env``; pytest
finds fixtures imported into a module; the ``media`` fixture is defined under another function name so the
import does not clash with test arguments). Files are made lazily, on first use, into one session folder, so a run of one test
file only encodes what it touches.

Every generated file shows ``textured_frames``: unique content per frame and a counter patch, so a frame
off by one never compares equal. What encodes here (PyAV 18 wheels, FFmpeg 7), checked when this was written:

- libx264 and libx265 refuse odd widths/heights with yuv420p (x264: "width not divisible by 2"; x265:
  "Picture width must be an integer multiple of the specified chroma subsampling"). The "odd size" H.264
  file is therefore 322x242 (neither a multiple of 16, so the decoder crops coded padding); a truly odd
  321x243 file is made with mpeg4, which, like libvpx-vp9 and libsvtav1, accepts odd sizes.
- AV1 encodes with libsvtav1 only (no libaom/rav1e in the wheel) and decodes with libdav1d; SVT-AV1 prints
  a banner to stderr when it opens. Its default "random access" structure hides frames and shows them later
  (show_existing_frame), which is what makes AV1 a useful decode test.
- MJPEG needs a full-range pix_fmt (yuvj420p); MPEG-4 Part 2 goes into AVI, whose timestamps FFmpeg
  synthesises from the frame rate, with B-frames (packed bitstream handling).
- The VFR file is H.264 in MP4 written with millisecond pts; the MP4 muxer keeps them exactly in its own
  time base (1/16000), so every gap is irregular.
- Rotation is a display matrix (rotation=90 -> ``VideoInfo.rotation == 90``; frames stay unrotated unless
  ``apply_rotation=True``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidloader.dataset import VideoInfo, probe_video, textured_frames, write_video

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = REPO_ROOT.parent / "shared" / "media"

# Millisecond gaps of the VFR file: irregular (20..59 ms), fixed by a seed.
VFR_FRAMES = 90
_gaps = np.random.default_rng(3).integers(20, 60, VFR_FRAMES)
VFR_PTS_MS: tuple[int, ...] = tuple(int(v) for v in np.cumsum(_gaps) - _gaps[0])


@dataclass(frozen=True, kw_only=True)
class MediaSpec:
    """One generated file and what probing it must report."""

    filename: str
    frames: int
    height: int = 48
    width: int = 64
    codec: str = "h264"  # VideoInfo.codec (FFmpeg's canonical decoder name)
    pix_fmt: str = "yuv420p"
    fps: float = 25.0  # 0.0: variable, checked against the pts instead
    rotation: int = 0
    has_audio: bool = False
    keyframes: tuple[int, ...] = (0,)  # frame indices of keyframes (fixed GOP, no scene cuts)
    write: dict[str, Any] = field(default_factory=dict)  # write_video keyword arguments


def _spec(filename: str, frames: int, gop: int | None = None, **kw: Any) -> MediaSpec:
    keyframes = tuple(range(0, frames, gop)) if gop else tuple(range(frames))
    write = dict(kw.pop("write", {}))
    if gop:
        write["gop"] = gop
    return MediaSpec(filename=filename, frames=frames, keyframes=keyframes, write=write, **kw)


MEDIA: dict[str, MediaSpec] = {
    # Long GOP with 3 B-frames: 120 frames, keyframes at 0/50/100, so clips straddle keyframes.
    "h264": _spec("h264_bframes.mp4", 120, 50, write=dict(codec="libx264", bframes=3)),
    "hevc": _spec("hevc.mp4", 60, 24, codec="hevc", write=dict(codec="libx265", bframes=3)),
    "vp9": _spec("vp9.webm", 60, 24, codec="vp9", write=dict(codec="libvpx-vp9")),
    "av1": _spec("av1.mkv", 60, 24, codec="av1", write=dict(codec="libsvtav1")),
    "mpeg4": _spec("mpeg4.avi", 60, 24, codec="mpeg4", write=dict(codec="mpeg4", bframes=2)),
    "mjpeg": _spec(
        "mjpeg.avi", 40, codec="mjpeg", pix_fmt="yuvj420p", write=dict(codec="mjpeg", pix_fmt="yuvj420p")
    ),
    "vp8": _spec("vp8.webm", 60, 24, codec="vp8", write=dict(codec="libvpx")),
    "odd_h264": _spec(
        "odd_322x242.mp4", 30, 12, height=242, width=322, write=dict(codec="libx264", bframes=2)
    ),
    "odd_mpeg4": _spec(
        "odd_321x243.avi", 20, 8, height=243, width=321, codec="mpeg4", write=dict(codec="mpeg4")
    ),
    "vfr": _spec(
        "vfr.mp4",
        VFR_FRAMES,
        30,
        fps=0.0,
        write=dict(codec="libx264", bframes=2, pts=VFR_PTS_MS, time_base=Fraction(1, 1000)),
    ),
    "rotated": _spec("rotated90.mp4", 30, 10, rotation=90, write=dict(codec="libx264", rotation=90)),
    "audio": _spec("with_audio.mp4", 50, 25, has_audio=True, write=dict(codec="libx264")),
    # Fewer frames than most test clips: sampling pads it.
    "short": _spec("short.mp4", 5, 5, write=dict(codec="libx264")),
}

# Every generated codec, for decode parametrization.
CODEC_MEDIA: tuple[str, ...] = (
    "h264",
    "hevc",
    "vp9",
    "av1",
    "mpeg4",
    "mjpeg",
    "vp8",
    "odd_h264",
    "odd_mpeg4",
    "vfr",
    "rotated",
    "audio",
)

# The real clips in ../shared/media (README there): name -> (width, height, frames, pix_fmt, codec).
SHARED: dict[str, tuple[int, int, int, str, str]] = {
    "nasa_13013.mp4": (480, 270, 390, "yuv420p", "h264"),  # best stream is 3; stream 0 is 320x180, 325 frames
    "bt709_full_range.mp4": (1280, 720, 30, "yuvj420p", "h264"),
    "h264_10bits.mp4": (200, 200, 30, "yuv420p10le", "h264"),
    "h265_10bits.mp4": (200, 200, 30, "yuv420p10le", "hevc"),
    "h265_video.mp4": (128, 128, 10, "yuv420p", "hevc"),
    "av1_video.mkv": (640, 360, 125, "yuv420p", "av1"),
}


def shared_media(name: str) -> Path:
    """Path of a real clip in ../shared/media (next to the repository); skips the test when it is absent."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip(
            f"real test media folder {SHARED_MEDIA} is absent (clips from pytorch/torchcodec's tests)"
        )
    path = SHARED_MEDIA / name
    if not path.is_file():
        pytest.skip(f"real test clip {path} is absent")
    return path


def source_frames(name: str) -> np.ndarray:
    spec = MEDIA[name]
    return textured_frames(spec.frames, spec.height, spec.width, seed=sorted(MEDIA).index(name))


def _audio_track(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)


class MediaLibrary:
    """Generated media, made on first use into one folder per session."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        spec = MEDIA[name]
        path = self.root / spec.filename
        if not path.exists():
            kwargs = dict(spec.write)
            if spec.has_audio:
                kwargs["audio"] = _audio_track(spec.frames / 25)
            tmp = path.with_name("partial-" + path.name)
            write_video(tmp, source_frames(name), **kwargs)
            tmp.rename(path)  # a failed encode leaves no half-written file behind under the real name
        return path

    def spec(self, name: str) -> MediaSpec:
        return MEDIA[name]

    def probe(self, name: str) -> VideoInfo:
        return probe_video(self.path(name))


@pytest.fixture(scope="session", name="media")
def media_fixture(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture(autouse=True)
def probe_cache_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Keep the default probe cache (~/.cache/vidloader) out of tests: point it at the session's tmp folder."""
    cache = tmp_path_factory.getbasetemp() / "probe-cache"
    monkeypatch.setenv("VIDLOADER_CACHE_DIR", str(cache))
    yield cache


@dataclass(frozen=True)
class Reference:
    """A whole stream decoded sequentially by PyAV: the ground truth every backend must reproduce."""

    frames: tuple[np.ndarray, ...]  # rgb24, in decode-output (presentation) order
    pts: tuple[int, ...]
    time_base: Fraction
    keyframes: tuple[int, ...]  # indices of frames the decoder flagged as keyframes

    @property
    def timestamps(self) -> tuple[float, ...]:
        return tuple(float(p * self.time_base) for p in self.pts)


@functools.lru_cache(maxsize=4)
def reference(path: str | Path, stream_index: int | None = None, *, rgb: bool = True) -> Reference:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.best("video") if stream_index is None else container.streams[stream_index]
        frames, pts, keys, bases = [], [], [], set()
        for i, frame in enumerate(container.decode(stream)):
            frames.append(frame.to_ndarray(format="rgb24") if rgb else np.empty(0, np.uint8))
            pts.append(int(frame.pts))
            bases.add(Fraction(frame.time_base))
            if frame.key_frame:
                keys.append(i)
        (time_base,) = bases  # timestamps are frame.pts * frame.time_base, one time base per stream
    return Reference(tuple(frames), tuple(pts), time_base, tuple(keys))
