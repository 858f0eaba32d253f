"""Loader state: JSON-safe, with the configuration it was made under, checked field by field on load."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .._errors import StateMismatchError

STATE_VERSION = 1


def dataset_fingerprint(items: list[tuple[str, int, int]]) -> str:
    h = hashlib.sha256()
    for path, first, n in items:
        h.update(f"{path}\0{first}\0{n}\n".encode())
    return h.hexdigest()[:16]


def make_state(*, epoch: int, batches_yielded: int, config: dict[str, Any], dataset: str) -> dict[str, Any]:
    state = {
        "version": STATE_VERSION,
        "epoch": epoch,
        "batches_yielded": batches_yielded,
        "config": config,
        "dataset": dataset,
    }
    json.dumps(state)  # fail here, not in the user's checkpoint code, if something is not JSON-safe
    return state


def check_state(state: dict[str, Any], *, config: dict[str, Any], dataset: str) -> tuple[int, int]:
    """Validate a state against this loader; return (epoch, batches_yielded)."""
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise StateMismatchError(
            f"not a vidloader loader state of version {STATE_VERSION} (got version {state.get('version') if isinstance(state, dict) else type(state).__name__})"
        )
    saved = state.get("config", {})
    for key in sorted(set(saved) | set(config)):
        a, b = saved.get(key), config.get(key)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            raise StateMismatchError(
                f"cannot resume: {key} was {a!r} when the state was saved but is {b!r} now"
            )
    if state.get("dataset") != dataset:
        raise StateMismatchError(
            "cannot resume: the dataset differs (its videos, segments or frame counts changed since the state was saved)"
        )
    epoch, done = state.get("epoch"), state.get("batches_yielded")
    if not isinstance(epoch, int) or epoch < 0 or not isinstance(done, int) or done < 0:
        raise StateMismatchError(f"state has a bad epoch/batches_yielded: {epoch!r}/{done!r}")
    return epoch, done
