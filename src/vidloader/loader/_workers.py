"""Where decode tasks run: threads (PyAV drops the GIL while decoding) or spawned processes
(``vidloader._process_pool``, each reading stores with the main process's ``StoreConfig``). A decode that
outlives its batch's deadline is abandoned and its worker replaced, so a stuck file never shrinks the
pool; every wait for tasks wakes to check that the caller still wants them and that the workers are
alive."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing as mp
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, ProcessPoolExecutor, wait
from dataclasses import fields
from typing import Any

from .._errors import VideoError
from .._main_guard import refuse_while_importing_main
from .._process_pool import ProcessWorkers
from ..backends import SharedStop, run_until, use_stop_flags
from ..dataset import StoreConfig, configure_store, store_config, store_outage

log = logging.getLogger("vidloader")
_names = itertools.count()
# How often a wait wakes to check that the caller still wants the batch and the workers are alive.
POLL_S = 0.1
# Stop flags shared with process workers, one per pass, reused round-robin (a slot is cleared when a new
# pass takes it): far more than the passes that can be running at once.
STOP_SLOTS = 256


class Stopped(Exception):
    """The consumer went away (break, exception, close) while a wait for decode tasks ran."""


def start_process_worker(store: StoreConfig, stop_flags: Any) -> None:
    """A process worker's initializer: read stores as the main process does (``configure_store`` there
    does not reach a spawned process by itself), and read its calls' stops from ``stop_flags``."""
    configure_store(**{f.name: getattr(store, f.name) for f in fields(store)})
    use_stop_flags(stop_flags)


class PassStop(threading.Event):
    """A pass's stop: an Event for the threads of this process, and, once set, slot ``slot`` of the flags
    the pool's process workers read (``SharedStop``), so their decodes end at the next packet too."""

    def __init__(self, flags: Any, slot: int) -> None:
        super().__init__()
        self.flags, self.slot = flags, slot

    def set(self) -> None:
        super().set()
        self.flags[self.slot] = 1


