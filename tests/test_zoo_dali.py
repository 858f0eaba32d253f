"""The zoo (tests/zoo.py) through the DALI backend: DALI's CPU decoder on the codecs it has (VP8/VP9/MJPEG),
NVDEC on a GPU (tests marked `cuda`) for every case it takes. DALI converts YUV to RGB with its own
kernels, so frames are compared with the sequential PyAV decode within the bound of tests/test_dali.py
(mean |diff| <= 4, PSNR >= 35 dB) and must be closer to their own frame than to any neighbour; indices and
timestamps are exact."""

from __future__ import annotations

import numpy as np
import pytest

import vidloader as vl
from media import probe_cache_env  # noqa: F401  (autouse fixture)
from vidloader.backends import DALI_CPU_CODECS, DALIBackend
from zoo import HEALTHY, ZOO, Zoo, zoo_fixture  # noqa: F401  (fixture `zoo`)

pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")

MEAN_ABS_BOUND = 4.0
PSNR_BOUND = 35.0


def _codec(name: str) -> str:
    return {
        "webm_nocues_vp9": "vp9",
        "vp8_altref": "vp8",
        "vp9_altref": "vp9",
        "vp9_444_odd": "vp9",
        "avi_mjpeg": "mjpeg",
    }.get(name, "")


CPU_CASES = [n for n in HEALTHY if _codec(n) in DALI_CPU_CODECS]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def check_zoo_case(zoo: Zoo, name: str, backend: DALIBackend) -> None:
    info = vl.probe_video(zoo.path(name))
    reason = backend.unsupported_reason(info)
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
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


@pytest.mark.parametrize("name", CPU_CASES)
def test_zoo_through_dali_cpu(zoo: Zoo, name: str) -> None:
    check_zoo_case(zoo, name, DALIBackend(device="cpu"))


def test_cpu_cases_cover_every_dali_cpu_codec() -> None:
    assert {_codec(n) for n in CPU_CASES} == set(DALI_CPU_CODECS)
    assert all(n in ZOO for n in CPU_CASES)


@pytest.mark.cuda
@pytest.mark.parametrize("name", HEALTHY)
def test_zoo_through_nvdec(zoo: Zoo, name: str) -> None:
    check_zoo_case(zoo, name, DALIBackend(device="cuda"))
