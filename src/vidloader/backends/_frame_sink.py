"""Where a clip's converted frames go: straight into their rows of the output buffer.

swscale writes each kept frame into a fresh RGB frame; ``to_ndarray()`` then copied it into a new numpy
array (an allocation and page faults per frame) and the clip copied that again into the output row. A
view of the RGB frame's plane copied once into every row that shows it (repeated indices repeat) does the
same with one copy and no allocation: 0.6 ms of a 360p frame's 0.9 ms of conversion and copies. The bytes
are swscale's either way, so frames stay bit-exact. Rotated clips keep arrays and rotate at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import DecodeError
from ..dataset import VideoInfo


def rgb_view(frame: Any) -> np.ndarray:
    """A zero-copy ``[H, W, 3]`` view of an rgb24 ``av.VideoFrame``'s pixels (row padding left out); it
    keeps the frame's buffer alive while it exists."""
    plane = frame.planes[0]
    h, w = frame.height, frame.width
    rows = np.frombuffer(plane, dtype=np.uint8)[: h * plane.line_size].reshape(h, plane.line_size)
    return rows[:, : w * 3].reshape(h, w, 3)


def output_rows(info: VideoInfo, out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Where a clip of ``shape`` goes: ``out`` when it fits (uint8, that shape; a strided batch row is fine),
    a new array when None; else a DecodeError naming the file."""
    if out is None:
        return np.empty(shape, dtype=np.uint8)
    if out.shape != shape or out.dtype != np.uint8:
        raise DecodeError(
            info.path, f"output buffer {out.dtype}{list(out.shape)} does not fit the clip {shape}"
        )
    return out


class FrameSink:
    """Collects a clip's frames by timestamp into ``out`` (``[T, H, W, 3]`` uint8, possibly strided).

    Args:
        frame_pts: the clip's frame timestamps, in output order (repeats allowed).
        out: the output buffer, shaped for the clip as delivered.
        rotate: quarter turns to apply (``np.rot90``'s ``k``); 0 writes frames straight into ``out``.
    """

    def __init__(self, frame_pts: Sequence[int], out: np.ndarray, *, rotate: int = 0) -> None:
        self.out = out
        self.rotate = rotate
        self._slots: dict[int, list[int]] = {}
        for j, p in enumerate(frame_pts):
            self._slots.setdefault(p, []).append(j)
        self._kept: dict[int, np.ndarray] = {}

    def put(self, pts: int, rgb: Any) -> np.ndarray:
        """Store the rgb24 frame shown at ``pts``; returns where its pixels now are."""
        rows = self._slots[pts]
        if self.rotate:
            arr = self._kept[pts] = rgb.to_ndarray()
            return arr
        src = rgb_view(rgb)
        for j in rows:
            self.out[j] = src
        return self.out[rows[0]]

    def finish(self) -> np.ndarray:
        """``out`` with every frame in place (rotated ones written now)."""
        if self.rotate:
            for p, rows in self._slots.items():
                for j in rows:
                    self.out[j] = np.rot90(self._kept[p], k=self.rotate)
        return self.out
