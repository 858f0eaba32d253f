"""What ``VideoLoader(transform=...)`` accepts: a batched vidloader transform, or any per-clip callable
(a torchvision v2 transform, ``weights.transforms()``, a function), adapted once at construction."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import torch

from .._errors import ConfigError
from ..ops import RaggedClips
from ._boxes import check_seeds

TransformKind = Literal["auto", "batched", "per_clip"]
TRANSFORM_KINDS: tuple[str, ...] = ("auto", "batched", "per_clip")

# A class attribute that marks a batched transform whose signature alone would not say so.
BATCHED_MARKER = "__vidloader_batched__"

_CONTRACTS = (
    "a transform is either batched, `transform(video, *, seeds) -> tensor` with video uint8 [B, T, H, W, C] "
    "on the loader's device, one int seed per clip and rows clip-major (`num_views` per clip; mark it with a "
    f"class attribute `{BATCHED_MARKER} = True` or a `seeds` keyword parameter), or per clip, "
    "`transform(clip) -> tensor` with clip uint8 [T, C, H, W] (a torchvision tv_tensors.Video), like a "
    "torchvision v2 transform or `weights.transforms()`"
)


class ClipTransform(Protocol):
    """The batched contract the loader calls: uint8 ``[B, T, H, W, C]`` on the device plus one seed per clip
    -> model input, ``num_views`` rows per clip (clip-major)."""

    num_views: int

    def __call__(self, video: torch.Tensor | RaggedClips, *, seeds: list[int]) -> torch.Tensor: ...


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    # nn.Module.__call__ is (*args, **kwargs); what a module takes is its forward's signature.
    target = getattr(fn, "forward", fn) if isinstance(fn, torch.nn.Module) else fn
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):  # builtins and C callables without introspectable signatures
        return None


def transform_kind(fn: Callable[..., Any]) -> Literal["batched", "per_clip"]:
    """Which contract ``fn`` follows, read from its marker or its signature (never by calling it).

    Args:
        fn: the callable given as ``transform=``.

    Returns:
        "batched" if ``fn`` carries the marker attribute or takes a ``seeds`` keyword; "per_clip" if it can
        be called with exactly one positional argument.

    Raises:
        ConfigError: ``fn`` fits neither contract (the message states both).
    """
    if getattr(fn, BATCHED_MARKER, False) is True:
        return "batched"
    sig = _signature(fn)
    if sig is None:
        raise ConfigError(
            f"cannot tell which transform contract {fn!r} follows (its signature is not readable); pass "
            f"transform_kind='batched' or 'per_clip'. {_CONTRACTS}"
        )
    params = list(sig.parameters.values())
    seeds = sig.parameters.get("seeds")
    if seeds is not None and seeds.kind in (seeds.KEYWORD_ONLY, seeds.POSITIONAL_OR_KEYWORD):
        return "batched"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    required_kw = [p for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    var_positional = any(p.kind == p.VAR_POSITIONAL for p in params)
    takes_one = len(required) == 1 or (not required and (bool(positional) or var_positional))
    if takes_one and not required_kw:
        return "per_clip"
    raise ConfigError(f"transform {fn!r} with signature {sig} fits neither contract: {_CONTRACTS}")


def _to_video(clip: torch.Tensor) -> torch.Tensor:
    """The clip as a torchvision ``tv_tensors.Video`` when torchvision is installed (v2 transforms then
    treat all T frames as one video), else as it is."""
    try:
        from torchvision import tv_tensors
    except ImportError:
        return clip
    return tv_tensors.Video(clip)


class PerClipTransform:
    """Runs a per-clip callable over a batch, as the loader's batched transform contract.

    Each clip reaches ``fn`` as torchvision's video transforms expect it: uint8 ``[T, C, H, W]`` (contiguous,
    a ``tv_tensors.Video`` when torchvision is installed) on the loader's device. The results are stacked
    into the batch, so every clip must come back with the same shape. Random draws inside ``fn`` (torchvision
    draws from torch's global generator) are made under ``torch.manual_seed(seed)`` with the clip's seed
    inside ``torch.random.fork_rng``: a clip gets the same augmentation whatever the batch it lands in, the
    worker count or the thread, and the caller's global RNG state is left untouched.

    Args:
        fn: the per-clip callable, ``fn(clip) -> tensor``.

    Raises:
        ConfigError: ``fn`` is not callable.
    """

    num_views: int = 1
    __vidloader_batched__ = True

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if not callable(fn):
            raise ConfigError(f"transform must be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, video: torch.Tensor | RaggedClips, *, seeds: Sequence[int]) -> torch.Tensor:
        """Apply ``fn`` to every clip of ``video`` and stack the results.

        Args:
            video: uint8 ``[B, T, H, W, C]``, or a ``RaggedClips`` batch whose clips differ in frame size
                (each clip then reaches ``fn`` at its own decoded size, as torchvision expects).
            seeds: one int per clip.

        Returns:
            ``torch.stack([fn(clip_i) for i in range(B)])`` as a plain tensor.

        Raises:
            ConfigError: wrong seeds, ``fn`` returned something that is not a tensor, or clips came back
                with different shapes.
        """
        seed_list = check_seeds(seeds, len(video))
        if isinstance(video, RaggedClips):
            clips = [video.clip(i).permute(0, 3, 1, 2).contiguous() for i in range(len(video))]
        else:
            clips = list(video.permute(0, 1, 4, 2, 3).contiguous())  # one copy per batch, [B, T, C, H, W]
        out = []
        for clip, seed in zip(clips, seed_list, strict=True):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                y = self.fn(_to_video(clip))
            if not isinstance(y, torch.Tensor):
                raise ConfigError(
                    f"transform {self.fn!r} returned {type(y).__name__}; it must return a tensor"
                )
            out.append(y.as_subclass(torch.Tensor))
        shapes = {tuple(y.shape) for y in out}
        if len(shapes) > 1:
            raise ConfigError(
                f"transform {self.fn!r} returned clips of different shapes {sorted(shapes)}; the loader stacks "
                "them into one batch, so they must match (end the transform with a fixed-size crop or resize)"
            )
        return torch.stack(out)

    def __repr__(self) -> str:
        return f"PerClipTransform({self.fn!r})"


def as_clip_transform(fn: Callable[..., Any] | None, kind: str = "auto") -> ClipTransform | None:
    """``fn`` as the loader's batched contract: returned as is if batched, wrapped in PerClipTransform if
    per clip. Decided once, here, from ``kind`` or (for "auto") from ``transform_kind(fn)``.

    Args:
        fn: a transform or None.
        kind: "auto", "batched" or "per_clip".

    Returns:
        A callable following the batched contract, or None for ``fn=None``.

    Raises:
        ConfigError: ``kind`` is not one of the choices, ``fn`` is not callable, or under "auto" fits
            neither contract.
    """
    if kind not in TRANSFORM_KINDS:
        raise ConfigError(
            f"transform_kind={kind!r} is not allowed; choose one of {', '.join(map(repr, TRANSFORM_KINDS))}"
        )
    if fn is None:
        return None
    if not callable(fn):
        raise ConfigError(f"transform must be callable, got {type(fn).__name__}. {_CONTRACTS}")
    resolved = transform_kind(fn) if kind == "auto" else kind
    if resolved == "per_clip":
        return PerClipTransform(fn)
    return fn  # type: ignore[return-value]
