"""VideoLoader: clip plan -> decode -> ops -> ClipBatch, with prefetch, sharding and resumable state."""

from ._batch import ClipBatch
from ._loader import LAYOUTS, ClipTransform, VideoLoader

__all__ = ["LAYOUTS", "ClipBatch", "ClipTransform", "VideoLoader"]
