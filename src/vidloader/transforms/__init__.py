"""Clip transforms for the loader (``transform(video_u8, seeds=...)``) and their crop-box helpers.

Both transforms end in one call of ``vidloader.ops.clip_resized_crop_normalize``: uint8 ``[B, T, H, W, 3]``
in, normalised ``[B * num_views, ...]`` out in the chosen dtype and layout. Given a
``vidloader.ops.RaggedClips`` batch (clips of mixed frame sizes) they compute every clip's boxes from its own
size and call ``clip_resized_crop_normalize_ragged`` instead, still one launch.
"""

from ._boxes import center_crop_boxes, random_resized_crop_boxes, three_crop_boxes
from ._denormalize import denormalize
from ._eval import EvalClipTransform
from ._train import TrainClipTransform

__all__ = [
    "EvalClipTransform",
    "TrainClipTransform",
    "center_crop_boxes",
    "denormalize",
    "random_resized_crop_boxes",
    "three_crop_boxes",
]
