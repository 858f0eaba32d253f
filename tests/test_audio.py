"""Audio with clips: each clip hears exactly its own time span (checked against a tone whose frequency
changes at known times), at a fixed length, under every sampling mode; files without audio, stream choice,
errors and resume."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import vidloader as vl
from media import probe_cache_env, shared_media  # noqa: F401  (fixture)
from vidloader.backends import AudioSpec, decode_audio_span
from vidloader.backends._audio import clip_span
from vidloader.dataset import probe_video, textured_frames, write_video
from vidloader.loader._audio_batch import LOG_MEL_EPS

SRC_RATE = 48000
FPS = 25
SECONDS = 3
AMP = 0.5
# Frequency changes exactly on whole seconds; the AAC encoder smears each change over about one 2048-sample
# window (43 ms at 48 kHz), so the checks leave that much out on either side.
GUARD = 0.05


def tone_freq(t: np.ndarray) -> np.ndarray:
    """440 Hz in [0, 1) s, 880 Hz in [1, 2), 1320 Hz in [2, 3)."""
    return 440.0 * (1 + np.clip(np.floor(t), 0, 2))


def tone(t: np.ndarray) -> np.ndarray:
    # Whole seconds times whole hertz: the phase is 0 at every change, so the wave stays continuous.
    return AMP * np.sin(2 * np.pi * tone_freq(t) * t)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio")
    frames = textured_frames(FPS * SECONDS, 48, 64)
    t = np.arange(SECONDS * SRC_RATE) / SRC_RATE
    audio = tone(t)[None].astype(np.float32)
    # VFR: irregular 20..59 ms gaps, audio on the same clock.
    gaps = np.random.default_rng(5).integers(20, 60, 70)
    vfr_pts = [int(v) for v in np.cumsum(gaps) - gaps[0]]
    return {
        "tone": write_video(root / "tone.mp4", frames, fps=FPS, audio=audio, audio_rate=SRC_RATE),
        "vfr": write_video(
            root / "tone_vfr.mp4",
            frames[:70],
            audio=audio,
            audio_rate=SRC_RATE,
            pts=vfr_pts,
            time_base=Fraction(1, 1000),
        ),
        "silent_file": write_video(root / "no_audio.mp4", frames[:50], fps=FPS),
        "offset": _write_offset_audio(root / "offset.mp4", frames[:50]),
    }


def _write_offset_audio(path: Path, frames: np.ndarray) -> Path:
    """Video from 0 s, a 440 Hz tone whose stream starts at 0.5 s (write_video cannot offset audio)."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=SRC_RATE)
        aus.layout = "mono"
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        x = (AMP * np.sin(2 * np.pi * 440 * np.arange(SRC_RATE) / SRC_RATE)).astype(np.float32)[None]
        for pos in range(0, x.shape[1], 1024):
            chunk = np.ascontiguousarray(np.pad(x[:, pos : pos + 1024], ((0, 0), (0, 1024))))[:, :1024]
            fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = SRC_RATE, pos + SRC_RATE // 2, Fraction(1, SRC_RATE)
            for p in aus.encode(fr):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)
    return path


def _dataset(*paths: Path) -> vl.VideoDataset:
    return vl.VideoDataset.from_paths(list(paths), labels=list(range(len(paths))))


def _loader(ds: vl.VideoDataset, spec: AudioSpec | None = None, **kw) -> vl.VideoLoader:
    kw.setdefault("batch_size", 4)
    kw.setdefault("frames_per_clip", 16)
    kw.setdefault("num_workers", 2)
    return vl.VideoLoader(ds, audio=spec or AudioSpec(), **kw)


