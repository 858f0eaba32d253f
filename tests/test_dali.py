"""DALI backend: the same pipeline code CI can run (DALI's CPU decoder on VP8/VP9/MJPEG), plus GPU tests.

Colour bound: DALI converts YUV to RGB with its own kernels, so frames are compared with PyAV's within
mean |diff| <= 4 and PSNR >= 35 dB per frame; indices and timestamps must match exactly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import vidloader as vl
from vidloader.backends import DALIBackend, dali_missing, remux_segment
from vidloader.dataset import textured_frames, write_video

pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")

MEAN_ABS_BOUND = 4.0
PSNR_BOUND = 35.0


def reference_frames(path: str | Path) -> tuple[list[np.ndarray], list[float]]:
    import av

    with av.open(str(path)) as c:
        frames, ts = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            ts.append(float(f.pts * f.time_base))
    return frames, ts


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, what
    mad = float(np.abs(got.astype(np.int16) - want.astype(np.int16)).mean())
    assert mad <= MEAN_ABS_BOUND, f"{what}: mean abs diff {mad:.2f}"
    assert psnr(got, want) >= PSNR_BOUND, f"{what}: PSNR {psnr(got, want):.1f} dB"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dali_media")
    frames = textured_frames(75, 72, 96)
    pts = np.cumsum(np.random.default_rng(3).integers(20, 60, 75))
    out = {
        "vp9": write_video(root / "c/vp9.webm", frames, codec="libvpx-vp9", gop=25),
        "vp8": write_video(root / "c/vp8.webm", frames, codec="libvpx", gop=25),
        "mjpeg": write_video(root / "c/mjpeg.mkv", frames, codec="mjpeg", pix_fmt="yuvj420p"),
        "vfr": write_video(
            root / "c/vfr.webm",
            frames,
            codec="libvpx-vp9",
            gop=25,
            pts=list(pts - pts[0]),
            time_base=Fraction(1, 1000),
        ),
        "h264": write_video(root / "d/h264.mp4", frames, codec="libx264", gop=25, bframes=2),
    }
    return out


@pytest.mark.parametrize("name", ["vp9", "vp8", "mjpeg", "vfr"])
def test_cpu_pipeline_matches_pyav(media: dict[str, Path], name: str) -> None:
    info = vl.probe_video(media[name])
    ref, ts = reference_frames(media[name])
    backend = DALIBackend(device="cpu")
    # Straddling keyframes (24|25), the end, padding repeats and a reversed order.
    clips = [[0, 2, 4, 6], [23, 24, 25, 26], [70, 72, 74, 74], [50, 40, 30, 20]]
    out = backend.decode_batch([backend.prepare_clip(info, c) for c in clips])
    assert out.dtype == torch.uint8 and tuple(out.shape) == (4, 4, 72, 96, 3)
    for ci, clip in enumerate(clips):
        prep = backend.prepare_clip(info, clip)
        assert prep.timestamps == tuple(ts[i] for i in clip)
        for j, fi in enumerate(clip):
            assert_close(out[ci, j].numpy(), ref[fi], f"{name} clip {ci} frame {fi}")
        # Frames must also be the right ones, not merely similar: each is closer to its own reference
        # than to its neighbours'.
        for j, fi in enumerate(clip):
            own = np.abs(out[ci, j].numpy().astype(int) - ref[fi]).mean()
            for other in (fi - 1, fi + 1):
                if 0 <= other < len(ref) and not np.array_equal(ref[other], ref[fi]):
                    assert own < np.abs(out[ci, j].numpy().astype(int) - ref[other]).mean()


def _rgb_from_yuv420(frame, chroma: str) -> np.ndarray:
    """BT.601 limited-range YUV 4:2:0 to RGB with chroma upsampled by ``chroma`` ('nearest'|'bilinear')."""
    yuv = torch.from_numpy(frame.to_ndarray(format="yuv420p")).double()
    h, w = frame.height, frame.width
    y = yuv[:h]
    uv = yuv[h:].reshape(2, h // 2, w // 2)
    uv = torch.nn.functional.interpolate(
        uv[None], size=(h, w), mode=chroma, **({"align_corners": False} if chroma == "bilinear" else {})
    )[0]
    y, cb, cr = (y - 16) * 255 / 219, (uv[0] - 128) * 255 / 224, (uv[1] - 128) * 255 / 224
    r, b = y + 1.402 * cr, y + 1.772 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return torch.stack([r, g, b], -1).round().clamp(0, 255).numpy()


def test_colour_difference_is_chroma_upsampling_only(media: dict[str, Path]) -> None:
    """Why DALI and PyAV differ at all: both use BT.601; DALI interpolates the 4:2:0 chroma, PyAV's
    swscale rgb24 takes the nearest sample. Each matches its own model far better than the other's, so
    the colour bound above covers a conversion choice, never a different frame."""
    import av

    info = vl.probe_video(media["vp9"])
    backend = DALIBackend(device="cpu")
    clip = [3, 30, 61]
    got = backend.decode_batch([backend.prepare_clip(info, clip)])[0].numpy().astype(np.float64)
    with av.open(str(media["vp9"])) as c:
        frames = [f for i, f in enumerate(c.decode(video=0)) if i in clip]
    for k, f in enumerate(frames):
        pyav = f.to_ndarray(format="rgb24").astype(np.float64)
        bilinear, nearest = _rgb_from_yuv420(f, "bilinear"), _rgb_from_yuv420(f, "nearest")
        assert np.abs(got[k] - bilinear).mean() < 1.0 < np.abs(got[k] - nearest).mean()
        assert np.abs(pyav - nearest).mean() < 1.5 < np.abs(pyav - bilinear).mean()


def test_segment_reads_only_the_clip_gops(tmp_path: Path) -> None:
    path = write_video(tmp_path / "long.webm", textured_frames(300, 48, 64), codec="libvpx-vp9", gop=30)
    info = vl.probe_video(path)
    data, rel = remux_segment(info, [250, 252, 254])
    assert len(data) < path.stat().st_size / 4, "a clip near the end must not carry the whole file"
    assert rel == [rel[0], rel[0] + 2, rel[0] + 4] and rel[0] == 250 - 240


def test_loader_dali_cpu_equals_pyav_plan_and_frames(media: dict[str, Path], tmp_path: Path) -> None:
    ds = vl.VideoDataset.from_paths(
        [media["vp9"], media["vp8"], media["mjpeg"], media["h264"]],
        labels=[0, 1, 2, 3],
        cache_dir=tmp_path / "cache",
    )
    kw = dict(batch_size=2, frames_per_clip=5, frame_stride=3, seed=4, output_layout="NTHWC", num_workers=2)
    a = list(vl.VideoLoader(ds, backend="pyav", **kw))
    dali_loader = vl.VideoLoader(ds, backend="dali", **kw)
    b = list(dali_loader)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.frame_index, y.frame_index)
        assert torch.equal(x.timestamp, y.timestamp)
        assert torch.equal(x.video_index, y.video_index)
        for row in range(len(x)):
            for t in range(x.video.shape[1]):
                assert_close(y.video[row, t].numpy(), x.video[row, t].numpy(), f"row {row} t {t}")
            if ds[int(x.video_index[row])].codec == "h264":
                # Fallback rows come from PyAV itself: exact.
                assert torch.equal(x.video[row], y.video[row])
    stats = dali_loader.stats
    assert stats["backend"] == "dali" and stats["fallbacks"] == 1
    json.dumps(stats)


def test_loader_dali_resume_and_sharding_match_pyav(media: dict[str, Path], tmp_path: Path) -> None:
    paths = [media["vp9"], media["vp8"], media["mjpeg"], media["vfr"]]
    ds = vl.VideoDataset.from_paths(paths, cache_dir=tmp_path / "cache")
    kw = dict(batch_size=1, frames_per_clip=3, frame_stride=2, seed=1, world_size=2, num_workers=1)
    for rank in (0, 1):
        py = [b.frame_index for b in vl.VideoLoader(ds, backend="pyav", rank=rank, **kw)]
        loader = vl.VideoLoader(ds, backend="dali", rank=rank, **kw)
        it = iter(loader)
        first = next(it).frame_index
        state = json.loads(json.dumps(loader.state_dict()))
        fresh = vl.VideoLoader(ds, backend="dali", rank=rank, **kw)
        fresh.load_state_dict(state)
        rest = [b.frame_index for b in fresh]
        got = [first, *rest]
        assert len(got) == len(py) == 2
        assert all(torch.equal(u, v) for u, v in zip(got, py, strict=True))


def corrupt_packet_payload(src: Path, dst: Path, frame: int) -> None:
    """Overwrite the payload of one frame's packet in place: the container stays valid (the file probes
    fine), the frame does not decode."""
    import av

    with av.open(str(src)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    packets.sort(key=lambda p: p.pts)
    target = packets[frame]
    data = bytearray(src.read_bytes())
    start = int(target.pos) + 8  # skip the block header bytes the demuxer needs
    data[start : start + target.size - 8] = b"\xff" * (target.size - 8)
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize("backend", ["dali", "pyav"])
def test_undecodable_frame_policies(media: dict[str, Path], tmp_path: Path, backend: str) -> None:
    bad = tmp_path / "bad.webm"
    corrupt_packet_payload(media["vp9"], bad, frame=10)  # GOP 0..24 decodes on from frame 10's damage
    ds = vl.VideoDataset.from_paths([media["vp9"], bad], cache_dir=tmp_path / "cache")
    kw = dict(
        batch_size=2, frames_per_clip=8, backend=backend, num_workers=0, shuffle=False, sampling="sliding"
    )
    ref, _ = reference_frames(media["vp9"])
    skip = vl.VideoLoader(ds, on_error="skip", max_skip_fraction=1.0, **kw)  # not the skip budget
    rows = [(b.video_index[i], b.frame_index[i], b.video[i]) for b in skip for i in range(len(b))]
    failures = skip.stats["decode_failures"]
    assert failures and all(f["path"] == str(bad) for f in failures)
    # Clips touching frames 10..24 fail; every clip that did come back holds the right frames.
    assert {int(f["frame_index"]) for f in failures} >= {8, 16}
    assert skip.stats["skipped_clips"] == len(failures)
    assert len(rows) == 2 * 9 - len(failures)
    for vi, idx, video in rows:
        for t, fi in enumerate(idx.tolist()):
            assert_close(video[:, t].permute(1, 2, 0).numpy(), ref[fi], f"video {int(vi)} frame {fi}")
    with pytest.raises(vl.DecodeError, match=re.escape(str(bad))):
        list(vl.VideoLoader(ds, on_error="raise", **kw))


def test_dali_in_parent_then_spawned_workers(media: dict[str, Path], tmp_path: Path) -> None:
    """Once DALI's dynamic mode ran, forked children hang; the loader's process workers are spawned."""
    code = textwrap.dedent(
        f"""
        import torch, vidloader as vl
        from vidloader.backends import DALIBackend
        info = vl.probe_video({str(media["vp9"])!r})
        b = DALIBackend(device="cpu")
        b.decode_batch([b.prepare_clip(info, [0, 1])])
        ds = vl.VideoDataset.from_paths([{str(media["h264"])!r}, {str(media["vp9"])!r}], use_cache=False)
        loader = vl.VideoLoader(ds, batch_size=2, frames_per_clip=2, backend="dali", num_workers=2,
                                worker_type="process")
        n = sum(len(x) for x in loader)
        dl = torch.utils.data.DataLoader(list(range(4)), num_workers=1, multiprocessing_context="spawn")
        print("ok", n, sum(int(x) for x in dl))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ok 2 6" in res.stdout


