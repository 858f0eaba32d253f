"""torchvision's clip samplers over the port's ``VideoClips``: which windows an epoch takes, in which order,
and which of them a rank gets. Lengths are torchvision's; the clips are torchvision's grid windows.

Each sampler gives the epoch's window numbers (``numbers``), every rank's the same, and the positions of
those a rank takes (``rows``); the port's DataLoader turns them into its clip plan. Random choices come from
the loader's seed and the epoch (torchvision draws from torch's global generator, so its choices differ, not
their distribution).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from .._errors import ConfigError
from .._validate import check_bool, check_index, check_int
from ..loader import VideoLoader
from ..sampling import SamplingConfig
from ._cache import check_ours
from ._grid import shard_rows
from ._torchvision import VideoClips

# Keys of the random streams, apart from the loader's own (sampling uses small tags; these stay clear).
_TAG_RANDOM, _TAG_SHUFFLE = 0x7643_0001, 0x7643_0002


class ClipSampler(ABC):
    """A clip choice over a ``VideoClips`` grid. ``len()`` is the clips of one epoch, as torchvision's."""

    def __init__(
        self, video_clips: VideoClips, clips_per_video: int, *, name: str = "clips_per_video"
    ) -> None:
        if not isinstance(video_clips, VideoClips):
            check_ours(
                video_clips,
                what="video_clips",
                expected="vidloader.compat.torchvision VideoClips (dataset.video_clips)",
            )
        self.video_clips = video_clips
        self.clips_per_video = check_int(name, clips_per_video, minimum=1)
        self.loader: VideoLoader | None = None

    @abstractmethod
    def numbers(self, epoch: int, seed: int) -> np.ndarray:
        """The epoch's window numbers (see ``VideoClips.get_clip_location``), in the order they come."""

    @abstractmethod
    def __len__(self) -> int:
        """Clips of one epoch (one rank's share for a ``DistributedSampler``)."""

    def rows(self, num_clips: int, rank: int, world_size: int) -> np.ndarray:
        """Positions of ``numbers`` that ``rank`` of ``world_size`` takes (all of them on one rank)."""
        return shard_rows(num_clips, rank, world_size)

    @abstractmethod
    def sampling(self) -> SamplingConfig:
        """The choice as a SamplingConfig, which the loader's state records."""

    def placement(self) -> tuple[int, int]:
        """(rank, world_size) of the loader: one process reads every clip, as torch's DataLoader does."""
        return 0, 1

    def attach(self, loader: VideoLoader) -> None:
        """Bind to the loader that reads this sampler's clips (``set_epoch`` moves its epoch)."""
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        """Make the loader's next pass epoch ``epoch`` (it also advances by itself every pass)."""
        if self.loader is not None:
            self.loader.set_epoch(epoch)


class RandomClipSampler(ClipSampler):
    """torchvision's ``RandomClipSampler(video_clips, max_clips_per_video)``: per video and epoch,
    ``min(windows, max_clips_per_video)`` distinct random windows of the grid, all shuffled together."""

    def __init__(self, video_clips: VideoClips, max_clips_per_video: int) -> None:
        super().__init__(video_clips, max_clips_per_video, name="max_clips_per_video")

    def numbers(self, epoch: int, seed: int) -> np.ndarray:
        generator = np.random.default_rng([seed, epoch, _TAG_RANDOM])
        return self.video_clips.grid.random(self.clips_per_video, generator)

    def sampling(self) -> SamplingConfig:
        return self.video_clips.sampling(
            sampling="random",
            clips_per_video=self.clips_per_video,
            clips_per_video_mode="without_replacement",
            shuffle=True,
        )

    def __len__(self) -> int:
        return int(np.minimum(self.video_clips.grid.counts, self.clips_per_video).sum())


