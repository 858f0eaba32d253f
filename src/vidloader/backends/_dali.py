"""DALI backend: clips decoded by NVIDIA DALI (NVDEC on the GPU; DALI's CPU decoder on device='cpu').

Mechanism, chosen by measurement and for ownership:
- Our sampler picks the frames. A CPU worker cuts the clip's GOPs out of the file *without decoding*
  (PyAV stream copy of the packets from the keyframe before the clip to the clip's last frame, into an
  in-memory Matroska segment), so a clip from a 10-minute file costs reading one or two GOPs, never the
  whole file, and DALI's per-sample index build scans only that segment.
- The batch of segments goes to ``decoders.video(frames=...)`` in DALI's dynamic mode, which returns
  tensors that own their memory: handing them to torch through DLPack is zero-copy, and the next batch can
  never overwrite a batch the training loop still holds (a pipeline's recycled output buffers would force a
  copy). Dynamic mode breaks forked children once it has run, so the loader's workers are threads or
  spawned processes, never forks.
- Files DALI cannot decode here (codec or pixel format, see ``unsupported_reason``) fall back to the PyAV
  backend per file: their tasks say so (``DecodeTask.fallback``), and the loader counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._errors import DecodeError
from ..dataset import VideoInfo, ffmpeg_reason
from ._base import (
    BatchFrames,
    ClipRequest,
    DecodeSettings,
    DecodeTask,
    ResizeArg,
    group_by_video,
    output_size,
)
from ._pyav import PyAVBackend
from ._remux import PreparedClip, remux_segment, unsupported_reason
from ._tasks import decode_task, prepare_task

_OOM_MARKERS = ("out of memory", "cudaerrormemoryallocation", "allocation failed", "cuda_error_out_of_memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a decode error is the device (or host) running out of memory rather than a bad clip.

    Args:
        exc: the exception a decoder raised.

    Returns:
        True for ``torch.cuda.OutOfMemoryError``, ``MemoryError`` and DALI's allocation failures (which
        DALI reports as a plain ``RuntimeError`` naming the failed allocation).
    """
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return any(m in text for m in _OOM_MARKERS)


def decode_isolating(
    backend: DALIBackend,
    clips: list[PreparedClip],
    resize: ResizeArg,
    fail: Callable[[int, DecodeError], None],
) -> tuple[list[int], torch.Tensor | None]:
    """Decode ``clips`` in one DALI call; if that fails, split the batch in halves (recursively) to find
    the clips that fail alone, keeping every half that decodes.

    A healthy batch costs exactly one ``decode_batch`` call; one bad clip among B costs about
    ``1 + 2 log2 B``.

    Args:
        backend: the backend whose ``decode_batch`` runs.
        clips: the prepared clips, all of one output size.
        resize: the loader's resize.
        fail: told of each clip that fails alone (its position, the error); it may raise.

    Returns:
        The positions that decoded, in order, and their frames (None when none did).
    """

    def run(lo: int, hi: int) -> list[tuple[range, torch.Tensor]]:
        try:
            return [(range(lo, hi), backend.decode_batch(clips[lo:hi], resize=resize))]
        except DecodeError as exc:
            if hi - lo == 1:
                fail(lo, DecodeError(clips[lo].path, exc.reason))
                return []
            mid = (lo + hi) // 2
            return run(lo, mid) + run(mid, hi)

    parts = run(0, len(clips))
    kept = [i for r, _ in parts for i in r]
    if not parts:
        return kept, None
    return kept, parts[0][1] if len(parts) == 1 else torch.cat([t for _, t in parts])