def _check_hears_span(wave: np.ndarray, t0: float, real: float, rate: int) -> None:
    """``wave`` starts at t0: the tone of each second it covers (FFT peak, and phase: the waveform lines
    up with the source to well under a sample), then zeros after ``real`` seconds."""
    t = t0 + np.arange(wave.shape[0]) / rate
    n_real = round(real * rate)
    assert np.abs(wave[n_real + 8 :]).max(initial=0) < 1e-3, "audio past the clip's span must be zero padding"
    for sec in range(SECONDS):
        keep = (t >= sec + GUARD) & (t < sec + 1 - GUARD) & (t < t0 + real - GUARD)
        if keep.sum() < 0.08 * rate:
            continue
        piece = wave[keep]
        spec = np.abs(np.fft.rfft(piece * np.hanning(len(piece)), n=8 * rate))
        peak = np.argmax(spec) * rate / (8 * rate)
        want = 440.0 * (sec + 1)
        assert abs(peak - want) < 15, f"clip at {t0:.3f}s: {peak:.1f} Hz in second {sec}, want {want}"
        corr = np.corrcoef(piece, tone(t[keep]))[0, 1]
        assert corr > 0.98, f"clip at {t0:.3f}s is out of step with its span (correlation {corr:.3f})"


@pytest.mark.parametrize("sampling", ["random", "sliding"])
def test_each_clip_hears_its_own_span(files: dict[str, Path], sampling: str) -> None:
    per_video = {"clips_per_video": 6} if sampling == "random" else {}  # sliding gives every window
    loader = _loader(_dataset(files["tone"]), sampling=sampling, seed=3, **per_video)
    samples = round(16 / FPS * 16000)
    rows = 0
    for batch in loader:
        assert batch.audio is not None and batch.audio_mask is not None
        assert batch.audio.shape == (len(batch), 1, samples) and batch.audio.dtype == torch.float32
        assert batch.audio_mask.all()
        for i in range(len(batch)):
            t0 = float(batch.timestamp[i, 0])
            _check_hears_span(batch.audio[i, 0].numpy(), t0, 16 / FPS, 16000)
            rows += 1
    assert rows >= 4
    assert loader.stats["clips_without_audio"] == 0


def test_stride_target_fps_and_vfr_stay_aligned(files: dict[str, Path]) -> None:
    # Stride 3: the nominal length is 8 x 3 frame durations, but the span ends with the last sampled frame,
    # (8 - 1) x 3 + 1 = 22 durations after the first; the rest is padding.
    loader = _loader(_dataset(files["tone"]), frames_per_clip=8, frame_stride=3, clips_per_video=4)
    for batch in loader:
        assert batch.audio is not None and batch.audio.shape[-1] == round(8 * 3 / FPS * 16000)
        for i in range(len(batch)):
            _check_hears_span(batch.audio[i, 0].numpy(), float(batch.timestamp[i, 0]), 22 / FPS, 16000)
    # target_fps 10: 6 frames about 0.1 s apart (each the last source frame at or before its time); the span
    # ends one source frame (1/25 s) after the last, about 0.54 s inside a nominal 0.6 s.
    loader = _loader(_dataset(files["tone"]), frames_per_clip=6, target_fps=10, clips_per_video=4)
    for batch in loader:
        assert batch.audio is not None and batch.audio.shape[-1] == 9600
        for i in range(len(batch)):
            ts = batch.timestamp[i]
            real = float(ts[-1] - ts[0]) + 1 / FPS
            assert 0.5 < real < 0.6
            _check_hears_span(batch.audio[i, 0].numpy(), float(ts[0]), real, 16000)
    # VFR: the span runs to the next frame's pts, whatever the gaps.
    ds = _dataset(files["vfr"])
    info = ds[0]
    loader = _loader(ds, frames_per_clip=12, clips_per_video=4, sampling="random")
    for batch in loader:
        assert batch.audio is not None
        for i in range(len(batch)):
            t0, t1 = clip_span(info, batch.frame_index[i].tolist())
            assert float(t0) == pytest.approx(float(batch.timestamp[i, 0]))
            real = min(float(t1 - t0), batch.audio.shape[-1] / 16000)
            _check_hears_span(batch.audio[i, 0].numpy(), float(t0), real, 16000)


