"""Clip-aligned audio for a batch: each clip's audio span (decoded by the workers at its source rate) ->
fixed-length waveforms or log-mel features on the device (``AudioBatcher``), with the samples per clip
fixed per loader (``audio_samples``) so batches stack."""

from __future__ import annotations

import numpy as np
import torch

from ..backends import AudioSpan, AudioSpec
from ..dataset import VideoDataset
from ..sampling import SamplingConfig

# Added to mel power before the log so silence (zero padding, files without audio) stays finite.
LOG_MEL_EPS = 1e-6


def _lowest_fps(dataset: VideoDataset, *, default: float) -> float:
    """The lowest frame rate of the videos, from the ``fps`` column; a video without a nominal rate (rare)
    is read whole for the mean rate of its timestamps."""
    fps = np.asarray(dataset.columns.array("fps"), np.float64)
    rates = [float(fps[fps > 0].min())] if np.any(fps > 0) else []
    for i in np.flatnonzero(~(fps > 0)).tolist():
        info = dataset[i]
        pts = info.frame_pts
        if len(pts) > 1 and pts[-1] > pts[0]:
            rates.append(float((len(pts) - 1) / ((pts[-1] - pts[0]) * info.time_base)))
    return min(rates, default=default)


def audio_samples(spec: AudioSpec, sampling: SamplingConfig, dataset: VideoDataset) -> int:
    """Samples per clip, fixed per loader so batches stack.

    ``spec.duration`` seconds if set; else with target_fps ``frames_per_clip / target_fps``; else the longest
    nominal clip span over the dataset's videos, ``frames_per_clip x frame_stride / fps`` at each video's
    own fps (the maximum, so it does not depend on the order of the files, and no clip's own span is cut).
    Each clip's audio is its own span; the samples after it are zeros.

    Args:
        spec: the loader's AudioSpec.
        sampling: the loader's clip sampling.
        dataset: the videos (their lowest fps sets the length in stride mode).

    Returns:
        Samples per clip at ``spec.sample_rate`` (at least 1).
    """
    if spec.duration is not None:
        seconds = float(spec.duration)
    elif sampling.target_fps is not None:
        seconds = sampling.frames_per_clip / sampling.target_fps
    else:
        # 25: no video to go by; the number only sizes an empty loader's audio.
        seconds = sampling.frames_per_clip * sampling.frame_stride / _lowest_fps(dataset, default=25.0)
    return max(1, round(seconds * spec.sample_rate))


class AudioBatcher:
    """Turns a batch's AudioSpans into ``audio`` and ``audio_mask`` on a device.

    The clips of one source rate are resampled together, on the device, by one cached kernel: per clip
    ``torchaudio.functional.resample`` costs a kernel build and a conv call each.

    Args:
        spec: what audio to deliver.
        samples: samples per clip at ``spec.sample_rate`` (see ``audio_samples``).
    """

    def __init__(self, spec: AudioSpec, samples: int) -> None:
        self.spec = spec
        self.samples = samples
        self._mel: dict[torch.device, torch.nn.Module] = {}
        self._resample: dict[tuple[int, torch.device], torch.nn.Module] = {}

    def _mel_on(self, device: torch.device) -> torch.nn.Module:
        # Built once per device: its filter bank and window are buffers, made on first use.
        if device not in self._mel:
            import torchaudio

            s = self.spec
            self._mel[device] = torchaudio.transforms.MelSpectrogram(
                sample_rate=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop_length, n_mels=s.n_mels
            ).to(device)
        return self._mel[device]

    def _resampler(self, rate: int, device: torch.device) -> torch.nn.Module:
        # torchaudio.transforms.Resample is functional.resample with its sinc kernel kept (same defaults).
        key = (rate, device)
        if key not in self._resample:
            import torchaudio

            self._resample[key] = torchaudio.transforms.Resample(rate, self.spec.sample_rate).to(device)
        return self._resample[key]

    def waveforms(self, spans: list[AudioSpan], device: torch.device) -> torch.Tensor:
        """float32 [B, channels, samples] at spec.sample_rate on ``device``, each clip cut or zero-padded at
        its end; clips without audio are zeros."""
        out = torch.zeros((len(spans), self.spec.channels, self.samples), dtype=torch.float32, device=device)
        by_rate: dict[int, list[int]] = {}
        for i, span in enumerate(spans):
            if span.present and span.samples.shape[1] > 0:
                by_rate.setdefault(span.rate, []).append(i)
        for rate, rows in by_rate.items():
            lengths = [spans[i].samples.shape[1] for i in rows]
            host = torch.zeros(
                (len(rows), self.spec.channels, max(lengths)),
                dtype=torch.float32,
                pin_memory=device.type == "cuda",
            )
            for k, i in enumerate(rows):
                host[k, :, : lengths[k]] = torch.from_numpy(spans[i].samples)
            x = host.to(device, non_blocking=True)
            if rate != self.spec.sample_rate:
                x = self._resampler(rate, device)(x)
                # Resampled alone, a clip would end at ceil(n x new / old) samples; a shorter clip's filter
                # ringing into the zeros that pad it to the group's length is not its audio.
                lengths = [-(-n * self.spec.sample_rate // rate) for n in lengths]
            n = min(self.samples, x.shape[-1])
            x = x[..., :n]
            if min(lengths) < n:
                ends = torch.tensor(lengths, device=device)
                x = x * (torch.arange(n, device=device) < ends[:, None])[:, None, :]
            out[torch.tensor(rows, device=device), :, :n] = x
        return out

    def __call__(self, spans: list[AudioSpan], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.tensor([s.present for s in spans], dtype=torch.bool)
        # Float32 throughout: a caller's autocast region would run the resampling conv and the mel's FFT in
        # half precision, and log-mel of quiet audio needs the range.
        with torch.autocast(device.type, enabled=False):
            audio = self.waveforms(spans, device)
            if self.spec.features == "log_mel":
                audio = torch.log(self._mel_on(device)(audio) + LOG_MEL_EPS)
        return audio, mask.to(device, non_blocking=True)