class UniformClipSampler(ClipSampler):
    """torchvision's ``UniformClipSampler(video_clips, num_clips_per_video)``: per video with a window,
    ``num_clips_per_video`` windows evenly spaced over its windows (``floor(torch.linspace(...))`` over the
    window numbers, as torchvision computes it; a video with fewer windows repeats some), in video order."""

    def __init__(self, video_clips: VideoClips, num_clips_per_video: int) -> None:
        super().__init__(video_clips, num_clips_per_video, name="num_clips_per_video")
        self._numbers: np.ndarray | None = None

    def numbers(self, epoch: int, seed: int) -> np.ndarray:
        if self._numbers is None:  # the same every epoch
            self._numbers = self.video_clips.grid.uniform(self.clips_per_video)
        return self._numbers

    def sampling(self) -> SamplingConfig:
        return self.video_clips.sampling(
            sampling="uniform", clips_per_video=self.clips_per_video, shuffle=False
        )

    def __len__(self) -> int:
        return self.clips_per_video * int((self.video_clips.grid.counts > 0).sum())


class AllWindows(ClipSampler):
    """No sampler: every window of the grid, in order or (``shuffle``) in a random order per epoch, as torch's
    DataLoader walks a torchvision ``Kinetics`` (``SequentialSampler`` / ``RandomSampler``)."""

    def __init__(self, video_clips: VideoClips, shuffle: bool) -> None:
        super().__init__(video_clips, 1)
        self.shuffle = check_bool("shuffle", shuffle)

    def numbers(self, epoch: int, seed: int) -> np.ndarray:
        numbers = np.arange(len(self), dtype=np.int64)
        if self.shuffle:
            numbers = np.random.default_rng([seed, epoch, _TAG_SHUFFLE]).permutation(numbers)
        return numbers

    def sampling(self) -> SamplingConfig:
        return self.video_clips.sampling(sampling="sliding", shuffle=self.shuffle)

    def __len__(self) -> int:
        return self.video_clips.num_clips()


class DistributedSampler(ClipSampler):
    """torchvision's clip ``DistributedSampler(sampler, num_replicas=None, rank=None, shuffle=False,
    group_size=1)``: the inner sampler's clips (shuffled per epoch with ``torch.randperm`` seeded by the epoch
    when ``shuffle``), padded with their own start to a multiple of ``num_replicas`` and dealt: a rank takes
    every ``num_replicas``-th clip (group of ``group_size`` clips) from ``rank``. ``len()`` is one rank's
    share, ``len(sampler.dataset)`` the inner sampler's whole epoch. ``num_replicas`` and ``rank`` default to
    ``torch.distributed``'s (one process, rank 0, where it is not initialised)."""

    def __init__(
        self,
        dataset: ClipSampler,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = False,
        group_size: int = 1,
    ) -> None:
        if not isinstance(dataset, ClipSampler):
            raise ConfigError(f"DistributedSampler wraps a clip sampler, got {type(dataset).__name__}")
        super().__init__(dataset.video_clips, dataset.clips_per_video)
        self.dataset, self.shuffle = dataset, check_bool("shuffle", shuffle)
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        self.group_size = check_int("group_size", group_size, minimum=1)
        if len(dataset) % group_size:
            raise ConfigError(
                f"the sampler's {len(dataset)} clips do not divide into groups of group_size={group_size}"
            )

    def numbers(self, epoch: int, seed: int) -> np.ndarray:
        numbers = self.dataset.numbers(epoch, seed)
        if self.shuffle:
            order = torch.randperm(len(numbers), generator=torch.Generator().manual_seed(epoch))
            numbers = numbers[order.numpy()]
        return numbers

    def rows(self, num_clips: int, rank: int, world_size: int) -> np.ndarray:
        return shard_rows(num_clips, rank, world_size, self.group_size)

    def sampling(self) -> SamplingConfig:
        inner = self.dataset.sampling()
        return SamplingConfig(**{**inner.to_json(), "shuffle": inner.shuffle or self.shuffle})

    def placement(self) -> tuple[int, int]:
        return self.rank, self.num_replicas

    def attach(self, loader: VideoLoader) -> None:
        super().attach(loader)
        self.dataset.attach(loader)

    def __len__(self) -> int:
        groups = len(self.dataset) // self.group_size
        return -(-groups // self.num_replicas) * self.group_size


def _replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank): as given, else torch.distributed's, else one process."""
    import torch.distributed as dist

    running = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if running else 1
    if rank is None:
        rank = dist.get_rank() if running else 0
    check_int("num_replicas", num_replicas, minimum=1)
    return num_replicas, check_index("rank", rank, num_replicas)
