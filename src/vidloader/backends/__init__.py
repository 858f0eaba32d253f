"""Decode backends: given a VideoInfo and frame indices, return the frames (no iteration logic here)."""

from ._base import Backend, DecodedClip, ResizeArg, check_resize, output_size
from ._pyav import PyAVBackend
from ._select import BACKENDS, dali_missing, resolve_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "DecodedClip",
    "PyAVBackend",
    "ResizeArg",
    "check_resize",
    "dali_missing",
    "output_size",
    "resolve_backend",
]
