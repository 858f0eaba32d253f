"""LoaderConfig: every VideoLoader option but the dataset, validated once and frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .._errors import ConfigError
from .._validate import check_choice, check_int
from ..backends import BACKENDS, AudioSpec, ResizeArg, check_resize
from ..sampling import SamplingConfig, ShortVideo
from ..transforms import ClipTransform, as_clip_transform
from ._options import resolve_output_options

Layout = Literal["NCTHW", "NTCHW", "NTHWC"]
LAYOUTS: tuple[str, ...] = ("NCTHW", "NTCHW", "NTHWC")
DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16)
OnError = Literal["raise", "skip"]
ON_ERROR: tuple[str, ...] = ("raise", "skip")
WorkerType = Literal["thread", "process"]
WORKER_TYPES: tuple[str, ...] = ("thread", "process")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")


def _check_device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        # torch's own error for an unknown device string lists every backend it knows, not ours.
        raise ConfigError(f"device={str(device)!r} is not allowed; choose 'cpu' or 'cuda[:N]'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={str(device)!r} is not allowed; choose 'cpu' or 'cuda[:N]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def dist_defaults(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size): the ones given, else torch.distributed's when it is initialised, else (0, 1).

    Args:
        rank: this process's rank, or None.
        world_size: the number of ranks, or None.

    Returns:
        The resolved ``(rank, world_size)``.
    """
    if rank is not None and world_size is not None:
        return rank, world_size
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return (dist.get_rank() if rank is None else rank), (
            dist.get_world_size() if world_size is None else world_size
        )
    return (0 if rank is None else rank), (1 if world_size is None else world_size)


