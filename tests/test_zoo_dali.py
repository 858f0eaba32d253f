"""The zoo (tests/zoo.py) through the DALI backend, with what DALI must refuse stated here, per case and device.

Which healthy zoo cases DALI takes is decided by this file's own table: each case's codec and pixel format
(``FACTS``, checked against the files) and what each device's decoder handles (DALI's CPU decoder: VP8, VP9
and MJPEG; NVDEC through DALI: H.264, HEVC, VP8, VP9, AV1, MPEG-4 Part 2 and MJPEG, in 8-bit 4:2:0 except
MJPEG, and no AV1 on Hopper, sm_90). The backend's ``unsupported_reason`` must agree exactly: a refusal for
each case the table refuses, naming the codec or pixel format that decides it, and None for every other case.
Every case expected to work is decoded: on DALI's CPU decoder here, on NVDEC in the tests marked `cuda`.

DALI converts YUV to RGB with its own kernels, so frames are compared with the sequential PyAV decode within
the bound of tests/test_dali.py (mean |diff| <= 4, PSNR >= 35 dB) and must be closer to their own frame than
to any neighbour; indices and timestamps are exact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import DALI_CPU_CODECS, DALIBackend
from zoo import HEALTHY, Zoo, zoo_fixture  # noqa: F401  (fixture `zoo`)

MEAN_ABS_BOUND = 4.0
PSNR_BOUND = 35.0

# (codec, pixel format) of each healthy case, as tests/zoo.py encodes it and probe_video names it.
FACTS: dict[str, tuple[str, str]] = {
    "mp4_bpyramid": ("h264", "yuv420p"),
    "mp4_fragmented": ("h264", "yuv420p"),
    "mp4_faststart": ("h264", "yuv420p"),
    "mov_vfr_rotated": ("h264", "yuv420p"),
    "mkv_cues": ("h264", "yuv420p"),
    "mkv_nocues": ("h264", "yuv420p"),
    "webm_nocues_vp9": ("vp9", "yuv420p"),
    "ts_h264": ("h264", "yuv420p"),
    "m2ts_h264": ("h264", "yuv420p"),
    "ts_mpeg2": ("mpeg2video", "yuv420p"),
    "mpg_mpeg2": ("mpeg2video", "yuv420p"),
    "mpg_mpeg1": ("mpeg1video", "yuv420p"),
    "avi_mpeg4_bframes": ("mpeg4", "yuv420p"),
    "avi_mjpeg": ("mjpeg", "yuvj420p"),
    "flv_h264": ("h264", "yuv420p"),
    "h264_open_gop": ("h264", "yuv420p"),
    "h264_open_gop_ts": ("h264", "yuv420p"),
    "hevc_open_gop": ("hevc", "yuv420p"),
    "hevc_mkv": ("hevc", "yuv420p"),
    "vp8_altref": ("vp8", "yuv420p"),
    "vp9_altref": ("vp9", "yuv420p"),
    "av1": ("av1", "yuv420p"),
    "h264_10bit": ("h264", "yuv420p10le"),
    "hevc_10bit": ("hevc", "yuv420p10le"),
    "h264_422_odd": ("h264", "yuv422p"),
    "h264_444_odd": ("h264", "yuv444p"),
    "vp9_444_odd": ("vp9", "yuv444p"),
    "all_intra": ("h264", "yuv420p"),
    "one_keyframe": ("h264", "yuv420p"),
    "audio_first": ("h264", "yuv420p"),
    "audio_first_mkv": ("h264", "yuv420p"),
}

# What each decoder takes, from DALI's documentation and the GPU runs of this file.
CPU_DECODER_CODECS = {"vp8", "vp9", "mjpeg"}
NVDEC_CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg"}
NVDEC_PIX_FMTS = {"yuv420p", "yuvj420p"}  # 8-bit 4:2:0, DALI's validated RGB path; MJPEG takes any
NVDEC_WITHOUT_AV1 = {9}  # compute capability majors whose NVDEC has no AV1: Hopper (H100, H200)


@dataclass(frozen=True)
class DeviceKind:
    """Where DALI decodes: its CPU decoder (``capability`` None), or NVDEC on a GPU of that capability."""

    name: str
    capability: tuple[int, int] | None = None

    @property
    def device(self) -> str:
        return "cpu" if self.capability is None else "cuda"


def nvdec(capability: tuple[int, int]) -> DeviceKind:
    return DeviceKind(f"nvdec-sm{capability[0]}{capability[1]}", capability)


DALI_CPU = DeviceKind("dali-cpu")
KINDS = (DALI_CPU, nvdec((8, 0)), nvdec((8, 9)), nvdec((9, 0)))  # A100, L4/L40S, H100/H200


@dataclass(frozen=True)
class Refusal:
    """Why DALI must refuse a case on a device: its ``cause`` ("codec" or "pixel format") and which."""

    cause: str
    value: str


def expected_refusal(name: str, kind: DeviceKind) -> Refusal | None:
    """This file's answer for one case on one device kind (None: DALI must decode it)."""
    codec, pix_fmt = FACTS[name]
    if kind.capability is None:
        return None if codec in CPU_DECODER_CODECS else Refusal("codec", codec)
    if codec not in NVDEC_CODECS or (codec == "av1" and kind.capability[0] in NVDEC_WITHOUT_AV1):
        return Refusal("codec", codec)
    if pix_fmt not in NVDEC_PIX_FMTS and codec != "mjpeg":
        return Refusal("pixel format", pix_fmt)
    return None


