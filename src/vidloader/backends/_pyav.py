"""CPU decode with PyAV: seek to the keyframe before the clip, decode only up to its last frame."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import DecodeError
from ..dataset import VideoInfo, enable_ffmpeg_log
from ._base import DecodedClip, ResizeArg, open_input, output_size
from ._frame_sink import FrameSink
from ._profile import clip_profile

# Codecs whose FFmpeg decoders drop exactly the frames nothing refers to under AVDISCARD_NONREF (checked
# frame by frame against a full sequential decode). libdav1d is not one: AV1's hidden frames shown later
# (show_existing_frame) then never come out, so AV1 and any codec not listed decode every frame.
NONREF_SAFE_CODECS = frozenset({"h264", "hevc", "mpeg4", "vp8", "vp9", "mjpeg"})


def shared_decode_groups(info: VideoInfo, clips: Sequence[Sequence[int]]) -> list[list[int]]:
    """Clips of one video that one decode pass serves better than separate ones, as groups of positions
    in ``clips`` (each group sorted by first frame).

    A clip joins the group before it when the keyframe its own seek would start from is at or before the
    group's last frame: decoding on from there then costs no more than seeking (usually much less: with
    long GOPs every clip of a multiview or sliding plan starts from the same keyframe). Clips further apart
    keep their own seek, so two clips minutes apart never decode the minutes between them."""
    order = sorted(range(len(clips)), key=lambda i: min(clips[i]))
    groups: list[list[int]] = []
    end = -1
    for i in order:
        first = info.frame_pts[min(clips[i])]
        last = max(info.frame_pts[j] for j in clips[i])
        k = bisect.bisect_right(info.keyframe_pts, first) - 1
        key = info.keyframe_pts[max(k, 0)] if info.keyframe_pts else first
        if groups and key <= end:
            groups[-1].append(i)
            end = max(end, last)
        else:
            groups.append([i])
            end = last
    return groups


class PyAVBackend:
    """Decodes clips on the CPU with FFmpeg (through PyAV) into RGB uint8.

    Frames are found by their presentation timestamp (known exactly from the index), so a seek that lands
    early or late can never shift a clip by a frame: missing frames make it retry from an earlier keyframe,
    and failing that raise DecodeError.
    """

    name = "pyav"

    def __init__(self, *, threads: int = 1, skip_nonref: bool = True) -> None:
        self.threads = threads
        # Non-reference frames before the clip's first frame are never needed by anything: letting FFmpeg
        # drop them (AVDISCARD_NONREF) is exact and saves a large share of the seek-to-clip decode.
        self.skip_nonref = skip_nonref

    def __repr__(self) -> str:
        return f"PyAVBackend(threads={self.threads}, skip_nonref={self.skip_nonref})"

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
        try:
            container = open_input(info.path)
            prof.lap("open")
        except (av.error.FFmpegError, OSError) as exc:
            raise DecodeError(info.path, f"cannot open ({exc})") from exc
        try:
            stream = container.streams[info.stream_index]
            cc = stream.codec_context
            skip_nonref = self.skip_nonref and info.codec in NONREF_SAFE_CODECS
            cc.thread_count = self.threads
            cc.thread_type = "SLICE" if self.skip_nonref else "AUTO"
            k = bisect.bisect_right(info.keyframe_pts, wanted[0]) - 1
            k = max(k, 0)
            got: dict[int, np.ndarray] = {}
            while True:
                got = self._decode_from(
                    container,
                    stream,
                    info,
                    info.keyframe_pts[k],
                    wanted,
                    (out_h, out_w),
                    skip_nonref,
                    prof,
                    sink,
                )
                if len(got) == len(wanted) or k == 0:
                    break
                k -= 1  # the seek landed past a needed frame (open GOP, odd index): start one GOP earlier
        except av.error.FFmpegError as exc:
            raise DecodeError(info.path, f"decoding failed ({type(exc).__name__}: {exc})") from exc
        finally:
            container.close()
        missing = [p for p in wanted if p not in got]
        if missing:
            idx = [info.frame_pts.index(p) for p in missing[:4]]
            raise DecodeError(
                info.path, f"decoder produced no frame for indices {idx} (damaged or truncated file?)"
            )
        frames = sink.finish()  # converted frames went straight into their rows as they came
        prof.lap("copy")
        prof.done(len(frame_indices))
        pts = tuple(info.frame_pts[i] for i in frame_indices)
        tb = info.time_base
        return DecodedClip(frames=frames, pts=pts, timestamps=tuple(float(p * tb) for p in pts))

    @staticmethod
    def _sink(
        info: VideoInfo,
        frame_indices: Sequence[int],
        resize: ResizeArg,
        apply_rotation: bool,
        out: np.ndarray | None,
    ) -> FrameSink:
        final = (len(frame_indices), *output_size(info, resize, apply_rotation=apply_rotation), 3)
        if out is None:
            out = np.empty(final, dtype=np.uint8)
        elif out.shape != final or out.dtype != np.uint8:
            raise DecodeError(
                info.path, f"output buffer {out.dtype}{list(out.shape)} does not fit the clip {final}"
            )
        rotate = info.rotation // 90 if apply_rotation else 0
        return FrameSink([info.frame_pts[i] for i in frame_indices], out, rotate=rotate)

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
        tb = info.time_base
        result = []
        for c, out in zip(clips, outs or [None] * len(clips), strict=True):
            shape = (len(c), *whole.frames.shape[1:])
            if out is None:
                out = np.empty(shape, dtype=np.uint8)
            elif out.shape != shape or out.dtype != np.uint8:
                raise DecodeError(
                    info.path, f"output buffer {out.dtype}{list(out.shape)} does not fit the clip {shape}"
                )
            for j, i in enumerate(c):  # straight into the (possibly strided) batch row: one copy
                out[j] = whole.frames[at[i]]
            frames = out
            pts = tuple(info.frame_pts[i] for i in c)
            result.append(DecodedClip(frames=frames, pts=pts, timestamps=tuple(float(p * tb) for p in pts)))
        return result

    def _decode_from(
        self,
        container,
        stream,
        info: VideoInfo,
        key_pts: int,
        wanted: list[int],
        size,
        skip_nonref: bool,
        prof: Any = None,
        sink: FrameSink | None = None,
    ) -> dict:
        import av
        from av.video.reformatter import VideoReformatter

        wanted_set = set(wanted)
        last = wanted[-1]
        got: dict[int, np.ndarray] = {}
        cc = stream.codec_context
        prof = prof or clip_profile()
        container.seek(key_pts, stream=stream, backward=True, any_frame=False)
        cc.flush_buffers()
        prof.lap("seek")
        h, w = size
        resize = (h, w) != (info.height, info.width)
        # One reformatter for the clip keeps its swscale context: frame.to_ndarray(format=...) builds one
        # per frame (1.1 -> 0.06 ms per 96x64 frame, 0.64 -> 0.40 ms at 360p, 3.5 -> 2.8 ms at 1080p;
        # bit-identical output).
        reformatter = VideoReformatter()

        def take(frame) -> bool:
            p = frame.pts
            if p in wanted_set and p not in got:
                if frame.is_corrupt:
                    raise DecodeError(info.path, f"frame at pts {p} is corrupt")
                prof.lap("python")
                if resize:
                    rgb = reformatter.reformat(
                        frame, format="rgb24", width=w, height=h, interpolation="BILINEAR"
                    )
                else:
                    rgb = reformatter.reformat(frame, format="rgb24")
                prof.lap("convert")
                got[p] = sink.put(p, rgb) if sink is not None else rgb.to_ndarray()
                prof.lap("copy")
            return p is not None and p >= last and len(got) == len(wanted)

        skipping = False
        # One capture for the whole walk (a capture per packet costs more than decoding small frames);
        # `seen` marks how much of it has been checked.
        with av.logging.Capture(local=True) as logs:
            seen = 0
            for packet in container.demux(stream):
                prof.lap("demux")
                if packet.size == 0:
                    break
                if skip_nonref:
                    ppts = packet.pts if packet.pts is not None else packet.dts
                    # A non-reference frame nobody asked for (before the clip, or between strided frames) is
                    # never needed by another frame: dropping it is exact.
                    want_skip = ppts is not None and ppts not in wanted_set
                    if want_skip != skipping:
                        cc.skip_frame = "NONREF" if want_skip else "DEFAULT"
                        skipping = want_skip
                prof.lap("python")
                try:
                    frames = cc.decode(packet)
                    errors = []
                except av.error.InvalidDataError as exc:
                    frames, errors = [], [str(exc)]
                pre = packet.pts is not None and packet.pts < wanted[0]
                prof.lap("decode_preroll" if pre else "decode_clip")
                if len(logs) > seen:
                    errors += [
                        str(m[2]).strip()
                        for m in logs[seen:]
                        if m[0] is not None and m[0] <= av.logging.ERROR
                    ]
                    seen = len(logs)
                if errors:
                    # Every frame decoded since the keyframe may be a reference of the clip's frames; after a
                    # decode error they can be wrong without any flag (VP9/H.264 decode on from bad refs).
                    raise DecodeError(info.path, f"decoder error near pts {packet.pts}: {errors[0]}")
                for frame in frames:
                    prof.frame()
                    if take(frame):
                        return got
        if skipping:
            cc.skip_frame = "DEFAULT"
        for frame in cc.decode(None):
            prof.lap("decode_clip")
            prof.frame()
            if take(frame):
                break
        return got
