"""CPU decode with PyAV: seek to the keyframe before the clip, decode only up to its last frame."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._errors import ConfigError, DecodeError
from .._validate import check_int
from ..dataset import VideoInfo, enable_ffmpeg_log, ffmpeg_reason, forward_ffmpeg_log
from ._base import (
    MAX_KEYFRAME_RETRIES,
    BatchFrames,
    ClipRequest,
    DecodedClip,
    DecodeSettings,
    DecodeTask,
    ResizeArg,
    group_by_video,
    output_size,
)
from ._frame_sink import FrameSink, output_rows
from ._open import open_input
from ._pass_groups import shared_decode_groups
from ._profile import clip_profile
from ._tasks import decode_group_task, decode_task
from ._walk import DecodeWalk, next_attempt, release_decoder

# Codecs whose FFmpeg decoders drop exactly the frames nothing refers to under AVDISCARD_NONREF (checked
# frame by frame against a full sequential decode). libdav1d is not one: AV1's hidden frames shown later
# (show_existing_frame) then never come out, so AV1 and any codec not listed decode every frame.
NONREF_SAFE_CODECS = frozenset({"h264", "hevc", "mpeg4", "vp8", "vp9", "mjpeg"})


def _decoded(info: VideoInfo, frame_indices: Sequence[int], frames: np.ndarray) -> DecodedClip:
    pts = tuple(info.frame_pts[i] for i in frame_indices)
    # int / int rounds correctly, as float(p * time_base) does: the same floats, no Fraction per frame.
    num, den = info.time_base_num, info.time_base_den
    return DecodedClip(frames=frames, pts=pts, timestamps=tuple(p * num / den for p in pts))


class PyAVBackend:
    """Decodes clips on the CPU with FFmpeg (through PyAV) into RGB uint8.

    Frames are found by their presentation timestamp (known exactly from the index), so a seek that lands
    early or late can never shift a clip by a frame: missing frames make it retry from an earlier keyframe
    (at most ``MAX_KEYFRAME_RETRIES`` of them), and failing that raise DecodeError.

    Args:
        threads: FFmpeg threads per decoder (frame and slice threads), 0 for one per core; 1 (the
            default) decodes on the calling thread, since a loader's workers already fill the cores. More
            lower one clip's latency where workers are fewer than cores (the first batch, evaluation).
            Frame threads report decode errors from their own threads, which a per-clip log capture
            cannot see, so with them every decoded frame's error flags are checked instead (see
            DecodeWalk), and the decoder is flushed before it is freed (``release_decoder``).
        skip_nonref: let FFmpeg drop non-reference frames nobody asked for (exact; see NONREF_SAFE_CODECS).

    Raises:
        ConfigError: ``threads`` is not an int >= 0.
    """

    name = "pyav"
    writes_host_rows = True

    def __init__(self, *, threads: int = 1, skip_nonref: bool = True) -> None:
        try:
            self.threads = check_int("threads", threads, minimum=0)
        except ConfigError:
            raise ConfigError(f"threads must be an int >= 0 (0: one per core), got {threads!r}") from None
        # Non-reference frames before the clip's first frame are never needed by anything: letting FFmpeg
        # drop them (AVDISCARD_NONREF) is exact and saves a large share of the seek-to-clip decode.
        self.skip_nonref = skip_nonref
        # Files whose clips needed a GOP of pre-roll (open GOPs): later clips start there at once instead of
        # failing an attempt first. Starting earlier never changes a frame, only costs decode time.
        self._preroll: set[str] = set()

    def __repr__(self) -> str:
        return f"PyAVBackend(threads={self.threads}, skip_nonref={self.skip_nonref})"

    def tasks(
        self, requests: Sequence[ClipRequest], settings: DecodeSettings, *, shared: bool
    ) -> list[DecodeTask]:
        """One task per clip; with ``shared``, one per group of clips of a video that a single decode pass
        serves (``shared_decode_groups``: multiview, sliding, several clips per video), which decodes their
        union from the keyframe once instead of a seek-and-decode per clip.

        Args:
            requests: the batch's clips.
            settings: resize, rotation and audio.
            shared: group clips of one video where that pays.

        Returns:
            The tasks, videos in order of first use.
        """
        out = []
        for positions in group_by_video(requests):
            groups = [[k] for k in range(len(positions))]
            if shared and len(positions) > 1:
                info = requests[positions[0]].info
                groups = shared_decode_groups(info, [requests[i].frame_indices for i in positions])
            out += [self._task(requests, [positions[k] for k in g], settings) for g in groups]
        return out

    def _task(
        self, requests: Sequence[ClipRequest], members: list[int], settings: DecodeSettings
    ) -> DecodeTask:
        r = requests[members[0]]
        s = settings
        if len(members) == 1:
            one = (self, r.info, r.frame_indices, s.resize, s.apply_rotation, r.out, s.audio)
            return DecodeTask((members[0],), decode_task, one)
        clips = [requests[m].frame_indices for m in members]
        outs = [requests[m].out for m in members]
        group = (self, r.info, clips, s.resize, s.apply_rotation, outs, s.audio)
        return DecodeTask(tuple(members), decode_group_task, group)

    def finish_batch(
        self, results: Sequence[Any], settings: DecodeSettings, fail: Callable[[int, DecodeError], None]
    ) -> BatchFrames:
        """The decoded clips' frames as they are (host memory; rows of the loader's batch buffer where the
        tasks wrote there): nothing is left to decode.

        Args:
            results: the batch's DecodedClips.
            settings: unused (the tasks applied them).
            fail: unused (nothing fails here).

        Returns:
            Every position, with its frames.
        """
        return BatchFrames(list(range(len(results))), [torch.from_numpy(r.frames) for r in results])

    def decode_clip(
        self,
        info: VideoInfo,
        frame_indices: Sequence[int],
        *,
        resize: ResizeArg = None,
        apply_rotation: bool = False,
        out: np.ndarray | None = None,
    ) -> DecodedClip:
        """The frames at ``frame_indices``; with ``out`` (a uint8 ``[T, H, W, 3]`` view, possibly strided),
        they are written there and the returned clip's frames are that view."""
        import av

        enable_ffmpeg_log()
        prof = clip_profile()  # VIDLOADER_PROFILE=1: time per stage (see _profile)
        if not info.frame_pts:
            raise DecodeError(info.path, "index has no frame timestamps; re-probe the file")
        n = len(info.frame_pts)
        bad = [i for i in frame_indices if not 0 <= i < n]
        if bad:
            raise DecodeError(info.path, f"frame indices {bad[:4]} out of range [0, {n})")
        wanted = sorted({info.frame_pts[i] for i in frame_indices})
        out_h, out_w = output_size(info, resize, apply_rotation=False)
        if apply_rotation and info.rotation in (90, 270):
            out_h, out_w = output_size(info, resize, apply_rotation=True)[::-1]
        sink = self._sink(info, frame_indices, resize, apply_rotation, out)
        with av.logging.Capture(local=True) as logs:
            try:
                self._decode_wanted(info, wanted, (out_h, out_w), logs, sink, prof)
            finally:
                forward_ffmpeg_log(info.path, logs)
        frames = sink.finish()  # converted frames went straight into their rows as they came
        prof.lap("copy")
        prof.done(len(frame_indices))
        return _decoded(info, frame_indices, frames)

    @staticmethod
    def _sink(
        info: VideoInfo,
        frame_indices: Sequence[int],
        resize: ResizeArg,
        apply_rotation: bool,
        out: np.ndarray | None,
    ) -> FrameSink:
        final = (len(frame_indices), *output_size(info, resize, apply_rotation=apply_rotation), 3)
        rotate = info.rotation // 90 if apply_rotation else 0
        return FrameSink(
            [info.frame_pts[i] for i in frame_indices], output_rows(info, out, final), rotate=rotate
        )

    def decode_clips(
        self,
        info: VideoInfo,
        clips: Sequence[Sequence[int]],
        *,
        resize: ResizeArg = None,
        apply_rotation: bool = False,
        outs: Sequence[np.ndarray | None] | None = None,
    ) -> list[DecodedClip]:
        """Several clips of one video in one decode pass over the union of their frames (see
        ``shared_decode_groups`` for when that pays); the frames are those ``decode_clip`` gives each."""
        union = sorted({i for c in clips for i in c})
        whole = self.decode_clip(info, union, resize=resize, apply_rotation=apply_rotation)
        at = {i: j for j, i in enumerate(union)}
        result = []
        for c, out in zip(clips, outs or [None] * len(clips), strict=True):
            frames = output_rows(info, out, (len(c), *whole.frames.shape[1:]))
            for j, i in enumerate(c):  # straight into the (possibly strided) batch row: one copy
                frames[j] = whole.frames[at[i]]
            result.append(_decoded(info, c, frames))
        return result

    def _threaded_stream(self, container: Any, index: int) -> Any:
        stream = container.streams[index]
        stream.codec_context.thread_count = self.threads
        stream.codec_context.thread_type = "SLICE" if self.threads == 1 else "AUTO"  # AUTO: frame and slice
        return stream

    def _decode_wanted(
        self, info: VideoInfo, wanted: list[int], size, logs, sink: FrameSink, prof: Any
    ) -> dict:
        """Frames (by pts) of ``wanted``, decoded from the keyframe before the first one.

        An attempt that cannot vouch for every wanted frame starts again one keyframe earlier: when the
        seek landed past the keyframe (MPEG-TS and AVI seek by dts, or to any packet), when frames are
        missing, or when the decoder reported an error on the way to the last wanted frame after starting
        at the clip's own keyframe (an open GOP's first frames miss references in the GOP before). Errors
        met before the clip's keyframe are then pre-roll and dropped; one that persists with a GOP of
        pre-roll is damage, and fails this clip with the file, the frame and FFmpeg's reason."""
        import av

        k = max(bisect.bisect_right(info.keyframe_pts, wanted[0]) - 1, 0)
        try:
            container = open_input(info)
            prof.lap("open")
        except (av.error.FFmpegError, OSError) as exc:
            raise DecodeError(info.path, f"cannot open ({ffmpeg_reason(exc)})") from exc
        try:
            stream = self._threaded_stream(container, info.stream_index)
            skip_nonref = self.skip_nonref and info.codec in NONREF_SAFE_CODECS
            target = max(k - 1, 0) if info.path in self._preroll else k
            last_error = ""
            # Bounded: stepping back one keyframe at a time to frame 0 is quadratic on long files.
            for _attempt in range(MAX_KEYFRAME_RETRIES + 1):
                walk = DecodeWalk(
                    info,
                    wanted,
                    size,
                    key_pts=info.keyframe_pts[k],
                    skip_nonref=skip_nonref,
                    sink=sink,
                    prof=prof,
                    frame_threads=self.threads != 1,
                )
                walk.run(container, stream, target, logs)
                if walk.complete:
                    if target < k and walk.error == "" and len(self._preroll) < 100_000:
                        self._preroll.add(info.path)
                    return walk.got
                last_error = walk.error or last_error
                step = next_attempt(walk, info, wanted, k, target)
                if step is None:
                    break
                target = step
        except av.error.FFmpegError as exc:
            raise DecodeError(
                info.path, f"decoding failed ({type(exc).__name__}: {ffmpeg_reason(exc)})"
            ) from exc
        finally:
            release_decoder(container, info.stream_index)
            prof.lap("close")
        if last_error:
            raise DecodeError(info.path, last_error)
        idx = [info.frame_pts.index(p) for p in wanted if p not in walk.got][:4]
        raise DecodeError(
            info.path, f"decoder produced no frame for indices {idx} (damaged or truncated file?)"
        )
