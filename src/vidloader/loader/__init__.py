"""VideoLoader: clip plan -> decode -> ops -> ClipBatch, with prefetch, sharding and resumable state.

Inside, a pass runs through a Scheduler (plans -> decode tasks -> workers, prefetch, deadlines), an
Assembler (decoded clips -> device batch -> transform -> ClipBatch) and a Handoff (ready on the caller's
stream); LoaderConfig holds the validated options and EpochCursor the position that state_dict saves."""

from ._audio import AudioBatcher, audio_samples
from ._batch import ClipBatch
from ._config import LAYOUTS, LoaderConfig
from ._loader import VideoLoader

__all__ = [
    "LAYOUTS",
    "AudioBatcher",
    "ClipBatch",
    "LoaderConfig",
    "VideoLoader",
    "audio_samples",
]
