"""Decode backends: given a VideoInfo and frame indices, return the frames (no iteration logic here)."""

from ._audio import AudioSpan, AudioSpec, decode_audio_span
from ._base import Backend, DecodedClip, ResizeArg, check_resize, output_size
from ._dali import DALI_CPU_CODECS, DALIBackend, PreparedClip, remux_segment
from ._profile import PROFILE_ENV, STAGES, profile_totals, reset_profile
from ._pyav import PyAVBackend, shared_decode_groups
from ._select import BACKENDS, dali_missing, resolve_backend

__all__ = [
    "BACKENDS",
    "DALI_CPU_CODECS",
    "PROFILE_ENV",
    "STAGES",
    "AudioSpan",
    "AudioSpec",
    "Backend",
    "DALIBackend",
    "DecodedClip",
    "PreparedClip",
    "PyAVBackend",
    "ResizeArg",
    "check_resize",
    "dali_missing",
    "decode_audio_span",
    "output_size",
    "profile_totals",
    "remux_segment",
    "reset_profile",
    "resolve_backend",
    "shared_decode_groups",
]
