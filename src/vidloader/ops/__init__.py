"""Fused clip ops (``torch.ops.vidloader``) and their validated Python wrappers.

``clip_resized_crop_normalize`` turns uint8 ``[B, T, H, W, 3]`` clips into normalised float clips in one
pass (crop -> bilinear resize -> flip -> optional colour jitter -> normalise -> layout/dtype); it runs a
Triton kernel on CUDA (or under ``TRITON_INTERPRET=1``) and a pure-torch reference otherwise.
``clip_resized_crop_normalize_ragged`` does the same for a ``RaggedClips`` batch whose clips each have their
own frame size (mixed datasets), still in one launch, with optional letterboxing; the first is the second with
uniform geometry, one op family with one implementation.
"""

from ._backend import backend_for
from ._checks import check_channel_stats, check_layout, check_out_dtype, check_size, check_video
from ._color_jitter import clip_color_jitter
from ._fused_op import clip_resized_crop_normalize, clip_resized_crop_normalize_ragged
from ._ragged_clips import RaggedClips
from ._reference import ragged_resized_crop_normalize_reference, resized_crop_normalize_reference
from ._tube_mask import tube_mask

__all__ = [
    "RaggedClips",
    "backend_for",
    "check_channel_stats",
    "check_layout",
    "check_out_dtype",
    "check_size",
    "check_video",
    "clip_color_jitter",
    "clip_resized_crop_normalize",
    "clip_resized_crop_normalize_ragged",
    "ragged_resized_crop_normalize_reference",
    "resized_crop_normalize_reference",
    "tube_mask",
]
