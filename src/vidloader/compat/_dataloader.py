"""``torch.utils.data.DataLoader``'s signature over VideoLoader, for a ``compat.torchvision.Kinetics``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import torch

from .._errors import ConfigError
from ..loader import LoaderConfig, VideoLoader
from ..sampling import SamplingConfig
from ._torchvision import DistributedSampler, Kinetics, _clip_items, _ClipSampler

_UNSUPPORTED = ("batch_sampler", "worker_init_fn", "multiprocessing_context", "generator")


class DataLoader(VideoLoader):
    """``torch.utils.data.DataLoader(dataset, batch_size, shuffle, sampler, num_workers, collate_fn, ...)``
    for a vidloader ``Kinetics``: a VideoLoader configured from torchvision's arguments.

    Batches are decoded by vidloader's workers (threads), the dataset's ``transform`` runs per clip on
    ``device`` (or batched and fused for a vidloader transform), and the result unpacks as ``video, target,
    video_idx``. With a ``collate_fn``, it is called on the batch's per-clip items ``(video, audio, label,
    video_idx)`` as torch's DataLoader would, and its result is what the loop gets.

    Args:
        dataset: a ``vidloader.compat.torchvision.Kinetics``.
        batch_size: clips per batch.
        shuffle: without a sampler, every window of the grid is a clip (``sampling="sliding"``), in random
            order if True; with a sampler, must be None or False (the sampler decides).
        sampler: ``RandomClipSampler``, ``UniformClipSampler`` or a ``DistributedSampler`` of one.
        num_workers: decode threads (0: decode on the iterating thread).
        collate_fn: see above.
        pin_memory: accepted; vidloader pins its host buffers itself when ``device`` is CUDA.
        drop_last: drop the last incomplete batch.
        timeout: seconds one clip may take to decode (vidloader's ``decode_timeout``; 0: its default).
        prefetch_factor: batches prepared ahead (vidloader's ``prefetch``).
        persistent_workers, pin_memory_device: accepted and not needed (workers live as long as the loader).
        **options: further ``VideoLoader`` arguments, e.g. ``device="cuda"``, ``resize=`` (needed when videos
            of one batch differ in frame size), ``backend=``, ``seed=`` (default: ``torch.initial_seed()``,
            so a run is as random as torchvision's unless torch is seeded).

    Raises:
        ConfigError: an argument torch's DataLoader takes that has no meaning here (``batch_sampler``,
            ``worker_init_fn``, ``multiprocessing_context``, ``generator``), or a bad value.
    """

    def __init__(
        self,
        dataset: Kinetics,
        batch_size: int = 1,
        shuffle: bool | None = None,
        sampler: _ClipSampler | None = None,
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
        _check_arguments(
            dataset,
            sampler,
            shuffle,
            dict(
                batch_sampler=batch_sampler,
                worker_init_fn=worker_init_fn,
                multiprocessing_context=multiprocessing_context,
                generator=generator,
            ),
        )
        sampling, placement = _clip_sampling(dataset, sampler, shuffle)
        config = LoaderConfig.from_options(
            **asdict(sampling),
            batch_size=batch_size,
            drop_last=drop_last,
            transform=dataset.transform,
            num_workers=num_workers,
            **placement,
            **_default_options(dataset, options, timeout=timeout, prefetch_factor=prefetch_factor),
        )
        super().__init__(dataset.videos, config=config)
        self.kinetics = dataset
        self.sampler = sampler
        self.collate_fn = collate_fn
        if sampler is not None:
            sampler.loader = self
            if isinstance(sampler, DistributedSampler):
                sampler.dataset.loader = self

    def __iter__(self) -> Iterator[Any]:
        batches = super().__iter__()
        if self.collate_fn is None:
            yield from batches
            return
        try:
            for batch in batches:
                yield self.collate_fn(_clip_items(batch))
        finally:
            batches.close()  # type: ignore[attr-defined]


def _check_arguments(
    dataset: Any, sampler: _ClipSampler | None, shuffle: bool | None, given: dict[str, Any]
) -> None:
    """Refuse what torch's DataLoader takes but vidloader has no meaning for, rather than ignore it."""
    if not isinstance(dataset, Kinetics):
        raise ConfigError(
            f"dataset must be a vidloader.compat.torchvision.Kinetics, got {type(dataset).__name__}"
        )
    for name in _UNSUPPORTED:
        if given[name] is not None:
            raise ConfigError(f"{name}= has no vidloader equivalent; leave it out (see docs/migrating.md)")
    if sampler is not None and shuffle:
        raise ConfigError("sampler option is mutually exclusive with shuffle")


def _clip_sampling(
    dataset: Kinetics, sampler: _ClipSampler | None, shuffle: bool | None
) -> tuple[SamplingConfig, dict[str, Any]]:
    """(the sampling config, the VideoLoader rank/placement arguments): the sampler's, or without one every
    window of the dataset's clip grid."""
    clips = dataset.video_clips
    if sampler is None:
        return clips.sampling(sampling="sliding", shuffle=bool(shuffle)), {}
    if not isinstance(sampler, _ClipSampler):
        raise ConfigError(
            f"sampler must be a vidloader.compat.torchvision clip sampler, got {type(sampler).__name__}"
        )
    return sampler.sampling(), sampler.placement()


def _default_options(
    dataset: Kinetics, options: dict[str, Any], *, timeout: float, prefetch_factor: int | None
) -> dict[str, Any]:
    """``options`` with what torch's arguments and the dataset imply filled in where not given."""
    options.setdefault("seed", torch.initial_seed() & (2**63 - 1))
    if timeout > 0:
        options.setdefault("decode_timeout", timeout)
    if prefetch_factor is not None:
        options.setdefault("prefetch", prefetch_factor)
    if dataset.transform is None:
        options.setdefault("output_layout", "NTCHW" if dataset.output_format == "TCHW" else "NTHWC")
    return options
