"""Stopping a decode nobody will read: a worker runs each call under ``run_until(stop, ...)`` and the
decode loops call ``raise_if_stopped()`` once per packet, so a clip whose loader pass has ended (a
``break`` out of the loop, a closed iterator) costs at most one more packet instead of the rest of its
decode, on a worker the next pass then gets at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_current = threading.local()


class DecodeStopped(Exception):
    """The pass that asked for this decode has ended; what is left of it is not needed. Not a
    ``VideoError``: it says nothing about the file and is never counted as a failed clip."""


def run_until(stop: threading.Event, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on this thread, stopped (``DecodeStopped``) at its next packet once ``stop`` is set.

    Args:
        stop: the event that ends the call.
        fn: the decode call.
        *args: its arguments.

    Returns:
        What ``fn`` returns.
    """
    outer = getattr(_current, "stop", None)
    _current.stop = stop
    try:
        return fn(*args)
    finally:
        _current.stop = outer


def raise_if_stopped() -> None:
    """Raise ``DecodeStopped`` when this thread's call runs under a ``stop`` that is set.

    Raises:
        DecodeStopped: the call's pass has ended.
    """
    stop = getattr(_current, "stop", None)
    if stop is not None and stop.is_set():
        raise DecodeStopped("the loader pass that asked for this decode has ended")