@dataclass(frozen=True, kw_only=True)
class LoaderConfig:
    """The options of a VideoLoader (all but the dataset), checked at construction.

    ``VideoLoader(dataset, **kwargs)`` builds one with ``LoaderConfig.from_kwargs(**kwargs)``; the fields
    carry the same names and meaning as VideoLoader's keywords (see its docstring), with the sampling
    keywords gathered in ``sampling`` and ``device`` resolved to a ``torch.device`` (``cuda`` -> ``cuda:N``).

    Raises:
        ConfigError: a value is of the wrong type or not among the allowed ones (the message names both).
    """

    batch_size: int
    sampling: SamplingConfig
    seed: int = 0
    drop_last: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str = "auto"
    output_layout: Layout | None = None
    dtype: torch.dtype = torch.uint8
    resize: ResizeArg = None
    apply_rotation: bool = False
    transform: ClipTransform | None = None
    transform_kind: str = "auto"
    num_workers: int = 2
    worker_type: WorkerType = "thread"
    prefetch: int = 2
    on_error: OnError = "raise"
    decode_timeout: float = 300.0
    shared_decode: bool = True
    rank: int = 0
    world_size: int = 1
    audio: AudioSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sampling, SamplingConfig):
            raise ConfigError(f"sampling must be a SamplingConfig, got {type(self.sampling).__name__}")
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("seed", self.seed, minimum=0)
        _check_bool("drop_last", self.drop_last)
        object.__setattr__(self, "device", _check_device(self.device))
        check_choice("backend", self.backend, BACKENDS)
        if self.output_layout is not None:
            check_choice("output_layout", self.output_layout, LAYOUTS)
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"dtype={self.dtype!r} is not allowed; choose one of {[str(d) for d in DTYPES]}"
            )
        object.__setattr__(self, "resize", check_resize(self.resize))
        object.__setattr__(self, "apply_rotation", bool(self.apply_rotation))
        # Batched (vidloader) or per-clip (torchvision) transform: decided once, here.
        object.__setattr__(self, "transform", as_clip_transform(self.transform, self.transform_kind))
        # dtype / output_layout given with a transform must agree with it (else refused, saying which wins).
        layout = resolve_output_options(self.transform, self.dtype, self.output_layout)
        object.__setattr__(self, "output_layout", layout)
        check_int("num_workers", self.num_workers, minimum=0)
        check_choice("worker_type", self.worker_type, WORKER_TYPES)
        check_int("prefetch", self.prefetch, minimum=1)
        check_choice("on_error", self.on_error, ON_ERROR)
        timeout = self.decode_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"decode_timeout must be positive seconds, got {timeout!r}")
        object.__setattr__(self, "decode_timeout", float(timeout))
        _check_bool("shared_decode", self.shared_decode)
        check_int("rank", self.rank, minimum=0)
        check_int("world_size", self.world_size, minimum=1)
        if not self.rank < self.world_size:
            raise ConfigError(f"rank={self.rank} must be in [0, world_size={self.world_size})")
        if self.audio is not None and not isinstance(self.audio, AudioSpec):
            raise ConfigError(f"audio must be a vidloader.AudioSpec or None, got {type(self.audio).__name__}")

    @classmethod
    def from_kwargs(
        cls,
        *,
        frames_per_clip: int,
        frame_stride: int = 1,
        target_fps: float | None = None,
        clip_step: int | None = None,
        sampling: str = "random",
        clips_per_video: int = 1,
        clips_per_video_mode: str = "exact",
        shuffle: bool = True,
        short_video: ShortVideo = "pad",
        rank: int | None = None,
        world_size: int | None = None,
        **options: Any,
    ) -> LoaderConfig:
        """A config from VideoLoader's flat keywords.

        Args:
            frames_per_clip, frame_stride, target_fps, clip_step, sampling, clips_per_video,
                clips_per_video_mode, shuffle, short_video: the clip sampling (see ``SamplingConfig``).
            rank, world_size: None takes torch.distributed's when it is initialised, else (0, 1).
            **options: the other fields of LoaderConfig.

        Returns:
            The validated config.

        Raises:
            ConfigError: a bad value (see the class).
        """
        samp = SamplingConfig(
            frames_per_clip=frames_per_clip,
            frame_stride=frame_stride,
            target_fps=target_fps,
            clip_step=clip_step,
            sampling=sampling,  # type: ignore[arg-type]
            clips_per_video=clips_per_video,
            clips_per_video_mode=clips_per_video_mode,  # type: ignore[arg-type]
            shuffle=shuffle,
            short_video=short_video,
        )
        rank, world_size = dist_defaults(rank, world_size)
        return cls(sampling=samp, rank=rank, world_size=world_size, **options)

    @property
    def layout(self) -> str:
        """The layout batches come out in: ``output_layout``, resolved against the transform."""
        return self.output_layout or "NCTHW"

    @property
    def inline(self) -> bool:
        """num_workers=0: one decode at a time and no prefetch thread (batches are made in the caller)."""
        return self.num_workers == 0

    def state_fields(self) -> dict[str, Any]:
        """What a saved loader state must agree on to resume: the sampling, seed and batching. Not the world
        size: a state resumes at another one (elastic, see ``loader._state``).

        Returns:
            A JSON-safe dict, compared field by field on ``load_state_dict``.
        """
        cfg = self.sampling.to_json()
        cfg.update(seed=self.seed, batch_size=self.batch_size, drop_last=self.drop_last)
        return cfg


def _option(name: str) -> property:
    return property(lambda self: getattr(self.config, name), doc=f"The ``{name}`` option (read-only).")


class ConfigAttributes:
    """Read-only attributes mirroring a ``config: LoaderConfig`` (``loader.batch_size`` and so on)."""

    config: LoaderConfig

    sampling: SamplingConfig = _option("sampling")  # type: ignore[assignment]
    batch_size: int = _option("batch_size")  # type: ignore[assignment]
    seed: int = _option("seed")  # type: ignore[assignment]
    drop_last: bool = _option("drop_last")  # type: ignore[assignment]
    device: torch.device = _option("device")  # type: ignore[assignment]
    output_layout: str = _option("output_layout")  # type: ignore[assignment]
    dtype: torch.dtype = _option("dtype")  # type: ignore[assignment]
    resize = _option("resize")
    apply_rotation: bool = _option("apply_rotation")  # type: ignore[assignment]
    transform = _option("transform")
    num_workers: int = _option("num_workers")  # type: ignore[assignment]
    worker_type: str = _option("worker_type")  # type: ignore[assignment]
    prefetch: int = _option("prefetch")  # type: ignore[assignment]
    on_error: str = _option("on_error")  # type: ignore[assignment]
    decode_timeout: float = _option("decode_timeout")  # type: ignore[assignment]
    shared_decode: bool = _option("shared_decode")  # type: ignore[assignment]
    rank: int = _option("rank")  # type: ignore[assignment]
    world_size: int = _option("world_size")  # type: ignore[assignment]
    audio = _option("audio")
