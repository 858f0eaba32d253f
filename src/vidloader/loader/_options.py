"""Loader options that only mean something together: refused at construction when they contradict.

A transform decides the dtype and layout of what the loader yields (it writes the model input in one
pass), so the loader's own ``dtype`` / ``output_layout`` cannot also apply. Rather than ignoring them, the
loader accepts them only when they agree with the transform, and otherwise says which to set where.
"""

from __future__ import annotations

from typing import Any

import torch

from .._errors import ConfigError


def resolve_output_options(transform: Any, dtype: torch.dtype, output_layout: str | None) -> str:
    """The layout the loader yields; raises when ``dtype`` / ``output_layout`` contradict the transform.

    Without a transform ``output_layout=None`` means "NCTHW". With one, ``dtype`` must be the default
    torch.uint8 or equal the transform's ``out_dtype``, and ``output_layout`` None or the transform's
    ``layout``.

    Raises:
        ConfigError: naming both values and how to combine them.
    """
    if transform is None:
        return "NCTHW" if output_layout is None else output_layout
    name = type(transform).__name__
    t_dtype = getattr(transform, "out_dtype", None)
    t_layout = getattr(transform, "layout", None)
    if dtype != torch.uint8 and dtype != t_dtype:
        has = f"yields {t_dtype}" if t_dtype is not None else "decides its own output dtype"
        raise ConfigError(
            f"dtype={dtype} conflicts with transform={name}, which {has}: with a transform the transform's "
            f"dtype wins; set it there (e.g. {name}(..., out_dtype={dtype})) and leave VideoLoader's dtype at "
            "its default (dtype applies only without a transform)"
        )
    if output_layout is not None and output_layout != t_layout:
        has = f"yields {t_layout!r}" if t_layout is not None else "decides its own output layout"
        raise ConfigError(
            f"output_layout={output_layout!r} conflicts with transform={name}, which {has}: with a transform "
            f"the transform's layout wins; set it there (e.g. {name}(..., layout={output_layout!r})) and "
            "leave VideoLoader's output_layout unset (it applies only without a transform)"
        )
    return t_layout if isinstance(t_layout, str) else "NCTHW"
