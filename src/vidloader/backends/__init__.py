"""Decode backends: given a VideoInfo and frame indices, return the frames (no iteration logic here); per
batch, the worker tasks that decode a batch's clips and the step that finishes the batch (``Backend``)."""

from ._audio import AudioSpan, AudioSpec, clip_span, decode_audio_span
from ._base import (
    MAX_KEYFRAME_RETRIES,
    Backend,
    BatchFrames,
    ClipRequest,
    DecodedClip,
    DecodeSettings,
    DecodeTask,
    ResizeArg,
    check_resize,
    keyframes_to_try,
    output_size,
)
from ._dali import DALIBackend, is_out_of_memory
from ._pass_groups import shared_decode_groups
from ._profile import FLOOR_STAGES, PROFILE_ENV, STAGES, profile_totals, profiling, reset_profile
from ._pyav import PyAVBackend
from ._remux import DALI_CPU_CODECS, PreparedClip, remux_segment
from ._select import BACKENDS, dali_missing, resolve_backend
from ._stop import DecodeStopped, SharedStop, StopSignal, raise_if_stopped, run_until, use_stop_flags

__all__ = [
    "BACKENDS",
    "DALI_CPU_CODECS",
    "FLOOR_STAGES",
    "MAX_KEYFRAME_RETRIES",
    "PROFILE_ENV",
    "STAGES",
    "AudioSpan",
    "AudioSpec",
    "Backend",
    "BatchFrames",
    "ClipRequest",
    "DALIBackend",
    "DecodeSettings",
    "DecodeStopped",
    "DecodeTask",
    "DecodedClip",
    "PreparedClip",
    "PyAVBackend",
    "ResizeArg",
    "SharedStop",
    "StopSignal",
    "check_resize",
    "clip_span",
    "dali_missing",
    "decode_audio_span",
    "is_out_of_memory",
    "keyframes_to_try",
    "output_size",
    "profile_totals",
    "profiling",
    "raise_if_stopped",
    "remux_segment",
    "reset_profile",
    "resolve_backend",
    "run_until",
    "shared_decode_groups",
    "use_stop_flags",
]
