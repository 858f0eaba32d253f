"""VideoLoader: clip plan -> decode -> assemble -> ClipBatch on the device, with prefetch, sharding and
resumable state.

A pass reads top-down in ``VideoLoader.__iter__`` (``_loader``): the epoch's plan for this rank, then the
decode stage (``_decode``: the backend's tasks on the workers of ``_workers``, deadlines and retries, the
backend's batch step, the host memory frames land in), the assemble stage (``_assemble``: frames -> device
batch -> transform -> ``ClipBatch`` of ``_batch``, the batch's audio features from ``_audio_batch``) and
the hand-off (``_handoff``: prefetch thread, ready on the caller's stream, the caller's position in the
epoch), the plans, counters and saved state kept in ``_state``.
``LoaderConfig`` (``_config``) defines every option once."""

from ._audio_batch import AudioBatcher, audio_samples
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
