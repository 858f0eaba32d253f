"""A zoo of real-world files, made with PyAV at test time: the containers, codecs and damage found in
training sets (broadcast captures, phone videos, old AVI collections, web downloads, cut-off downloads).

Each ``ZooCase`` builds one small file (64x48-ish, 24-72 frames) in well under a second. Healthy cases are
compared frame by frame with a plain sequential PyAV decode; damaged cases are made from a healthy source
file, whose sequential decode is the truth every served frame must equal (``ZooCase.source``).

Used by tests/test_zoo.py and benchmarks/compat.py (``build_zoo(folder)``). What the FFmpeg in the av
wheel does with these, checked when this was written:

- MPEG-TS/M2TS: the muxer starts pts at 1.4 s (126000/90000) plus the B-frame delay, dts earlier.
- AVI has no pts: FFmpeg derives them from the frame rate, B-frames come out of the packed bitstream.
- x264 ``open-gop=1``: keyframes are recovery-point I-frames whose leading B-frames reference the GOP
  before; after a seek FFmpeg logs errors ("mmco: unref short failure", missing references) on them.
- x265 defaults to open GOPs: keyframes are CRA pictures with RASL leading pictures.
- ``live=1`` makes the Matroska muxer write no Cues (index); ``frag_keyframe+empty_moov`` writes a
  fragmented MP4 whose moov lists no samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidloader.dataset import textured_frames

H, W = 48, 64


@dataclass(frozen=True)
class ZooCase:
    """One file of the zoo.

    ``damage``: "" for a healthy file; else what was done to ``source`` (another case's name) to make it.
    ``expect``: for damaged files, "partial" (some frames decode, the index counts only those),
    "decode-errors" (demuxing sees nothing wrong; clips over the damage fail), or "unusable" (indexing
    must skip it with ``reason`` in the message)."""

    name: str
    filename: str
    build: Callable[[Path], None] = field(repr=False)
    what: str
    source: str = ""
    damage: str = ""
    expect: str = "exact"
    reason: str = ""


def encode(
    path: Path,
    frames: np.ndarray,
    *,
    codec: str = "libx264",
    fmt: str | None = None,
    pix_fmt: str = "yuv420p",
    fps: int = 25,
    params: str = "",
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    gop: int | None = None,
    bframes: int | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int | None = None,
    audio_lead: float | None = None,
    audio_codec: str = "aac",
) -> None:
    """Encode RGB frames with full control over codec and muxer options.

    ``params``: x264/x265 params (scenecut is always off, so keyframes are where the GOP says).
    ``audio_lead``: add an audio track (``audio_codec``) starting at 0 and start the video that many seconds
    later."""
    import av

    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        vs: Any = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        opts = dict(codec_options or {})
        if codec in ("libx264", "libx265"):
            key = "x264-params" if codec == "libx264" else "x265-params"
            extra = ["scenecut=0"] + (["log-level=error", "pools=1"] if codec == "libx265" else [])
            if gop:
                extra.append(f"keyint={gop}:min-keyint={gop}")
            if bframes is not None:
                extra.append(f"bframes={bframes}")
            opts[key] = ":".join(extra + ([params] if params else []))
            opts.setdefault("threads", "1")
        else:
            if gop:
                vs.codec_context.gop_size = gop
            if bframes is not None:
                vs.codec_context.max_b_frames = bframes
        vs.options = opts
        if time_base is not None:
            vs.time_base = time_base
            vs.codec_context.time_base = time_base
        if rotation:
            vs.set_display_rotation(rotation)
        aus: Any = None
        if audio_lead is not None:
            aus = out.add_stream(audio_codec, rate=16000)
            aus.layout = "mono"
        offset = 0
        if audio_lead:
            tb = time_base or Fraction(1, fps)
            offset = round(audio_lead / tb)
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            if pts is not None or offset:
                frame.pts = (pts[i] if pts is not None else i) + offset
                frame.time_base = time_base or Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            _audio(out, aus, len(frames) / fps + (audio_lead or 0))


def _audio(out: Any, stream: Any, seconds: float) -> None:
    import av

    # The encoder's own sample format and frame size: AAC takes planar floats by 1024, MP2 int16 by 1152.
    rate, size = 16000, stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    t = np.arange(int(seconds * rate)) / rate
    samples = 0.3 * np.sin(2 * np.pi * 440 * t)
    dtype = np.int16 if fmt.startswith("s16") else np.float32
    if dtype is np.int16:
        samples = samples * 32767
    for pos in range(0, len(samples), size):
        chunk = np.zeros((1, size), dtype)
        part = samples[pos : pos + size]
        chunk[0, : len(part)] = part
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, pos, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _frames(n: int, seed: int, h: int = H, w: int = W) -> np.ndarray:
    return textured_frames(n, h, w, seed=seed)


def _vfr_pts(n: int) -> list[int]:
    gaps = np.random.default_rng(5).integers(20, 60, n)
    return [int(v) for v in np.cumsum(gaps) - gaps[0]]


# ---- damage -------------------------------------------------------------------------------------------


def _packets(path: Path) -> list[tuple[int, int, bool]]:
    import av

    with av.open(str(path)) as c:
        return [(int(p.pos), int(p.size), bool(p.is_keyframe)) for p in c.demux(video=0) if p.size]


def corrupt_gop(src: Path, dst: Path, frame: int) -> None:
    """Overwrite the payload of the packet at decode position ``frame`` (a keyframe, so its whole GOP
    depends on it), keeping its first 16 bytes (length and NAL header): demuxing sees nothing wrong."""
    pos, size, key = _packets(src)[frame]
    if not key:
        raise ValueError(f"packet {frame} of {src} is not a keyframe")
    data = bytearray(src.read_bytes())
    data[pos + 16 : pos + size] = bytes(b ^ 0x5A for b in data[pos + 16 : pos + size])
    dst.write_bytes(bytes(data))


def truncate(src: Path, dst: Path, fraction: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def damage_cues(src: Path, dst: Path) -> None:
    """Overwrite a Matroska file's Cues element (its seek index) with garbage after its ID and size."""
    data = bytearray(src.read_bytes())
    at = data.rfind(bytes.fromhex("1C53BB6B"))
    if at < 0:
        raise ValueError(f"{src} has no Cues element")
    end = min(len(data), at + 64)
    data[at + 6 : end] = bytes((i * 97 + 13) % 256 for i in range(end - at - 6))
    dst.write_bytes(bytes(data))


# ---- the zoo ------------------------------------------------------------------------------------------

X264_PYRAMID = "b-pyramid=normal:ref=3"


def _cases() -> list[ZooCase]:
    f = _frames
    c: list[ZooCase] = []

    def add(name: str, filename: str, what: str, build: Callable[[Path], None], **kw: Any) -> None:
        c.append(ZooCase(name=name, filename=filename, what=what, build=build, **kw))

    add(
        "mp4_bpyramid",
        "bpyramid.mp4",
        "H.264 MP4, 3 B-frames with B-pyramid (edit list shifts pts)",
        lambda p: encode(p, f(72, 1), gop=24, bframes=3, params=X264_PYRAMID),
    )
    add(
        "mp4_fragmented",
        "fragmented.mp4",
        "H.264 fragmented MP4 (frag_keyframe+empty_moov)",
        lambda p: encode(
            p, f(60, 2), gop=20, bframes=2, container_options={"movflags": "frag_keyframe+empty_moov"}
        ),
    )
    add(
        "mp4_faststart",
        "faststart.mp4",
        "H.264 MP4 with the index at the front (faststart)",
        lambda p: encode(p, f(60, 3), gop=20, bframes=2, container_options={"movflags": "faststart"}),
    )
    add(
        "mov_vfr_rotated",
        "phone.mov",
        "H.264 MOV, variable frame rate and a 90 degree display matrix (phone video)",
        lambda p: encode(
            p, f(60, 4), gop=30, bframes=2, pts=_vfr_pts(60), time_base=Fraction(1, 1000), rotation=90
        ),
    )
    add(
        "mkv_cues",
        "cues.mkv",
        "H.264 Matroska with Cues",
        lambda p: encode(p, f(60, 5), gop=20, bframes=2),
    )
    add(
        "mkv_nocues",
        "nocues.mkv",
        "H.264 Matroska without Cues (live)",
        lambda p: encode(p, f(60, 6), gop=20, bframes=2, container_options={"live": "1"}),
    )
    add(
        "webm_nocues_vp9",
        "nocues.webm",
        "VP9 WebM without Cues (live)",
        lambda p: encode(p, f(48, 7), codec="libvpx-vp9", gop=16, container_options={"live": "1"}),
    )
    add(
        "ts_h264",
        "broadcast.ts",
        "H.264 MPEG-TS with B-frames (pts start 1.4 s, dts earlier)",
        lambda p: encode(p, f(60, 8), gop=20, bframes=2),
    )
    add(
        "m2ts_h264",
        "camcorder.m2ts",
        "H.264 M2TS (Blu-ray/AVCHD 192-byte packets)",
        lambda p: encode(
            p, f(50, 9), fmt="mpegts", gop=25, bframes=2, container_options={"mpegts_m2ts_mode": "1"}
        ),
    )
    add(
        "ts_mpeg2",
        "dvb.ts",
        "MPEG-2 video in MPEG-TS with B-frames",
        lambda p: encode(p, f(48, 10), codec="mpeg2video", gop=12, bframes=2),
    )
    add(
        "mpg_mpeg2",
        "dvd.mpg",
        "MPEG-2 program stream (.mpg) with B-frames",
        lambda p: encode(p, f(48, 11), codec="mpeg2video", gop=12, bframes=2),
    )
    add(
        "mpg_mpeg1",
        "vcd.mpg",
        "MPEG-1 video in an MPEG-1 program stream with MP2 audio: one keyframe then P-frames only (a "
        "one-frame reorder delay all the same), video pts starting at 0.54 s",
        lambda p: encode(
            p,
            f(60, 31),
            codec="mpeg1video",
            fmt="mpeg",
            gop=1000,
            bframes=0,
            audio_lead=0.0,
            audio_codec="mp2",
        ),
    )
    add(
        "avi_mpeg4_bframes",
        "xvid.avi",
        "MPEG-4 Part 2 in AVI with B-frames (packed bitstream)",
        lambda p: encode(p, f(60, 12), codec="mpeg4", gop=20, bframes=2),
    )
    add(
        "avi_mjpeg",
        "mjpeg.avi",
        "Motion JPEG in AVI (yuvj420p, full range)",
        lambda p: encode(p, f(30, 13), codec="mjpeg", pix_fmt="yuvj420p"),
    )
    add(
        "flv_h264",
        "stream.flv",
        "H.264 in FLV",
        lambda p: encode(p, f(48, 14), gop=16, bframes=2),
    )
    add(
        "h264_open_gop",
        "open_gop.mp4",
        "H.264 open GOP (recovery-point I-frames, leading B-frames referencing the previous GOP)",
        lambda p: encode(p, f(72, 15), gop=24, bframes=3, params="open-gop=1:" + X264_PYRAMID),
    )
    add(
        "h264_open_gop_ts",
        "open_gop.ts",
        "H.264 open GOP in MPEG-TS",
        lambda p: encode(p, f(72, 16), gop=24, bframes=3, params="open-gop=1"),
    )
    add(
        "hevc_open_gop",
        "cra.mp4",
        "HEVC open GOP (CRA keyframes with RASL leading pictures)",
        lambda p: encode(p, f(60, 17), codec="libx265", gop=20, bframes=3, params="open-gop=1"),
    )
    add(
        "hevc_mkv",
        "hevc.mkv",
        "HEVC closed GOP in Matroska",
        lambda p: encode(p, f(48, 18), codec="libx265", gop=16, bframes=2, params="open-gop=0"),
    )
    add(
        "vp8_altref",
        "vp8_altref.webm",
        "VP8 with hidden alt-ref frames",
        lambda p: encode(
            p, f(48, 19), codec="libvpx", gop=24, codec_options={"auto-alt-ref": "1", "lag-in-frames": "16"}
        ),
    )
    add(
        "vp9_altref",
        "vp9_altref.webm",
        "VP9 with hidden alt-ref frames",
        lambda p: encode(
            p,
            f(48, 20),
            codec="libvpx-vp9",
            gop=24,
            codec_options={"auto-alt-ref": "1", "lag-in-frames": "16"},
        ),
    )
    add(
        "av1",
        "av1.mp4",
        "AV1 (SVT-AV1, hidden frames shown later) in MP4",
        lambda p: encode(p, f(40, 21), codec="libsvtav1", gop=16),
    )
    add(
        "h264_10bit",
        "h264_10bit.mkv",
        "H.264 High 10 (yuv420p10le)",
        lambda p: encode(p, f(36, 22), pix_fmt="yuv420p10le", gop=12, bframes=2),
    )
    add(
        "hevc_10bit",
        "hevc_10bit.mp4",
        "HEVC Main 10 (yuv420p10le)",
        lambda p: encode(p, f(36, 23), codec="libx265", pix_fmt="yuv420p10le", gop=12, bframes=2),
    )
    add(
        "h264_422_odd",
        "h264_422_62x47.mkv",
        "H.264 4:2:2 at 62x47",
        lambda p: encode(p, f(30, 24, 47, 62), pix_fmt="yuv422p", gop=10, bframes=2),
    )
    add(
        "h264_444_odd",
        "h264_444_63x47.mp4",
        "H.264 4:4:4 at 63x47",
        lambda p: encode(p, f(30, 25, 47, 63), pix_fmt="yuv444p", gop=10, bframes=2),
    )
    add(
        "vp9_444_odd",
        "vp9_444_65x49.webm",
        "VP9 4:4:4 at 65x49",
        lambda p: encode(p, f(30, 26, 49, 65), codec="libvpx-vp9", pix_fmt="yuv444p", gop=10),
    )
    add(
        "all_intra",
        "all_intra.mp4",
        "H.264 all-intra (every frame a keyframe)",
        lambda p: encode(p, f(30, 27), gop=1),
    )
    add(
        "one_keyframe",
        "one_keyframe.mp4",
        "H.264, one keyframe over 120 frames",
        lambda p: encode(p, f(120, 28), gop=1000, bframes=3, params="min-keyint=1000"),
    )
    add(
        "audio_first",
        "audio_first.mp4",
        "H.264 + AAC, audio starts 0.48 s before the video",
        lambda p: encode(p, f(50, 29), gop=25, bframes=2, audio_lead=0.48),
    )
    add(
        "audio_first_mkv",
        "audio_first.mkv",
        "H.264 + AAC in Matroska, audio starts 0.48 s before the video",
        lambda p: encode(p, f(50, 30), gop=25, bframes=2, audio_lead=0.48),
    )
    # ---- damaged files, each made from a healthy one above ----
    add(
        "corrupt_gop",
        "corrupt_gop.mp4",
        "H.264 MP4, keyframe payload overwritten mid-file (GOP 2 of 3)",
        lambda p: corrupt_gop(p.parent / "bpyramid.mp4", p, 24),
        source="mp4_bpyramid",
        damage="keyframe 24 overwritten",
        expect="decode-errors",
    )
    add(
        "truncated_faststart",
        "truncated_faststart.mp4",
        "H.264 MP4 with the index at the front, cut at 60% (interrupted download)",
        lambda p: truncate(p.parent / "faststart.mp4", p, 0.6),
        source="mp4_faststart",
        damage="cut at 60%",
        expect="partial",
    )
    add(
        "truncated_mkv",
        "truncated.mkv",
        "H.264 Matroska cut at 60%",
        lambda p: truncate(p.parent / "cues.mkv", p, 0.6),
        source="mkv_cues",
        damage="cut at 60%",
        expect="partial",
    )
    add(
        "truncated_ts",
        "truncated.ts",
        "H.264 MPEG-TS cut at 60% (interrupted recording)",
        lambda p: truncate(p.parent / "broadcast.ts", p, 0.6),
        source="ts_h264",
        damage="cut at 60%",
        expect="partial",
    )
    add(
        "damaged_cues",
        "damaged_cues.mkv",
        "H.264 Matroska whose Cues (seek index) are overwritten",
        lambda p: damage_cues(p.parent / "cues.mkv", p),
        source="mkv_cues",
        damage="Cues overwritten",
        expect="exact",
    )
    add(
        "truncated_moov_end",
        "truncated_moov_end.mp4",
        "H.264 MP4 with the index at the end, cut at 60%",
        lambda p: truncate(p.parent / "bpyramid.mp4", p, 0.6),
        source="mp4_bpyramid",
        damage="cut at 60%, index lost",
        expect="unusable",
        reason="moov atom not found",
    )
    return c


ZOO: dict[str, ZooCase] = {case.name: case for case in _cases()}
HEALTHY: tuple[str, ...] = tuple(n for n, c in ZOO.items() if not c.damage)
DAMAGED: tuple[str, ...] = tuple(n for n, c in ZOO.items() if c.damage)


def build_case(folder: Path, name: str) -> Path:
    """The file of one case in ``folder`` (built on first use, with its source first)."""
    case = ZOO[name]
    path = folder / case.filename
    if not path.exists():
        if case.source:
            build_case(folder, case.source)
        tmp = folder / ("partial-" + case.filename)
        tmp.unlink(missing_ok=True)
        if case.source:
            # Damage builders read the source next to their output: write under the final name's folder.
            case.build(path)
        else:
            case.build(tmp)
            tmp.rename(path)
    return path


def build_zoo(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: build_case(folder, name) for name in ZOO}


class Zoo:
    """Zoo files made on first use into one folder per session, and their sequential decodes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._refs: dict[str, dict[int, np.ndarray]] = {}

    def path(self, name: str) -> Path:
        if name.startswith("shared:"):
            from media import shared_media

            return shared_media(name.removeprefix("shared:"))
        return build_case(self.root, name)

    def reference(self, name: str) -> dict[int, np.ndarray]:
        """pts -> rgb24 frame of a plain sequential decode (of the undamaged source, for a damaged case)."""
        import av

        import vidloader as vl

        source = ZOO[name].source if name in ZOO and ZOO[name].source else name
        if source not in self._refs:
            info = vl.probe_video(self.path(source))
            with av.open(str(self.path(source))) as c:
                self._refs[source] = {
                    int(f.pts): f.to_ndarray(format="rgb24") for f in c.decode(c.streams[info.stream_index])
                }
        return self._refs[source]


@pytest.fixture(scope="session", name="zoo")
def zoo_fixture(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return Zoo(tmp_path_factory.mktemp("zoo"))
