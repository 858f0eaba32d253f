"""The prefetch thread: runs a pass's producer ahead of the caller, at most ``depth`` items ahead.

Every wait here has a timeout: the producer re-checks ``stop`` while the queue is full, the consumer
re-checks that the producer is alive while the queue is empty, and closing joins the thread."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("vidloader")
POLL_S = 0.1
_END = object()


class Prefetcher:
    """Iterate ``produced`` on a background thread.

    Args:
        produced: the producer; it must check ``stop`` in its own waits (the scheduler does).
        depth: items made ahead of the consumer.
        stop: set by ``close``; the producer stops at its next check.
        join_timeout: how long ``close`` waits for the thread (it can only be inside user code, a
            transform or a DALI call, by then).
    """

    def __init__(self, produced: Iterator[Any], *, depth: int, stop: threading.Event, join_timeout: float):
        self._produced = produced
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = stop
        self._join_timeout = join_timeout
        self._thread = threading.Thread(target=self._run, name="vidloader-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        # Never block for good: once the caller has gone (stop), nothing will empty the queue.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._produced:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            # Closed here, on the thread running it: closing a generator that another thread is
            # executing raises "ValueError: generator already executing".
            self._produced.close()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(
                        "vidloader: the prefetch thread ended without finishing the pass"
                    ) from None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the producer and wait for its thread to end."""
        self._stop.set()
        deadline = time.monotonic() + self._join_timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(timeout=POLL_S)
        if self._thread.is_alive():
            log.warning(
                "vidloader: the prefetch thread is still inside a transform or decode call after %.0fs",
                self._join_timeout,
            )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
