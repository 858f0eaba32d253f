"""Clip transforms for the loader and their crop-box helpers.

``TrainClipTransform`` and ``EvalClipTransform`` follow the loader's batched contract
(``transform(video_u8, *, seeds)``) and end in one call of ``vidloader.ops.clip_resized_crop_normalize``:
uint8 ``[B, T, H, W, 3]`` in, normalised ``[B * num_views, ...]`` out in the chosen dtype and layout.
``PerClipTransform`` runs any per-clip callable (a torchvision v2 transform, ``weights.transforms()``) under
the same contract; ``as_clip_transform`` is how the loader decides which one a callable needs. Given a
``vidloader.ops.RaggedClips`` batch (clips of mixed frame sizes) the two built-in transforms compute every
clip's boxes from its own size and call ``clip_resized_crop_normalize_ragged`` instead, still one launch.
"""

from ._boxes import (
    center_crop_boxes,
    random_resized_crop_boxes,
    resized_size,
    source_box,
    three_crop_boxes,
)
from ._denormalize import denormalize
from ._eval import EvalClipTransform
from ._output_conflicts import output_layout_with
from ._per_clip import (
    BATCHED_MARKER,
    ClipTransform,
    PerClipTransform,
    TransformKind,
    as_clip_transform,
    transform_kind,
)
from ._presets import normalization_stats
from ._train import TrainClipTransform

__all__ = [
    "BATCHED_MARKER",
    "ClipTransform",
    "EvalClipTransform",
    "PerClipTransform",
    "TrainClipTransform",
    "TransformKind",
    "as_clip_transform",
    "center_crop_boxes",
    "denormalize",
    "normalization_stats",
    "output_layout_with",
    "random_resized_crop_boxes",
    "resized_size",
    "source_box",
    "three_crop_boxes",
    "transform_kind",
]
