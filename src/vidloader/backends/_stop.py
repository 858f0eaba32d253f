"""Stopping a decode nobody will read: a worker runs each call under ``run_until(stop, ...)`` and the
decode loops call ``raise_if_stopped()`` once per packet, so a clip whose loader pass has ended (a
``break`` out of the loop, a closed iterator) costs at most one more packet instead of the rest of its
decode, on a worker the next pass then gets at once.

A thread's ``stop`` is a ``threading.Event``. A worker process cannot read one, so its calls run under a
``SharedStop``: a slot of a small array of flags in shared memory that its pool hands every worker when it
starts (``use_stop_flags``) and sets when the pass ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

_current = threading.local()
_flags: Any = None  # in a worker process: its pool's stop flags (``use_stop_flags``)


class StopSignal(Protocol):
    """What ``run_until`` reads: a ``threading.Event`` in this process, a ``SharedStop`` in a worker."""

    def is_set(self) -> bool: ...


def use_stop_flags(flags: Any) -> None:
    """In a worker process, as it starts: where its calls' ``SharedStop`` slots are read.

    Args:
        flags: the pool's shared flags (a ``multiprocessing`` byte array; non-zero: that slot's pass ended).
    """
    global _flags
    _flags = flags


@dataclass(frozen=True)
class SharedStop:
    """A stop a worker process reads: slot ``slot`` of the flags its pool gave it, set (non-zero) by the
    main process once the pass that asked for the call has ended."""

    slot: int

    def is_set(self) -> bool:
        return _flags is not None and _flags[self.slot] != 0


class DecodeStopped(Exception):
    """The pass that asked for this decode has ended; what is left of it is not needed. Not a
    ``VideoError``: it says nothing about the file and is never counted as a failed clip."""


def run_until(stop: StopSignal, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on this thread, stopped (``DecodeStopped``) at its next packet once ``stop`` is set.

    Args:
        stop: what ends the call once set (a ``threading.Event``, or in a worker process a
            ``SharedStop``).
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
