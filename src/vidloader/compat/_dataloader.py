"""``torch.utils.data.DataLoader``'s signature over VideoLoader, for a ``compat.torchvision.Kinetics``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import torch

from .._errors import ConfigError
from .._validate import check_bool
from ..loader import LoaderConfig, VideoLoader
from ..sampling import ClipPlan
from ._cache import check_ours
from ._pinned import pinned
from ._samplers import AllWindows, ClipSampler
from ._torchvision import Kinetics, _clip_items

_UNSUPPORTED = ("batch_sampler", "worker_init_fn", "multiprocessing_context", "generator")
_warned_pin = False  # pin_memory=True without CUDA: said once per process, as torch says it


class DataLoader(VideoLoader):
    """``torch.utils.data.DataLoader(dataset, batch_size, shuffle, sampler, num_workers, collate_fn, ...)``
    for a vidloader ``Kinetics``: a VideoLoader configured from torchvision's arguments, whose clips are the
    ones torchvision's loader would read (the sampler's windows of torchvision's grid, in its order, a rank's
    share as torchvision's ``DistributedSampler`` deals it).

    Batches are decoded by vidloader's workers (threads), the dataset's ``transform`` runs per clip on
    ``device`` (or batched and fused for a vidloader transform), and the result unpacks as ``video, target,
    video_idx``. With a ``collate_fn``, it is called on the batch's per-clip items ``(video, audio, label,
    video_idx)`` as torch's DataLoader would, and its result is what the loop gets. ``batch.clip_index`` is a
    clip's window within its video (torchvision's ``get_clip_location``).

    Args:
        dataset: a ``vidloader.compat.torchvision.Kinetics``.
        batch_size: clips per batch.
        shuffle: without a sampler, every window of the grid is a clip, in random order if True; with a
            sampler, must be None or False (the sampler decides).
        sampler: ``RandomClipSampler``, ``UniformClipSampler`` or a ``DistributedSampler`` of one. Without a
            ``DistributedSampler`` one process reads every clip, as with torch's DataLoader (also under
            ``torch.distributed``).
        num_workers: decode threads (0: decode on the iterating thread).
        collate_fn: see above.
        pin_memory: with ``device="cpu"`` (the default) and CUDA present, batches (the ``collate_fn``'s
            result) come in pinned memory, as from torch's DataLoader; with ``device="cuda"`` batches arrive
            on the GPU through vidloader's own pinned buffers; without CUDA a warning says, once, that there
            is nothing to pin for.
        drop_last: drop the last incomplete batch.
        timeout: seconds one clip may take to decode (vidloader's ``decode_timeout``; 0: its default).
        prefetch_factor: batches prepared ahead (vidloader's ``prefetch``).
        persistent_workers, pin_memory_device: accepted and not needed (workers live as long as the loader).
        **options: further ``VideoLoader`` arguments, e.g. ``device="cuda"``, ``resize=`` (needed when videos
            of one batch differ in frame size), ``backend=``, ``seed=`` (default: drawn from torch's initial
            seed, see ``VideoLoader``).

    Raises:
        ConfigError: an argument torch's DataLoader takes that has no meaning here (``batch_sampler``,
            ``worker_init_fn``, ``multiprocessing_context``, ``generator``), a dataset or sampler that is not
            the port's (torchvision's own, read back from a dataset cache, is named as such), or a bad value.
    """

    def __init__(
        self,
        dataset: Kinetics,
        batch_size: int = 1,
        shuffle: bool | None = None,
        sampler: ClipSampler | None = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Any = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        **options: Any,
    ) -> None:
        given = dict(
            batch_sampler=batch_sampler,
            worker_init_fn=worker_init_fn,
            multiprocessing_context=multiprocessing_context,
            generator=generator,
        )
        order = _clip_order(dataset, sampler, shuffle, given)
        rank, world_size = order.placement()
        config = LoaderConfig.from_options(
            **asdict(order.sampling()),
            batch_size=batch_size,
            drop_last=drop_last,
            transform=dataset.transform,
            num_workers=num_workers,
            rank=rank,
            world_size=world_size,
            **_default_options(dataset, options, timeout=timeout, prefetch_factor=prefetch_factor),
        )
        self._order = order
        super().__init__(dataset.videos, config=config)
        self.kinetics = dataset
        self.sampler = sampler
        self.collate_fn = collate_fn
        self.pin_memory = _pin(check_bool("pin_memory", pin_memory), self.config.device)
        order.attach(self)

    def rank_plan(self, epoch: int, rank: int, world_size: int) -> ClipPlan:
        """The clips torchvision's loader reads in ``epoch`` on ``rank``: the sampler's window numbers, the
        rank's share of them, each window's frames on the grid."""
        numbers = self._order.numbers(epoch, self.config.seed)
        return self._order.video_clips.plan(numbers[self._order.rows(len(numbers), rank, world_size)])

    def __iter__(self) -> Iterator[Any]:
        batches = super().__iter__()
        try:
            for batch in batches:
                out = batch if self.collate_fn is None else self.collate_fn(_clip_items(batch))
                yield pinned(out) if self.pin_memory else out
        finally:
            batches.close()  # type: ignore[attr-defined]


def _clip_order(dataset: Any, sampler: Any, shuffle: bool | None, given: dict[str, Any]) -> ClipSampler:
    """The clip choice: the sampler, or without one every window of the dataset's grid. Refuses what torch's
    DataLoader takes but vidloader has no meaning for, rather than ignore it."""
    if not isinstance(dataset, Kinetics):
        check_ours(dataset, what="dataset", expected="vidloader.compat.torchvision.Kinetics")
    for name in _UNSUPPORTED:
        if given[name] is not None:
            raise ConfigError(f"{name}= has no vidloader equivalent; leave it out (see docs/migrating.md)")
    if sampler is None:
        return AllWindows(dataset.video_clips, bool(shuffle))
    if shuffle:
        raise ConfigError("sampler option is mutually exclusive with shuffle")
    if not isinstance(sampler, ClipSampler):
        raise ConfigError(
            f"sampler must be a vidloader.compat.torchvision clip sampler, got {type(sampler).__name__}"
        )
    if sampler.video_clips is not dataset.video_clips:
        # Its window numbers index another grid: torchvision would read other clips than it meant.
        raise ConfigError("the sampler was made over another dataset's video_clips; pass dataset.video_clips")
    return sampler


def _pin(pin_memory: bool, device: torch.device) -> bool:
    """Whether the loop's batches are to be pinned here: asked for, delivered on the CPU and CUDA present.
    Without CUDA there is nothing to pin for: said once per process (torch's DataLoader warns too)."""
    global _warned_pin
    if pin_memory and not torch.cuda.is_available() and not _warned_pin:
        _warned_pin = True
        warnings.warn(
            "pin_memory=True has no effect: there is no CUDA device, so batches stay in ordinary memory",
            UserWarning,
            stacklevel=3,
        )
    return pin_memory and device.type == "cpu" and torch.cuda.is_available()


def _default_options(
    dataset: Kinetics, options: dict[str, Any], *, timeout: float, prefetch_factor: int | None
) -> dict[str, Any]:
    """``options`` with what torch's arguments and the dataset imply filled in where not given."""
    if timeout > 0:
        options.setdefault("decode_timeout", timeout)
    if prefetch_factor is not None:
        options.setdefault("prefetch", prefetch_factor)
    if dataset.transform is None:
        options.setdefault("output_layout", "NTCHW" if dataset.output_format == "TCHW" else "NTHWC")
    return options