def test_explicit_dali_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.cuda.is_available():
        reason = dali_missing(torch.device("cuda"))
        assert reason is not None and "CUDA" in reason
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # import now fails like an absent package
    reason = dali_missing(torch.device("cpu"))
    assert reason is not None and "pip install" in reason
    from vidloader.backends import resolve_backend

    with pytest.raises(vl.BackendUnavailableError, match="nvidia-dali"):
        resolve_backend("dali", device=torch.device("cpu"))
    assert resolve_backend("auto", device=torch.device("cpu")).name == "pyav"


# ---- GPU (NVDEC) -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpu_media")
    frames = textured_frames(60, 144, 176)
    return {
        "h264": write_video(root / "h264.mp4", frames, codec="libx264", gop=20, bframes=3),
        "hevc": write_video(root / "hevc.mp4", frames, codec="libx265", gop=20),
        "vp9": write_video(root / "vp9.webm", frames, codec="libvpx-vp9", gop=20),
        "av1": write_video(root / "av1.mkv", frames, codec="libsvtav1", gop=20),
    }


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["h264", "hevc", "vp9"])
def test_nvdec_matches_pyav(gpu_media: dict[str, Path], name: str) -> None:
    info = vl.probe_video(gpu_media[name])
    ref, _ = reference_frames(gpu_media[name])
    backend = DALIBackend(device="cuda")
    clips = [[0, 2, 4, 6], [18, 19, 20, 21], [55, 57, 59, 59]]
    out = backend.decode_batch([backend.prepare_clip(info, c) for c in clips])
    assert out.is_cuda
    host = out.cpu().numpy()
    for ci, clip in enumerate(clips):
        for j, fi in enumerate(clip):
            assert_close(host[ci, j], ref[fi], f"{name} clip {ci} frame {fi}")


