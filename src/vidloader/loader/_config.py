"""LoaderConfig: every VideoLoader option, each defined once (name, type, default, doc, the modes it applies
in), validated once and frozen. VideoLoader's signature, its docstring, its read-only attributes and
docs/api.md are all made from these fields."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch

from .._errors import ConfigError
from .._option import documented, option, refuse_ignored
from .._placement import check_device, rank_and_world
from .._seed import drawn_seed
from .._validate import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_opt_int,
    check_positive_float,
)
from ..backends import BACKENDS, AudioSpec, DecodeSettings, ResizeArg, check_resize
from ..sampling import SamplingConfig
from ..transforms import ClipTransform, TransformKind, as_clip_transform, output_layout_with

Layout = Literal["NCTHW", "NTCHW", "NTHWC"]
LAYOUTS: tuple[str, ...] = ("NCTHW", "NTCHW", "NTHWC")
DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16)
OnError = Literal["raise", "skip"]
ON_ERROR: tuple[str, ...] = ("raise", "skip")
WorkerType = Literal["thread", "process"]
WORKER_TYPES: tuple[str, ...] = ("thread", "process")


def _with_workers(c: LoaderConfig) -> bool:
    return c.num_workers > 0


_WHEN_SKIPPING: dict[str, Any] = {"applies": lambda c: c.on_error == "skip", "when": "with on_error='skip'"}


@documented
@dataclass(frozen=True, kw_only=True)
class LoaderConfig(SamplingConfig):
    """The options of a VideoLoader, the sampling ones included, checked at construction.

    ``VideoLoader(dataset, **options)`` builds one from its keywords; ``VideoLoader(dataset, config=...)``
    takes one as it is. Being a ``SamplingConfig``, it is what ``plan_epoch`` takes. Values are kept as
    given but normalised: ``device`` becomes a ``torch.device`` (``cuda`` -> ``cuda:N``), ``rank`` and
    ``world_size`` the resolved ints, ``output_layout`` the layout batches come out in (None with a
    transform that does not say; ``layout`` then reads NCTHW). An option given a non-default value in a
    mode that ignores it is refused.

    Raises:
        ConfigError: a value is of the wrong type or not among the allowed ones, contradicts another
            option, or has no effect in this mode (the message names the option and the value).
    """

    batch_size: int = option(
        doc="clips per batch (rows are ``batch_size * num_views`` with a multi-view transform)."
    )
    seed: int = option(
        None,
        doc="""base of every random choice (clip positions, shuffling, per-clip transform seeds). None
            (default): drawn once, here, from torch's initial seed, so runs differ unless torch was seeded
            (``torch.manual_seed(s)`` gives seed ``s``; the caller's random numbers are not moved); under
            ``torch.distributed`` with ``world_size > 1`` every rank takes rank 0's, shared through the process
            group's store (a rank whose rank 0 builds no such loader gets a ConfigError within a minute). ``loader.seed`` is the value in use; ``state_dict()`` records it and ``load_state_dict``
            takes the saved one in place of a drawn one, so a resumed run draws the same clips.""",
    )
    drop_last: bool = option(False, doc="leave out a last, smaller batch.")
    device: torch.device = option("cpu", doc='where batches are delivered: "cpu" or "cuda[:N]".')
    backend: str = option("auto", doc='"auto" (DALI on CUDA when it can run, else PyAV), "pyav" or "dali".')
    output_layout: Layout | None = option(
        None,
        doc="""\"NCTHW\" (default), "NTCHW" or "NTHWC" without a transform; with one it must be None or the
            transform's own ``layout`` (the transform decides; anything else is refused).""",
    )
    dtype: torch.dtype = option(
        torch.uint8,
        doc="""torch.uint8, or a float type (scaled to [0, 1]), without a transform; with one it must be
            uint8 (the default) or the transform's ``out_dtype`` (anything else is refused).""",
    )
    resize: ResizeArg = option(None, doc="None, a short side (int) or (height, width).")
    apply_rotation: bool = option(False, doc="apply the rotation in a file's display matrix.")
    transform: Callable[..., Any] | None = option(
        None,
        doc="""None, a batched vidloader transform (``TrainClipTransform``, ``EvalClipTransform``, or any
            ``fn(video_u8_BTHWC, *, seeds) -> tensor`` with ``num_views``), or a per-clip callable such as a
            torchvision v2 transform or ``weights.transforms()``, called per clip with uint8
            ``[T, C, H, W]`` on ``device`` (seeded per clip) and stacked; see
            ``vidloader.transforms.as_clip_transform`` (the config's ``clip_transform`` is the result).""",
    )
    transform_kind: TransformKind = option(
        "auto",
        doc='"auto" (read from the transform\'s marker or signature, once, here), "batched" or "per_clip".',
    )
    num_workers: int = option(2, doc="decode workers; 0 decodes one batch at a time with no prefetch thread.")
    worker_type: WorkerType = option(
        "thread",
        doc='"thread" or "process" (spawned: the script needs an ``if __name__ == "__main__":`` guard).',
        applies=_with_workers,
        when="with num_workers > 0",
    )
    prefetch: int = option(
        2, doc="batches made ahead of the caller.", applies=_with_workers, when="with num_workers > 0"
    )
    on_error: OnError = option(
        "raise",
        doc=""""raise" a ``DecodeError`` for a clip that fails, or "skip" it (counted in ``stats``); an
            unreachable store or decode workers that cannot start raise under both.""",
    )
    max_skip_fraction: float = option(
        0.05,
        doc="""the share of a pass's planned clips (this rank's epoch, or its rest after a resume), and of the
            dataset's files, that may be lost; past it ``SkipBudgetError`` (1.0: no bound).""",
        **_WHEN_SKIPPING,
    )
    max_consecutive_failures: int | None = option(
        16,
        doc="""files that may fail in a row with no clip decoded between them (an outage fails every file);
            past it ``SkipBudgetError`` (None: no bound).""",
        **_WHEN_SKIPPING,
    )
    decode_timeout: float = option(
        300.0,
        doc="""seconds a batch's decode may take (one deadline for the whole batch, counted from when the
            loader starts waiting for it and its workers are up); decodes still running then are abandoned,
            their workers replaced, and their clips fail as a ``DecodeError``; clips that could not start
            because every worker was stuck get a fresh deadline.""",
    )
    shared_decode: bool = option(
        True,
        doc="""decode clips of one video that one pass serves together (PyAV): within a batch, and clips
            of the next ``prefetch`` batches (at least one) with an earlier batch's pass, whose frames are
            then held until their own batch is made (at most that many batches of clips; never a change in
            which clips a batch holds or their frames).""",
    )
    rank: int = option(None, doc="this process's shard (None: torch.distributed's rank, else 0).")
    world_size: int = option(None, doc="the number of shards (None: torch.distributed's world size, else 1).")
    audio: AudioSpec | None = option(None, doc="an ``AudioSpec`` to deliver audio with each clip, or None.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("batch_size", self.batch_size, minimum=1)
        check_opt_int("seed", self.seed, minimum=0)
        check_bool("drop_last", self.drop_last)
        self._set("device", check_device(self.device))
        check_choice("backend", self.backend, BACKENDS)
        if self.output_layout is not None:
            check_choice("output_layout", self.output_layout, LAYOUTS)
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"dtype={self.dtype!r} is not allowed; choose one of {[str(d) for d in DTYPES]}"
            )
        self._set("resize", check_resize(self.resize))
        self._set("apply_rotation", bool(self.apply_rotation))
        # Batched (vidloader) or per-clip (torchvision) transform: decided once, here.
        self._set("_clip_transform", as_clip_transform(self.transform, self.transform_kind))
        layout = output_layout_with(self.clip_transform, self.dtype, self.output_layout, self.resize)
        self._set("output_layout", layout)
        check_int("num_workers", self.num_workers, minimum=0)
        check_choice("worker_type", self.worker_type, WORKER_TYPES)
        check_int("prefetch", self.prefetch, minimum=1)
        check_choice("on_error", self.on_error, ON_ERROR)
        self._set("max_skip_fraction", check_fraction("max_skip_fraction", self.max_skip_fraction))
        if self.max_consecutive_failures is not None:
            check_int("max_consecutive_failures", self.max_consecutive_failures, minimum=0)
        self._set(
            "decode_timeout",
            check_positive_float("decode_timeout", self.decode_timeout, what="positive seconds"),
        )
        check_bool("shared_decode", self.shared_decode)
        self._set_shard()
        if self.seed is None:
            self._set("seed", drawn_seed(self.world_size))
            self._set("_seed_drawn", True)
        if self.audio is not None and not isinstance(self.audio, AudioSpec):
            raise ConfigError(f"audio must be a vidloader.AudioSpec or None, got {type(self.audio).__name__}")
        refuse_ignored(self, [f for f in self.__dataclass_fields__])

    @classmethod
    def from_options(cls, **options: Any) -> LoaderConfig:
        """A config from keyword options, as ``VideoLoader(dataset, **options)`` takes them.

        Args:
            **options: the fields (see the class).

        Returns:
            The validated config.

        Raises:
            ConfigError: an unknown option (named, with the closest known one and the whole list), or a bad
                value (see the class).
        """
        known = [f.name for f in fields(cls)]
        for name in options:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ConfigError(f"unknown option {name!r}; {hint}the options are {', '.join(known)}")
        return cls(**options)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # frozen: normalised once, in __post_init__

    def _set_shard(self) -> None:
        rank, world_size = rank_and_world(self.rank, self.world_size)
        check_int("rank", rank, minimum=0)
        check_int("world_size", world_size, minimum=1)
        if not rank < world_size:
            raise ConfigError(f"rank={rank} must be in [0, world_size={world_size})")
        self._set("rank", rank)
        self._set("world_size", world_size)

    @property
    def seed_drawn(self) -> bool:
        """Whether ``seed`` was drawn here (``seed=None``) rather than given."""
        return bool(self.__dict__.get("_seed_drawn", False))

    @property
    def clip_transform(self) -> ClipTransform | None:
        """``transform`` under the loader's batched contract (a per-clip one wrapped), or None."""
        return self.__dict__["_clip_transform"]

    @property
    def layout(self) -> str:
        """The layout batches come out in: ``output_layout``, resolved against the transform."""
        return self.output_layout or "NCTHW"

    @property
    def inline(self) -> bool:
        """num_workers=0: one decode at a time and no prefetch thread (batches are made in the caller)."""
        return self.num_workers == 0

    @property
    def decode_settings(self) -> DecodeSettings:
        """What every clip is decoded with (resize, rotation, audio), for the backend."""
        return DecodeSettings(resize=self.resize, apply_rotation=self.apply_rotation, audio=self.audio)

    def state_fields(self) -> dict[str, Any]:
        """What a saved loader state must agree on to resume: the sampling, seed and batching. Not the world
        size: a state resumes at another one (elastic, see ``loader._state``).

        Returns:
            A JSON-safe dict, compared field by field on ``load_state_dict``.
        """
        cfg = self.to_json()
        cfg.update(seed=self.seed, batch_size=self.batch_size, drop_last=self.drop_last)
        return cfg


def loader_config(config: LoaderConfig | None, options: dict[str, Any]) -> LoaderConfig:
    """A VideoLoader's config: ``config`` as given, or one made from its keyword ``options``.

    Raises:
        ConfigError: both were given, ``config`` is not a LoaderConfig, or an option is unknown or bad.
    """
    if config is None:
        return LoaderConfig.from_options(**options)
    if options:
        raise ConfigError(
            f"give config= or keyword options, not both (got config= and {', '.join(sorted(options))})"
        )
    if not isinstance(config, LoaderConfig):
        raise ConfigError(f"config must be a vidloader.LoaderConfig, got {type(config).__name__}")
    return config
