"""What a clip transform decides about the loader's output (dtype, layout, size), checked against the
loader options that would say the same: one of them must win, and the loader never silently ignores one."""

from __future__ import annotations

from typing import Any

import torch

from .._errors import ConfigError

__all__ = ["output_layout_with"]


def output_layout_with(transform: Any, dtype: torch.dtype, layout: str | None, resize: Any) -> str | None:
    """The layout the loader yields, as ``output_layout`` holds it (None: a transform that does not say;
    resolving it again gives the same value, so ``dataclasses.replace`` keeps a config valid). A transform
    decides the dtype, layout and size of what the loader yields (it writes the model input in one pass):
    ``dtype`` must be the default torch.uint8 or its ``out_dtype``, ``output_layout`` None or its ``layout``,
    ``resize`` None under a transform with its own ``size`` (else every frame is resized twice: 64 -> 112
    upsamples what the first resize threw away). Rather than ignore them, the loader says which to set where.

    Raises:
        ConfigError: naming both values and how to combine them.
    """
    if transform is None:
        return "NCTHW" if layout is None else layout
    name = type(transform).__name__
    t_dtype, t_layout, t_size = (getattr(transform, a, None) for a in ("out_dtype", "layout", "size"))
    if dtype != torch.uint8 and dtype != t_dtype:
        has = f"yields {t_dtype}" if t_dtype is not None else "decides its own output dtype"
        raise ConfigError(
            f"dtype={dtype} conflicts with transform={name}, which {has}: with a transform the transform's "
            f"dtype wins; set it there (e.g. {name}(..., out_dtype={dtype})) and leave VideoLoader's dtype at "
            "its default (dtype applies only without a transform)"
        )
    if layout is not None and layout != t_layout:
        has = f"yields {t_layout!r}" if t_layout is not None else "decides its own output layout"
        raise ConfigError(
            f"output_layout={layout!r} conflicts with transform={name}, which {has}: with a transform "
            f"the transform's layout wins; set it there (e.g. {name}(..., layout={layout!r})) and "
            "leave VideoLoader's output_layout unset (it applies only without a transform)"
        )
    if resize is not None and t_size is not None:
        raise ConfigError(
            f"resize={resize!r} stacks with transform={name}, which resizes to its own size {t_size!r}: "
            f"every frame would be resized twice (decoded at {resize!r}, then resized again to {t_size!r}). "
            f"Give the resize to the transform ({name}(size=..., resize={resize!r}) resizes and crops in one "
            "pass from the decoded frames) and leave VideoLoader's resize at None"
        )
    return t_layout if isinstance(t_layout, str) else None  # its own: ``layout`` reads NCTHW