@pytest.mark.cuda
def test_zero_copy_and_held_batch_survives_prefetch(
    gpu_media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = vl.VideoDataset.from_paths([gpu_media["h264"], gpu_media["vp9"]] * 4, cache_dir=tmp_path / "c")
    pointers: list[int] = []
    real = DALIBackend.decode_batch

    def spy(self, clips, *, resize=None):
        out = real(self, clips, resize=resize)
        pointers.append(out.data_ptr())
        return out

    monkeypatch.setattr(DALIBackend, "decode_batch", spy)
    loader = vl.VideoLoader(
        ds,
        batch_size=2,
        frames_per_clip=4,
        backend="dali",
        device="cuda",
        output_layout="NTHWC",
        prefetch=3,
        num_workers=2,
    )
    it = iter(loader)
    held = next(it)
    assert held.video.data_ptr() in pointers, "DALI output must reach torch without a copy"
    snapshot = held.video.clone()
    for later in it:
        later.video.fill_(0)  # poison every later buffer; the held one must not change
    torch.cuda.synchronize()
    assert torch.equal(held.video, snapshot)


@pytest.mark.cuda
def test_nvdec_fallbacks(gpu_media: dict[str, Path], tmp_path: Path) -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "media" / "h264_10bits.mp4"
    paths = [gpu_media["av1"], gpu_media["h264"]] + ([shared] if shared.exists() else [])
    ds = vl.VideoDataset.from_paths(paths, cache_dir=tmp_path / "c")
    loader = vl.VideoLoader(
        ds, batch_size=1, frames_per_clip=2, backend="dali", device="cuda", resize=(64, 64)
    )
    batches = list(loader)
    assert len(batches) == len(paths)
    cc = torch.cuda.get_device_capability()
    expected = (1 if cc[0] == 9 else 0) + (1 if shared.exists() else 0)
    assert loader.stats["fallbacks"] == expected


def test_environment_has_no_forced_fork() -> None:
    # The loader never asks for fork; spawned workers are the documented mode beside DALI.
    from vidloader.loader._workers import DecodePool

    pool = DecodePool(num_workers=1, worker_type="process")
    fut = pool.submit(os.getpid)
    assert fut.result(timeout=120) != os.getpid()
    assert pool._executor is not None and pool._executor._mp_context.get_start_method() == "spawn"
    pool.close()