class DALIBackend:
    """Decodes batches of clips with DALI on ``device`` (a CUDA device: NVDEC; 'cpu': DALI's CPU decoder).

    ``prepare_clip`` runs in the loader's CPU workers (``tasks``); ``decode_batch`` runs once per batch and
    frame size on the loader's producing thread, on torch's current CUDA stream (``finish_batch``).

    Args:
        device: where frames are decoded and delivered.
    """

    name = "dali"
    writes_host_rows = False  # frames are born on the device (or in DALI's own CPU memory)

    def __init__(self, *, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.compute_capability = (
            torch.cuda.get_device_capability(self.device) if self.device.type == "cuda" else None
        )
        self._fallback = PyAVBackend()  # files DALI cannot decode here

    def __repr__(self) -> str:
        return f"DALIBackend(device={str(self.device)!r})"

    def __getstate__(self) -> dict:
        # Spawned workers only run prepare_clip; they need no CUDA state.
        return {"device": str(self.device), "compute_capability": self.compute_capability}

    def __setstate__(self, state: dict) -> None:
        self.device = torch.device(state["device"])
        self.compute_capability = state["compute_capability"]
        self._fallback = PyAVBackend()

    def tasks(
        self, requests: Sequence[ClipRequest], settings: DecodeSettings, *, shared: bool
    ) -> list[DecodeTask]:
        """Per clip: a task that cuts its packets (``prepare_clip``), or, for a file DALI cannot decode here
        (or with ``apply_rotation``, which DALI does not do), a PyAV decode marked as a fallback.

        Args:
            requests: the batch's clips (their ``out`` rows are not used: see ``writes_host_rows``).
            settings: resize, rotation and audio.
            shared: unused (DALI decodes the whole batch in one call anyway).

        Returns:
            One task per clip, videos in order of first use.
        """
        out = []
        for m in (m for positions in group_by_video(requests) for m in positions):
            r, s = requests[m], settings
            reason = "apply_rotation=True" if s.apply_rotation else self.unsupported_reason(r.info)
            if reason is None:
                out.append(DecodeTask((m,), prepare_task, (self, r.info, r.frame_indices, s.resize, s.audio)))
                continue
            args = (self._fallback, r.info, r.frame_indices, s.resize, s.apply_rotation, None, s.audio)
            out.append(DecodeTask((m,), decode_task, args, fallback=reason))
        return out

    def finish_batch(
        self, results: Sequence[Any], settings: DecodeSettings, fail: Callable[[int, DecodeError], None]
    ) -> BatchFrames:
        """Decode the batch's prepared clips: one DALI call per output size (a batch of mixed sizes makes one
        tensor per size), bisected on failure (``decode_isolating``); fallback clips come decoded already.

        Args:
            results: PreparedClips, and DecodedClips of fallback files.
            settings: the loader's resize.
            fail: told of each clip that fails alone (it may raise).

        Returns:
            The clips that decoded; ``stacked`` is DALI's own output when it holds all of them.
        """
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(results):
            if isinstance(r, PreparedClip):
                groups.setdefault(r.shape, []).append(i)
        decoded: dict[int, torch.Tensor] = {}
        failed: set[int] = set()
        stacked = None
        for rows in groups.values():

            def failing(k: int, err: DecodeError, rows: list[int] = rows) -> None:
                failed.add(rows[k])
                fail(rows[k], err)

            kept, video = decode_isolating(self, [results[i] for i in rows], settings.resize, failing)
            if video is not None:
                decoded.update((rows[k], video[j]) for j, k in enumerate(kept))
                stacked = video if len(groups) == 1 and len(rows) == len(results) else None
        kept = [i for i in range(len(results)) if i not in failed]
        frames = [decoded[i] if i in decoded else torch.from_numpy(results[i].frames) for i in kept]
        return BatchFrames(kept, frames, stacked)

    def unsupported_reason(self, info: VideoInfo) -> str | None:
        return unsupported_reason(
            info, device_type=self.device.type, compute_capability=self.compute_capability
        )

    def prepare_clip(
        self,
        info: VideoInfo,
        frame_indices: Sequence[int],
        *,
        resize: ResizeArg = None,
        apply_rotation: bool = False,
    ) -> PreparedClip:
        import av

        try:
            data, rel = remux_segment(info, frame_indices)
        except av.error.FFmpegError as exc:
            raise DecodeError(
                info.path, f"cannot cut the clip's packets ({type(exc).__name__}: {ffmpeg_reason(exc)})"
            ) from exc
        h, w = output_size(info, resize, apply_rotation=False)
        pts = tuple(info.frame_pts[i] for i in frame_indices)
        tb = info.time_base
        return PreparedClip(
            path=info.path,
            encoded=np.frombuffer(data, dtype=np.uint8),
            frames=np.asarray(rel, dtype=np.int32),
            pts=pts,
            timestamps=tuple(float(p * tb) for p in pts),
            height=h,
            width=w,
        )

    def decode_batch(self, clips: Sequence[PreparedClip], *, resize: ResizeArg = None) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] on this backend's device, owned by torch (zero-copy from DALI)."""
        import nvidia.dali.experimental.dynamic as ndd
        from nvidia.dali.types import DALIInterpType

        on_gpu = self.device.type == "cuda"
        if on_gpu:
            # Work goes on torch's current stream, so torch ops queued after it see finished frames.
            ndd.set_current_stream(torch.cuda.current_stream(self.device))
        enc = ndd.as_batch([c.encoded for c in clips])
        frames = ndd.as_batch([c.frames for c in clips])
        try:
            video = ndd.decoders.video(enc, frames=frames, device="gpu" if on_gpu else "cpu")
            if resize is not None:
                h, w = clips[0].height, clips[0].width
                video = ndd.resize(
                    video, size=[h, w], interp_type=DALIInterpType.INTERP_LINEAR, antialias=False
                )
            out = video.torch(copy=False)
        except RuntimeError as exc:  # DALI reports FFmpeg/NVDEC failures as RuntimeError
            if is_out_of_memory(exc):
                raise  # not a property of the clips: under on_error="skip" it must not drop them
            paths = ", ".join(sorted({c.path for c in clips}))
            raise DecodeError(
                paths, f"DALI failed to decode the batch ({type(exc).__name__}: {exc})"
            ) from exc
        if out.device.type != self.device.type:
            out = out.to(self.device)
        return out
