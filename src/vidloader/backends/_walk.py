"""One decode attempt of the PyAV backend: seek, start at a keyframe, decode up to the last wanted frame,
and judge each decoder error by whether it can touch a wanted frame."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from ..dataset import VideoInfo, ffmpeg_errors
from ._frame_sink import FrameSink
from ._profile import clip_profile
from ._stop import raise_if_stopped


class DecodeWalk:
    """One attempt: seek, then demux and decode from the first keyframe up to the last wanted frame.

    After the walk, ``complete`` says every wanted frame came out with no decoder error that could touch
    it; ``started_at`` is the pts of the keyframe decoding started from (None: none before the clip);
    ``error`` the first decoder error that counts, naming the frame."""

    def __init__(
        self,
        info: VideoInfo,
        wanted: list[int],
        size,
        *,
        key_pts: int,
        skip_nonref: bool,
        sink: FrameSink | None = None,
        prof: Any = None,
        frame_threads: bool = False,
    ):
        self.info, self.wanted, self.size = info, wanted, size
        # Converted frames go straight into their output rows (one copy, no allocation per frame); the
        # profile charges each step's time to its stage when VIDLOADER_PROFILE is set.
        self.sink, self.prof = sink, prof if prof is not None else clip_profile()
        self.wanted_set = set(wanted)
        self.key_pts = key_pts  # the clip's own keyframe: packets before it (or shown before it) are pre-roll
        self.skip_nonref = skip_nonref
        self.got: dict[int, np.ndarray] = {}
        self.fed: set[int] = set()  # wanted frames whose packets went to the decoder
        self.shown: set[int] = set()  # pts of every frame the decoder gave in this attempt
        self.started_at: int | None = None
        self.error = ""
        self.passed_key = False
        self._skipping = False  # the decoder is set to drop non-reference frames
        self._seen = 0  # FFmpeg log lines already judged
        # Frame threads log decode errors from their own threads, out of this thread's log capture: then
        # every frame out of the decoder has its error flags judged, as a logged error on its packet
        # would be. ``late``: packets sent once every wanted frame's packet was in, which nothing wanted
        # can refer to (a frame comes out of frame threads a few packets after its own).
        self.frame_threads = frame_threads
        self.late: set[int] = set()

    @property
    def complete(self) -> bool:
        return not self.error and len(self.got) == len(self.wanted)

    def run(self, container, stream, target: int, logs) -> None:
        from av.video.reformatter import VideoReformatter

        cc = stream.codec_context
        at_start = target == 0
        seek_keyframe(container, stream, None if at_start else self.info.keyframe_pts[target])
        cc.flush_buffers()
        cc.skip_frame = "DEFAULT"  # an earlier attempt may have stopped while skipping
        self.prof.lap("seek")
        # One reformatter for the clip keeps its swscale context: frame.to_ndarray(format=...) builds one
        # per frame (1.1 -> 0.06 ms per 96x64 frame, 0.64 -> 0.40 ms at 360p, 3.5 -> 2.8 ms at 1080p;
        # bit-identical output).
        self.reformatter = VideoReformatter()
        self._skipping = False
        self._seen = len(logs)
        for packet in container.demux(stream):
            self.prof.lap("demux")
            raise_if_stopped()
            if packet.size == 0:
                break
            ppts = packet.pts if packet.pts is not None else packet.dts
            begin = self._begin(packet, ppts, at_start)
            if begin is None:
                continue
            if not begin:
                return  # past the first wanted frame: go back a keyframe
            if self._decode_packet(cc, packet, ppts, logs):
                return
        self._drain(cc)

    def _begin(self, packet, ppts: int | None, at_start: bool) -> bool | None:
        """Whether decoding goes on with this packet: None passes it by, False stops the walk (its first
        keyframe is already past the clip's first frame)."""
        if self.started_at is not None:
            return True
        # Decoding must begin at a keyframe: a seek that lands on any packet (MPEG-TS, AVI) would otherwise
        # decode frames from missing references. At the file's start, the first packet is where the stream
        # begins, flagged or not.
        if not (packet.is_keyframe or at_start) or ppts is None:
            return None
        self.started_at = ppts
        return at_start or ppts <= self.wanted[0]

    def _decode_packet(self, cc, packet, ppts: int | None, logs) -> bool:
        """Send one packet and keep the wanted frames it gives; True once the walk is over (every wanted
        frame in, or an error that counts)."""
        import av

        if self.skip_nonref:
            # A non-reference frame nobody asked for (before the clip, or between strided frames) is never
            # needed by another frame: dropping it is exact.
            want_skip = ppts is not None and ppts not in self.wanted_set
            if want_skip != self._skipping:
                cc.skip_frame = "NONREF" if want_skip else "DEFAULT"
                self._skipping = want_skip
        prof = self.prof
        prof.lap("python")
        try:
            frames = cc.decode(packet)
            errors = []
        except av.error.InvalidDataError as exc:
            frames, errors = [], [str(exc)]
        prof.lap("decode_preroll" if ppts is not None and ppts < self.wanted[0] else "decode_clip")
        if len(logs) > self._seen:
            errors += ffmpeg_errors(logs[self._seen :])
            self._seen = len(logs)
        if errors and self._counts(ppts, late=len(self.fed) == len(self.wanted)):
            self._fail(ppts, errors[0])
            return True
        if ppts is not None and ppts == self.key_pts:
            self.passed_key = True
        if len(self.fed) == len(self.wanted) and ppts is not None:
            self.late.add(ppts)
        if ppts in self.wanted_set:
            self.fed.add(ppts)
        for frame in frames:
            prof.frame()
            if self._flagged(frame) or self._take(frame):
                return True
        return False

    def _drain(self, cc) -> None:
        """The frames the decoder still holds at the end of the stream."""
        import av

        if self._skipping:
            cc.skip_frame = "DEFAULT"
        try:
            for frame in cc.decode(None):
                self.prof.lap("decode_clip")
                self.prof.frame()
                if self._flagged(frame) or self._take(frame):
                    return
        except av.error.InvalidDataError as exc:
            if len(self.fed) < len(self.wanted):
                self._fail(None, str(exc))

    def _flagged(self, frame) -> bool:
        """With frame threads: True (the walk is over) when the decoder flagged ``frame`` as damaged and
        that can touch a wanted frame."""
        if not self.frame_threads or not frame.is_corrupt:
            return False
        p = frame.pts
        if not self._counts(p, late=p in self.late):
            return False
        self._fail(p, "the decoder flagged the frame corrupt")
        return True

    def _counts(self, ppts: int | None, *, late: bool) -> bool:
        """Whether a decoder error on this packet can touch a wanted frame (``late``: the packet was sent
        after every wanted frame's packet)."""
        if late:
            return False  # every wanted frame was sent before it: nothing wanted refers to it
        if not self.passed_key and ppts != self.key_pts and self.started_at != self.key_pts:
            return False  # pre-roll GOP before the clip's keyframe
        # Shown before the clip's keyframe: an open GOP's leading frame, which no later frame refers to.
        return ppts is None or ppts >= self.key_pts

    def _fail(self, ppts: int | None, reason: str) -> None:
        pts = self.info.frame_pts
        where = f"frame {pts.index(ppts)} (pts {ppts})" if ppts in pts else f"pts {ppts}"
        self.error = f"decoder error at {where}: {reason}"

    def _take(self, frame) -> bool:
        """Keep a wanted frame; True once the last one is in, or once the frames' timestamps cannot be
        trusted."""
        p = frame.pts
        if p is not None:
            if p in self.shown:
                # Frames come out in presentation order, each once: a timestamp given twice means the
                # decoder pairs frames with the wrong packets' timestamps (a reorder delay it was not told
                # of), and a frame found "by pts" could be another one. Fail loudly instead.
                self._fail(p, "the decoder gave two frames this timestamp (frames paired with wrong pts)")
                return True
            self.shown.add(p)
        if p in self.wanted_set and p not in self.got:
            if frame.is_corrupt:
                self._fail(p, "the decoder flagged the frame corrupt")
                return True
            self.prof.lap("python")
            h, w = self.size
            # threads=1: PyAV's default (0) gives every swscale context a pool of one thread per core,
            # started per clip and synchronised per frame; on 96x64 frames that waited 10 ms per clip
            # for 0.8 ms of work, and the loader's workers already fill the cores.
            if (h, w) != (self.info.height, self.info.width):
                rgb = self.reformatter.reformat(
                    frame, format="rgb24", width=w, height=h, interpolation="BILINEAR", threads=1
                )
            else:
                rgb = self.reformatter.reformat(frame, format="rgb24", threads=1)
            self.prof.lap("convert")
            self.got[p] = self.sink.put(p, rgb) if self.sink is not None else rgb.to_ndarray()
            self.prof.lap("copy")
        return len(self.got) == len(self.wanted)


def release_decoder(container, stream_index: int) -> None:
    """Close ``container`` so that freeing its decoder can never deadlock.

    PyAV frees a codec context holding the GIL, and FFmpeg's ``avcodec_free_context`` waits for the
    decoder's frame threads to finish; a frame thread that logs meanwhile calls PyAV's log callback, which
    waits for the GIL: both wait forever (gdb showed exactly this with two workers and ``threads=2``).
    ``flush_buffers`` waits for the frame threads *without* the GIL (PyAV releases it there), so the
    threads are idle, and log nothing, by the time the context is freed."""
    try:
        container.streams[stream_index].codec_context.flush_buffers()
    finally:
        container.close()


def seek_keyframe(container, stream, pts: int | None) -> None:
    """Seek to the keyframe at or before ``pts`` (None: the start of the file)."""
    import av

    if pts is not None:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
        return
    try:
        container.seek(0, backward=True, any_frame=False)  # AV_TIME_BASE units: before every stream
    except av.error.FFmpegError:
        container.seek(-(1 << 40), stream=stream, backward=True, any_frame=False)


def next_attempt(walk: DecodeWalk, info: VideoInfo, wanted: list[int], k: int, target: int) -> int | None:
    """After an attempt (``walk``) that could not vouch for every wanted frame: the keyframe (index) the next attempt
    starts from, or None when going further back cannot help."""
    started_at = walk.started_at
    if started_at is None or started_at > wanted[0]:
        pass  # landed past the clip: not a decode failure, just go back
    elif walk.error:
        if started_at < info.keyframe_pts[k]:
            return None  # errors with a GOP of pre-roll before the clip: damage
    elif started_at < info.keyframe_pts[max(k - 1, 0)]:
        return None  # frames still missing two GOPs back: the decoder will not produce them
    if target == 0:
        return None
    started = target if started_at is None else bisect.bisect_right(info.keyframe_pts, started_at) - 1
    return max(min(target, started) - 1, 0)