def run_task(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, as every worker runs a task. A clip that failed while its store is known to be down
    failed because of that: FFmpeg can turn a store's error into one of its own (PyAV drops the original
    exception in some reads), so the store's StoreUnavailableError is raised instead, never a skippable
    clip failure."""
    try:
        return fn(*args)
    except VideoError as exc:
        down = store_outage(exc.path)
        if down is None:
            raise
        raise down from exc


class ThreadWorkers:
    """A fixed number of daemon decode threads.

    Unlike ThreadPoolExecutor, a thread whose call is abandoned is retired (it exits when, if ever, the
    call returns) and a fresh thread takes its place at once; daemon threads also never hold up exit."""

    def __init__(self, num_threads: int) -> None:
        _open_thread_pools.add(self)
        self._tasks: queue.SimpleQueue[tuple[Future, Callable, tuple] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[Future, threading.Thread] = {}
        self._live: set[threading.Thread] = set()
        self._retired: set[threading.Thread] = set()
        for _ in range(num_threads):
            self._spawn()

    def _spawn(self) -> None:
        t = threading.Thread(target=self._work, name=f"vidloader-decode-{next(_names)}", daemon=True)
        self._live.add(t)
        t.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            item = self._tasks.get()
            if item is None:
                return
            fut, fn, args = item
            with self._lock:  # with abandon(): a call is either cancelled or known to run on this thread
                if not fut.set_running_or_notify_cancel():
                    continue
                self._running[fut] = me
            try:
                result, exc = fn(*args), None
            except BaseException as e:  # handed to whoever waits on the future (KeyboardInterrupt too)
                result, exc = None, e
            with self._lock:
                self._running.pop(fut, None)
                retired = me in self._retired
                self._retired.discard(me)
            with contextlib.suppress(InvalidStateError):
                if exc is None:
                    fut.set_result(result)
                else:
                    fut.set_exception(exc)
            if retired:
                return

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut: Future = Future()
        self._tasks.put((fut, fn, args))
        return fut

    def abandon(self, futures: Iterable[Future]) -> int:
        """Give up on ``futures``: queued ones are cancelled; each thread running one is retired and
        replaced by a fresh thread. Returns how many threads were replaced."""
        replaced = 0
        with self._lock:
            for fut in futures:
                if fut.cancel():
                    continue
                t = self._running.pop(fut, None)
                if t is not None and t in self._live:
                    self._live.discard(t)
                    self._retired.add(t)
                    self._spawn()
                    replaced += 1
        return replaced

    def starting(self) -> bool:
        return False  # threads start at once

    def check(self) -> None:
        """Nothing to do: a thread that dies is replaced by ``alive``."""

    def alive(self) -> int:
        """Live (not retired) threads; a dead one is replaced here, so the pool keeps its size."""
        with self._lock:
            for t in [t for t in self._live if not t.is_alive()]:
                self._live.discard(t)
                self._spawn()
            return len(self._live)

    def close(self, join_timeout: float = 0.0) -> None:
        """Stop the threads: queued calls are cancelled, idle threads exit (waited for up to
        ``join_timeout`` seconds each; a thread stuck in a call is left to finish it)."""
        with self._lock:
            live, self._live = self._live, set()
        while True:  # cancel what is still queued
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in live:
            self._tasks.put(None)
        if join_timeout > 0:
            for t in live:
                t.join(join_timeout)


# Pools a script never closed. Their idle daemon threads must be gone before the interpreter finalizes:
# left blocked, a process that exits after torch.distributed work aborted ("terminate called without an
# active exception") in 2 of 4 two-rank gloo runs; closed first, 6 of 6 exited cleanly.
_open_thread_pools: weakref.WeakSet[ThreadWorkers] = weakref.WeakSet()


@atexit.register
def _close_thread_pools_at_exit() -> None:
    for pool in list(_open_thread_pools):
        pool.close(join_timeout=1.0)


class DecodePool:
    """Decode workers of one kind, made on first use and kept across epochs.

    Args:
        num_workers: worker threads or processes; 0 means one decode thread used one batch at a time (the
            loader then has no prefetch thread, but a stuck decode still meets its deadline).
        worker_type: "thread" or "process".
    """

    def __init__(self, *, num_workers: int, worker_type: str) -> None:
        refuse_while_importing_main("a VideoLoader")
        self.num_workers = num_workers
        self.worker_type = worker_type if num_workers > 0 else "thread"
        self._workers: ThreadWorkers | ProcessWorkers | None = None
        self._stop_flags: Any = None  # made with the first pass of process workers, kept for the pool's life
        self._passes = itertools.count()

    @property
    def workers(self) -> ThreadWorkers | ProcessWorkers:
        if self._workers is None:
            n = max(1, self.num_workers)
            if self.worker_type == "thread":
                self._workers = ThreadWorkers(n)
            else:
                flags = self.stop_flags  # the same flags for every pool that replaces this one
                self._workers = ProcessWorkers(
                    n, initializer=start_process_worker, initargs=lambda: (store_config(), flags)
                )
        return self._workers

    @property
    def stop_flags(self) -> Any:
        """The flags process workers read their calls' stops from (shared memory, made once)."""
        if self._stop_flags is None:
            self._stop_flags = mp.get_context("spawn").RawArray("b", STOP_SLOTS)
        return self._stop_flags

    def new_stop(self) -> threading.Event:
        """A stop for one pass: setting it ends that pass's calls at their next packet, on threads and, for
        process workers, in the workers too (``PassStop``)."""
        if self.worker_type == "thread":
            return threading.Event()
        slot = next(self._passes) % STOP_SLOTS
        self.stop_flags[slot] = 0
        return PassStop(self.stop_flags, slot)

    def submit(self, fn: Callable, *args: Any, stop: threading.Event | None = None) -> Future:
        """``fn(*args)`` on a worker; a ``stop`` that is set ends the call at its next packet
        (``DecodeStopped``). A process worker reads only a ``new_stop()`` of this pool (any other Event stays
        in this process, and the call runs to its end)."""
        if stop is None:
            return self.workers.submit(run_task, fn, *args)
        if self.worker_type == "thread":
            return self.workers.submit(run_until, stop, run_task, fn, *args)
        slot = getattr(stop, "slot", None)
        if slot is None or getattr(stop, "flags", None) is not self._stop_flags:
            return self.workers.submit(run_task, fn, *args)
        return self.workers.submit(run_until, SharedStop(slot), run_task, fn, *args)

    def check(self) -> None:
        """After a task failed because its worker process died: replace the pool, or raise when the
        workers cannot run at all (``ProcessWorkers.check``: ConfigError, WorkerPoolError)."""
        if self._workers is not None:
            self._workers.check()

    def abandon(self, futures: Iterable[Future]) -> int:
        """Give up on calls past their deadline; their workers are replaced. Returns workers replaced."""
        n = self.workers.abandon(futures)
        if n:
            log.warning("vidloader: %d decode worker(s) stuck past the deadline were replaced", n)
        return n

    def starting(self) -> bool:
        """Whether workers are still starting up (spawned processes); deadlines wait for them."""
        return self._workers is not None and self._workers.starting()

    def wait(self, futures: list[Future], deadline: float, *, timeout: float, stop: threading.Event) -> None:
        """Until every future is done or ``deadline`` (``time.monotonic()``) passes; a deadline that falls
        while workers are still starting moves to ``timeout`` seconds after they are up.

        Raises:
            Stopped: ``stop`` was set (the consumer is gone).
        """
        if stop.is_set():  # calls that ended because the pass stopped (DecodeStopped) are never settled
            raise Stopped
        todo = [f for f in futures if not f.done()]
        while todo:
            if self.starting():  # the clock starts once the workers are up
                deadline = max(deadline, time.monotonic() + timeout)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait(todo, timeout=min(POLL_S, left), return_when=FIRST_COMPLETED)
            if stop.is_set():
                raise Stopped
            if self._workers is not None:  # a dead thread is replaced; a dead process breaks its calls
                self._workers.alive()
            todo = [f for f in todo if not f.done()]

    @property
    def _executor(self) -> ProcessPoolExecutor | None:
        # The process pool's executor, for tests that check how its processes start.
        return getattr(self._workers, "_executor", None)

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()
            self._workers = None
