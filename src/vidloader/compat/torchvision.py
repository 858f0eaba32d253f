"""torchvision's video-classification data API over vidloader: change the imports of a torchvision script,
keep its calls. See docs/migrating.md for what maps to what, argument by argument."""

from ._dataloader import DataLoader
from ._samplers import DistributedSampler, RandomClipSampler, UniformClipSampler
from ._torchvision import Kinetics, VideoClips

__all__ = [
    "DataLoader",
    "DistributedSampler",
    "Kinetics",
    "RandomClipSampler",
    "UniformClipSampler",
    "VideoClips",
]
