"""What audio costs the loader: clips/s with and without it.

Workload (defaults): 4 generated 10 s 640x360 H.264 files (25 fps, GOP 50) with a 48 kHz stereo AAC track,
random 16-frame clips with frame_stride 2, batch 8, 2 thread workers, PyAV on the CPU, uint8 frames at the
source size; audio as 16 kHz mono.

    python benchmarks/bench_audio.py
    python benchmarks/bench_audio.py --files 8 --epochs 3 --device cuda --markdown

Rows:
  no audio          VideoLoader without audio= (the baseline)
  waveform          AudioSpec(features="waveform"): decode the span + resample 48 -> 16 kHz + mix to mono
  log_mel           AudioSpec(features="log_mel", n_mels=64, n_fft=400, hop_length=160), mel on --device

One warm-up epoch (not timed), then --epochs timed epochs, the rows taking turns epoch by epoch; clips/s is
the median epoch's.
A second table times the audio steps alone, per clip, on the calling thread: decoding a clip's span (PyAV),
a waveform batch of 8 (resampled together to 16 kHz, length fixed), and a whole log_mel batch of 8 (the same
plus MelSpectrogram + log).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import vidloader as vl
from vidloader.dataset import write_video


def make_files(root: Path, n: int, *, seconds: int = 10, fps: int = 25) -> list[Path]:
    paths = []
    yy, xx = np.mgrid[0:360, 0:640]
    rate = 48000
    for k in range(n):
        path = root / f"bench_{k}.mp4"
        paths.append(path)
        if path.exists():
            continue
        rng = np.random.default_rng(k)
        base = rng.integers(0, 64, size=(360, 640, 3), dtype=np.uint8)
        frames = (
            base + ((xx[..., None] * 2 + yy[..., None] + i * 7 + k * 31) % 192).astype(np.uint8)
            for i in range(seconds * fps)
        )
        t = np.arange(seconds * rate) / rate
        audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)])
        audio += 0.05 * rng.standard_normal(audio.shape)
        write_video(path, frames, fps=fps, gop=50, audio=audio.astype(np.float32), audio_rate=rate)
    return paths


def make_loader(ds: vl.VideoDataset, audio: vl.AudioSpec | None, args: argparse.Namespace) -> vl.VideoLoader:
    return vl.VideoLoader(
        ds,
        batch_size=8,
        frames_per_clip=16,
        frame_stride=2,
        sampling="random",
        clips_per_video=args.clips_per_video,
        num_workers=args.workers,
        device=args.device,
        backend="pyav",
        seed=0,
        audio=audio,
        # Several random clips per file are this workload's way to have enough clips; a training epoch
        # has one per video, so no shared decode passes here (they would shrink the video share of the cost).
        shared_decode=False,
    )


def one_epoch(loader: vl.VideoLoader, epoch: int) -> tuple[float, int]:
    loader.set_epoch(epoch)
    t0 = time.perf_counter()
    n = 0
    for batch in loader:
        n += len(batch)
        if batch.audio is not None:
            # Count the work as done only once the features exist (they may be queued on a GPU).
            batch.audio.sum().item()
    return n / (time.perf_counter() - t0), n


def run_rows(
    ds: vl.VideoDataset, rows: list[tuple[str, vl.AudioSpec | None]], args: argparse.Namespace
) -> list[tuple[str, float, int]]:
    """Median clips/s per row. Rows take turns epoch by epoch, so a machine whose load drifts (shared
    runners) biases no row more than another."""
    loaders = [make_loader(ds, spec, args) for _, spec in rows]
    rates: list[list[float]] = [[] for _ in rows]
    n = 0
    for epoch in range(args.epochs + 1):
        for i, loader in enumerate(loaders):
            rate, n = one_epoch(loader, epoch)
            if epoch > 0:  # the first epoch warms caches and starts workers
                rates[i].append(rate)
    for loader in loaders:
        loader.close()
    return [(name, statistics.median(r), n) for (name, _), r in zip(rows, rates, strict=True)]


def audio_costs(ds: vl.VideoDataset, n: int = 64) -> dict[str, float]:
    """Milliseconds per clip of each audio step alone, on this thread (loader rows hide it behind video).

    Each figure is the median over calls (single clips for the decode, batches of 8 for the rest): one
    stalled call on a shared machine then moves it little."""
    import torch

    from vidloader.backends import AudioSpan, clip_span, decode_audio_span
    from vidloader.loader import AudioBatcher, audio_samples

    def per_clip(fn: Callable[[list[AudioSpan], torch.device], object], batch: list[AudioSpan]) -> float:
        t = time.perf_counter()
        fn(batch, cpu)
        return (time.perf_counter() - t) / len(batch)

    rng = np.random.default_rng(0)
    spec = vl.AudioSpec(features="log_mel")
    sampling = vl.SamplingConfig(frames_per_clip=16, frame_stride=2)
    batcher = AudioBatcher(spec, audio_samples(spec, sampling, ds))
    spans = []
    decode = []
    for _ in range(n):
        info = ds[int(rng.integers(len(ds)))]
        first = int(rng.integers(info.num_frames - 32))
        t0, t1 = clip_span(info, range(first, first + 32, 2))
        t = time.perf_counter()
        spans.append(decode_audio_span(info, t0, t1, spec))
        decode.append(time.perf_counter() - t)
    cpu = torch.device("cpu")
    batcher(spans[:8], cpu)  # builds the resampling kernel and the mel module
    batches = [spans[k : k + 8] for k in range(0, n, 8)]
    wave = [per_clip(batcher.waveforms, b) for b in batches]
    mel = [per_clip(batcher, b) for b in batches]
    return {
        "decode span": statistics.median(decode) * 1e3,
        "waveform batch (resample + fix length)": statistics.median(wave) * 1e3,
        "whole log_mel batch": statistics.median(mel) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--clips-per-video", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--root", type=Path, default=None, help="where the files go (default: a temp dir)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        ds = vl.VideoDataset.from_paths(make_files(root, args.files), use_cache=False)
        rows = [
            ("no audio", None),
            ("waveform", vl.AudioSpec(features="waveform")),
            ("log_mel", vl.AudioSpec(features="log_mel")),
        ]
        results = run_rows(ds, rows, args)
        costs = audio_costs(ds)
    base = results[0][1]
    if args.markdown:
        print("| row | clips/s | vs no audio |")
        print("| --- | ---: | ---: |")
        for name, rate, _ in results:
            print(f"| {name} | {rate:.1f} | {rate / base:.2f}x |")
        print("\n| audio step (CPU, assembly thread) | ms per clip |")
        print("| --- | ---: |")
        for name, ms in costs.items():
            print(f"| {name} | {ms:.2f} |")
    else:
        for name, rate, n in results:
            print(f"{name:10s} {rate:8.1f} clips/s  ({rate / base:.2f}x, {n} clips/epoch)")
        for name, ms in costs.items():
            print(f"{name:40s} {ms:6.2f} ms/clip")


if __name__ == "__main__":
    main()
