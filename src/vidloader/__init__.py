"""vidloader: decoded, processed video clip batches for PyTorch training, delivered on the device."""

from . import ops, transforms
from ._errors import (
    BackendUnavailableError,
    ConfigError,
    DecodeError,
    ProbeError,
    SkipBudgetError,
    StateMismatchError,
    StoreError,
    StoreUnavailableError,
    VideoError,
    VidloaderError,
    WorkerPoolError,
)
from .backends import AudioSpec, DecodedClip, PyAVBackend
from .dataset import DamagedFile, SkippedFile, VideoDataset, VideoInfo, make_demo_dataset, probe_video
from .loader import ClipBatch, LoaderConfig, VideoLoader
from .sampling import ClipSpec, SamplingConfig, plan_epoch

__version__ = "0.1.0"

__all__ = [
    "AudioSpec",
    "BackendUnavailableError",
    "ClipBatch",
    "ClipSpec",
    "ConfigError",
    "DamagedFile",
    "DecodeError",
    "DecodedClip",
    "LoaderConfig",
    "ProbeError",
    "PyAVBackend",
    "SamplingConfig",
    "SkipBudgetError",
    "SkippedFile",
    "StateMismatchError",
    "StoreError",
    "StoreUnavailableError",
    "VideoDataset",
    "VideoError",
    "VideoInfo",
    "VideoLoader",
    "VidloaderError",
    "WorkerPoolError",
    "__version__",
    "make_demo_dataset",
    "ops",
    "plan_epoch",
    "probe_video",
    "transforms",
]