def test_waveform_and_log_mel_shapes_and_channels(files: dict[str, Path]) -> None:
    ds = _dataset(files["tone"], files["silent_file"])
    samples = round(16 / FPS * 16000)
    spec = AudioSpec(features="log_mel", n_mels=40, hop_length=160, channels=2)
    batch = next(iter(_loader(ds, spec, batch_size=2, shuffle=False, sampling="uniform")))
    assert batch.audio is not None and batch.audio_mask is not None
    assert batch.audio.shape == (2, 2, 40, samples // 160 + 1) and batch.audio.dtype == torch.float32
    assert batch.audio_mask.tolist() == [True, False]
    assert torch.isfinite(batch.audio).all()
    # Silence is log(eps); real audio is far above it.
    assert torch.allclose(batch.audio[1], torch.full_like(batch.audio[1], float(np.log(LOG_MEL_EPS))))
    assert batch.audio[0].max() > 0
    # Stereo from a mono source repeats the channel.
    batch = next(iter(_loader(ds, AudioSpec(channels=2), batch_size=2, shuffle=False, sampling="uniform")))
    assert batch.audio is not None and batch.audio.shape == (2, 2, samples)
    assert torch.equal(batch.audio[0, 0], batch.audio[0, 1]) and batch.audio[0].abs().max() > 0.3


def test_video_without_audio_gives_zeros_and_is_counted(files: dict[str, Path]) -> None:
    ds = _dataset(files["tone"], files["silent_file"])
    loader = _loader(ds, clips_per_video=3, batch_size=3)
    silent = 0
    for batch in loader:
        assert batch.audio is not None and batch.audio_mask is not None
        for i in range(len(batch)):
            has = int(batch.video_index[i]) == 0
            assert bool(batch.audio_mask[i]) is has
            assert (batch.audio[i].abs().max() > 0.1) if has else not batch.audio[i].any()
            silent += not has
    assert silent == 3 and loader.stats["clips_without_audio"] == 3


def test_required_audio_raises_or_skips(files: dict[str, Path]) -> None:
    ds = _dataset(files["tone"], files["silent_file"])
    spec = AudioSpec(required=True)
    with pytest.raises(vl.DecodeError, match=r"no_audio\.mp4.*no audio stream.*required=True"):
        list(_loader(ds, spec, clips_per_video=2, on_error="raise"))
    loader = _loader(ds, spec, clips_per_video=2, on_error="skip", max_skip_fraction=1.0)  # 2 of 4 clips
    got = [int(v) for b in loader for v in b.video_index]
    assert got == [0, 0]
    assert loader.stats["skipped_clips"] == 2 and loader.stats["clips_without_audio"] == 0


def test_audio_stream_starting_late_keeps_its_offset(files: dict[str, Path]) -> None:
    info = probe_video(files["offset"])
    span = decode_audio_span(info, 0.2, 0.9, AudioSpec())
    assert span.present and span.rate == SRC_RATE and span.samples.shape == (1, round(0.7 * SRC_RATE))
    onset = 0.2 + np.argmax(np.abs(span.samples[0]) > 0.05) / SRC_RATE
    # The tone's stream starts at 0.5 s on the container clock (AAC priming moves it by < 1 ms).
    assert onset == pytest.approx(0.5, abs=0.002)


def test_real_file_streams(files: dict[str, Path]) -> None:
    path = shared_media("nasa_13013.mp4")
    ds = vl.VideoDataset.from_paths([path])
    info = ds[0]
    assert info.stream_index == 3 and info.audio_streams == (1, 4)
    for stream, src_rate in ((1, 8000), (4, 16000), (None, 16000)):
        spec = AudioSpec(stream=stream, sample_rate=22050)
        span = decode_audio_span(info, 5.0, 6.0, spec)
        assert span.present and span.rate == src_rate and span.samples.shape == (1, src_rate)
        batch = next(iter(_loader(ds, spec, batch_size=2, clips_per_video=2)))
        assert batch.audio is not None and batch.audio_mask is not None and batch.audio_mask.all()
        assert batch.audio.shape == (2, 1, round(16 / info.fps * 22050))
        assert batch.audio.abs().amax(dim=-1).min() > 0.01, f"stream {stream} decoded silence"
    with pytest.raises(vl.DecodeError, match=r"stream=0.*video stream.*audio streams are \[1, 4\]"):
        list(_loader(ds, AudioSpec(stream=0), batch_size=2))


def test_state_dict_round_trip_with_audio(files: dict[str, Path]) -> None:
    ds = _dataset(files["tone"], files["silent_file"])
    kw: dict[str, Any] = dict(batch_size=2, clips_per_video=3, seed=7)
    full = [(b.video_index.clone(), b.audio) for b in _loader(ds, **kw)]
    first = _loader(ds, **kw)
    it = iter(first)
    next(it)
    state = first.state_dict()
    resumed = _loader(ds, **kw)
    resumed.load_state_dict(state)
    rest = [(b.video_index, b.audio) for b in resumed]
    assert len(rest) == len(full) - 1
    for (vi_a, au_a), (vi_b, au_b) in zip(full[1:], rest, strict=True):
        assert torch.equal(vi_a, vi_b) and au_a is not None and au_b is not None and torch.equal(au_a, au_b)


def test_dali_prepare_task_carries_audio(files: dict[str, Path]) -> None:
    """The DALI path decodes audio on the CPU in its prepare task (no GPU needed to check that)."""
    from vidloader.backends._tasks import WithAudio, prepare_task

    class StubDALI:
        def prepare_clip(self, info, frame_indices, *, resize=None):
            return "prepared"

    info = probe_video(files["tone"])
    out = prepare_task(StubDALI(), info, [25, 26], None, AudioSpec())
    assert isinstance(out, WithAudio) and out.frames == "prepared"
    assert out.audio.present and out.audio.samples.shape == (1, round(0.08 * SRC_RATE))
    assert prepare_task(StubDALI(), info, [25], None) == "prepared"


def test_batched_resample_matches_per_clip_resample() -> None:
    """Clips of one source rate share one resampling call; each must come out as if resampled alone with
    torchaudio.functional.resample, then cut or zero-padded to the loader's length."""
    import torchaudio.functional as AF

    from vidloader.backends import AudioSpan
    from vidloader.loader import AudioBatcher

    rng = np.random.default_rng(0)
    batcher = AudioBatcher(AudioSpec(channels=2), 4000)
    shapes = [(12000, 48000), (9000, 48000), (5, 16000), (3000, 8000), (4100, 16000), (50, 44100)]
    spans = [AudioSpan(rng.standard_normal((2, n)).astype(np.float32), r, True) for n, r in shapes]
    spans[2] = AudioSpan(np.zeros((2, 5), np.float32), 16000, False)
    out = batcher.waveforms(spans, torch.device("cpu"))
    assert out.shape == (6, 2, 4000)
    for got, span in zip(out, spans, strict=True):
        want = torch.zeros(2, 4000)
        if span.present:
            x = AF.resample(torch.from_numpy(span.samples), span.rate, 16000)
            want[:, : min(4000, x.shape[1])] = x[:, :4000]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_audio_on_the_loader_device(files: dict[str, Path], device: str) -> None:
    ds = _dataset(files["tone"], files["silent_file"])
    for features in ("waveform", "log_mel"):
        spec = AudioSpec(features=features, sample_rate=8000)
        batch = next(iter(_loader(ds, spec, batch_size=2, shuffle=False, sampling="uniform", device=device)))
        assert batch.audio is not None and batch.audio_mask is not None
        assert batch.audio.device.type == device and batch.audio_mask.device.type == device
        assert batch.audio.dtype == torch.float32 and batch.audio_mask.tolist() == [True, False]


def test_audio_span_validation() -> None:
    from vidloader.backends import AudioSpan

    with pytest.raises(ValueError, match="float32"):
        AudioSpan(np.zeros((1, 4)), 16000, True)
    with pytest.raises(ValueError, match="rate must be > 0"):
        AudioSpan(np.zeros((1, 4), np.float32), 0, True)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(features="mfcc"), r"features='mfcc'.*'waveform', 'log_mel'"),
        (dict(channels=3), r"channels=3.*1, 2"),
        (dict(sample_rate=0), r"sample_rate must be >= 1, got 0"),
        (dict(n_mels=2.5), r"n_mels must be an int, got 2.5"),
        (dict(stream=-1), r"stream must be >= 0"),
        (dict(required="yes"), r"required must be True or False"),
    ],
)
def test_audio_spec_validation(kw: dict, match: str) -> None:
    with pytest.raises(vl.ConfigError, match=match):
        AudioSpec(**kw)


def test_loader_rejects_a_non_spec(files: dict[str, Path]) -> None:
    with pytest.raises(vl.ConfigError, match=r"audio must be a vidloader\.AudioSpec"):
        vl.VideoLoader(_dataset(files["tone"]), batch_size=1, frames_per_clip=4, audio={"sample_rate": 16000})