def agrees(reason: str | None, expected: Refusal | None) -> bool:
    """Whether ``unsupported_reason``'s answer is the expected one: None for None, else a reason that names
    the expected codec or pixel format (and says "pixel format" exactly when that is the cause)."""
    if reason is None or expected is None:
        return reason is expected
    names_cause = ("pixel format" in reason) == (expected.cause == "pixel format")
    return names_cause and expected.value.lower() in reason.lower()


def backend_for(kind: DeviceKind, monkeypatch: pytest.MonkeyPatch) -> DALIBackend:
    """The backend as it is built on ``kind``; a GPU's capability is what torch reports, set here."""
    if kind.capability is not None:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: kind.capability)
    return DALIBackend(device=kind.device)


CPU_DECODES = [n for n in HEALTHY if expected_refusal(n, DALI_CPU) is None]


# ---- the table and unsupported_reason ----------------------------------------------------------------------


def test_facts_cover_the_healthy_zoo() -> None:
    assert set(FACTS) == set(HEALTHY)
    assert CPU_DECODES == ["webm_nocues_vp9", "avi_mjpeg", "vp8_altref", "vp9_altref", "vp9_444_odd"]


@pytest.mark.parametrize("name", HEALTHY)
def test_unsupported_reason_agrees_with_the_table(
    zoo: Zoo, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = vl.probe_video(zoo.path(name))
    assert (info.codec, info.pix_fmt) == FACTS[name], f"{name}: the table's facts are stale"
    answers = {kind.name: backend_for(kind, monkeypatch).unsupported_reason(info) for kind in KINDS}
    wanted = {kind.name: expected_refusal(name, kind) for kind in KINDS}
    wrong = {k: (answers[k], wanted[k]) for k in answers if not agrees(answers[k], wanted[k])}
    assert not wrong, f"{name}: unsupported_reason (got, expected) per device kind: {wrong}"


def test_cpu_decoder_codecs_are_the_backends() -> None:
    # The table's CPU decoder and the backend's (which the loader's fallback and the bench's check read).
    assert set(DALI_CPU_CODECS) == CPU_DECODER_CODECS


# ---- decoding the cases expected to work ----------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def check_zoo_case(zoo: Zoo, name: str, backend: DALIBackend) -> None:
    """Decode clips over the whole file (and out of order) and compare every frame with the reference."""
    info = vl.probe_video(zoo.path(name))
    ref = zoo.reference(name)
    pts = sorted(ref)
    n = info.num_frames
    clips = [list(range(s, min(s + 4, n))) for s in range(0, n - 3, 4)]
    clips += [[n - 1, n // 2, 0, 0], [min(i * 3, n - 1) for i in range(4)]]
    for start in range(0, len(clips), 4):
        batch = clips[start : start + 4]
        prepared = [backend.prepare_clip(info, c) for c in batch]
        out = backend.decode_batch(prepared).cpu().numpy()
        for c, clip, prep in zip(range(len(batch)), batch, prepared, strict=True):
            assert prep.pts == tuple(info.frame_pts[i] for i in clip)
            assert prep.timestamps == tuple(float(info.frame_pts[i] * info.time_base) for i in clip)
            for j, i in enumerate(clip):
                got, want = out[c, j], ref[info.frame_pts[i]]
                assert got.shape == want.shape, f"{name} frame {i}"
                own = float(np.abs(got.astype(np.int16) - want).mean())
                assert own <= MEAN_ABS_BOUND and psnr(got, want) >= PSNR_BOUND, f"{name} frame {i}: {own:.2f}"
                for other in (i - 1, i + 1):
                    if 0 <= other < n:
                        assert own < np.abs(got.astype(np.int16) - ref[pts[other]]).mean(), f"{name} {i}"


@pytest.mark.parametrize("name", CPU_DECODES)
def test_zoo_through_dali_cpu(zoo: Zoo, name: str) -> None:
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    backend = DALIBackend(device="cpu")
    assert backend.unsupported_reason(vl.probe_video(zoo.path(name))) is None
    check_zoo_case(zoo, name, backend)


@pytest.mark.cuda
@pytest.mark.parametrize("name", HEALTHY)
def test_zoo_through_nvdec(zoo: Zoo, name: str) -> None:
    """This GPU's NVDEC: the backend refuses what the table refuses for its compute capability, and decodes
    the rest right."""
    pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")
    kind = nvdec(torch.cuda.get_device_capability())
    backend = DALIBackend(device="cuda")
    expected = expected_refusal(name, kind)
    reason = backend.unsupported_reason(vl.probe_video(zoo.path(name)))
    assert agrees(reason, expected), f"{name} on {kind.name}: got {reason!r}, expected {expected}"
    if expected is None:
        check_zoo_case(zoo, name, backend)
