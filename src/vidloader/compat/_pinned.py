"""``pin_memory=True`` of torch's DataLoader: what the loop gets, its tensors copied to pinned memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch


def pinned(data: Any) -> Any:
    """``data`` with every tensor in it in pinned (page-locked) host memory, as torch's DataLoader pins a
    batch: tensors, the fields of a dataclass (a ``ClipBatch``), and lists, tuples (named ones too) and
    mappings of them, recursively; anything else as it is.

    Args:
        data: a batch, or what a ``collate_fn`` made of one.

    Returns:
        The same structure, its tensors pinned copies.
    """
    if isinstance(data, torch.Tensor):
        return data.pin_memory()
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        values = {f.name: pinned(getattr(data, f.name)) for f in dataclasses.fields(data) if f.init}
        return dataclasses.replace(data, **values)
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # a namedtuple
        return type(data)(*(pinned(x) for x in data))
    if isinstance(data, (list, tuple)):
        return type(data)(pinned(x) for x in data)
    if isinstance(data, Mapping):
        return {k: pinned(v) for k, v in data.items()}
    return data
