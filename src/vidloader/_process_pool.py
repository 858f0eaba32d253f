"""A pool of spawned worker processes (the loader's process decode workers: safe beside CUDA and DALI,
which break forked children), replaced whole when a process dies or hangs.

Each worker ends when the main process does, also when that is SIGKILLed or leaves by ``os._exit``
(nothing of it runs then): a watchdog thread waits on the parent's sentinel, a pipe that the kernel closes
when the parent is gone, and polls the parent pid as a fallback. (``PR_SET_PDEATHSIG`` would fire when the
*thread* that spawned the worker ends, and the loader spawns workers from a pass's prefetch thread, which
ends with the pass.)

A pool whose workers cannot run is an error of its own, never a task's: a worker that found the main script
has no ``if __name__ == "__main__":`` guard (``vidloader._main_guard``) is a ConfigError, and fresh pools
dying twice in a row before any worker started a WorkerPoolError."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as wait_ready
from typing import Any

from ._errors import WorkerPoolError
from ._main_guard import MAIN_GUARD_EXIT, main_guard_error

__all__ = ["STARTUP_DEATHS", "STARTUP_LIMIT_S", "ProcessWorkers", "start_worker"]

# A spawned worker imports torch and PyAV before its first decode: seconds, far more on a loaded machine.
# Deadlines do not run while workers start, up to this long.
STARTUP_LIMIT_S = 600.0
# Fresh pools in a row whose workers all died before starting before the pool is declared unable to run
# (one may die to a passing cause: memory pressure while every worker imports torch).
STARTUP_DEATHS = 2
# How often a worker's watchdog checks the parent pid, besides waiting on the parent's sentinel.
PARENT_POLL_S = 1.0


def start_worker(initializer: Callable[..., object] | None, initargs: tuple, up: Any = None) -> None:
    """Run first in each worker: end it when the main process ends, then ``initializer(*initargs)``, then
    count the worker as up in ``up`` (a shared int) when given."""
    parent = mp.parent_process()
    if parent is not None:
        _exit_with(parent)
    if initializer is not None:
        initializer(*initargs)
    if up is not None:
        with up.get_lock():
            up.value += 1


def _exit_with(parent: Any) -> None:
    ppid = os.getppid()

    def watch() -> None:
        # The sentinel turns readable when the parent is gone; a changed parent pid (re-parented to init)
        # says the same where the sentinel cannot.
        while not wait_ready([parent.sentinel], timeout=PARENT_POLL_S) and os.getppid() == ppid:
            pass
        os._exit(1)  # no clean-up to run for a parent that is gone: the worker holds nothing shared

    threading.Thread(target=watch, name="vidloader-parent-watch", daemon=True).start()


class ProcessWorkers:
    """Spawned worker processes (a ProcessPoolExecutor), replaced whole when one dies or hangs.

    The executor does not say which process runs which call, so a stuck call costs every process: they are
    terminated and fresh ones started; the other calls in flight fail with BrokenProcessPool or are
    cancelled, and the caller submits them again.

    Args:
        num_processes: the pool's size.
        initializer: run first in every worker (picklable: a module-level function), with
        initargs: a function called each time a pool starts, giving the initializer's arguments (so they
            are current then).
    """

    def __init__(
        self,
        num_processes: int,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Callable[[], tuple] = tuple,
    ) -> None:
        self._size = num_processes
        self._initializer, self._initargs = initializer, initargs
        self._executor: ProcessPoolExecutor | None = None
        self._up: Any = None  # the current pool's count of workers that finished starting
        self._started = 0.0
        self._ready = False
        self._startup_deaths = 0

    def _ensure(self) -> ProcessPoolExecutor:
        if self._executor is None:
            ctx = mp.get_context("spawn")
            # Counted by each worker once it has started (see starting()); not a warm-up call answered by
            # pid: a worker stuck in its first task never answers one, and the others answered them all.
            self._up = ctx.Value("i", 0)
            self._executor = ProcessPoolExecutor(
                max_workers=self._size,
                mp_context=ctx,
                initializer=start_worker,
                initargs=(self._initializer, self._initargs(), self._up),
            )
            self._started, self._ready = time.monotonic(), False
        return self._executor

    def starting(self) -> bool:
        """Whether fresh worker processes are still starting (their first calls are not late yet): until
        every process has started (imported the package and run its initializer), or STARTUP_LIMIT_S has
        passed."""
        if self._ready or self._executor is None or time.monotonic() - self._started > STARTUP_LIMIT_S:
            return False
        self._ready = self._up_count() >= self._size
        return not self._ready

    def _up_count(self) -> int:
        return 0 if self._up is None else int(self._up.value)

    def submit(self, fn: Callable, *args: Any) -> Future:
        try:
            return self._ensure().submit(fn, *args)
        except BrokenProcessPool:
            # A worker died (its calls report that when collected); later work goes to fresh workers,
            # unless the workers cannot run at all (check raises then).
            self.check()
            self._replace()  # check replaced a pool marked broken already; this covers any other
            return self._ensure().submit(fn, *args)

    def check(self) -> None:
        """After a worker died: a broken pool is replaced, unless its workers cannot run at all.

        Raises:
            ConfigError: a worker refused to run the main script again (it has no ``__main__`` guard).
            WorkerPoolError: fresh pools died STARTUP_DEATHS times in a row before any worker started.
        """
        ex = self._executor
        if ex is None or not getattr(ex, "_broken", False):
            return
        started = self._up_count() > 0
        codes = self._replace()
        if MAIN_GUARD_EXIT in codes:
            raise main_guard_error()
        self._startup_deaths = 0 if started else self._startup_deaths + 1
        if self._startup_deaths >= STARTUP_DEATHS:
            self._startup_deaths = 0
            raise WorkerPoolError(
                f"the worker processes died while starting, before running anything, "
                f"{STARTUP_DEATHS} times in a row (exit codes {sorted(codes)}; -9 is SIGKILL, often the "
                "out-of-memory killer); their own output above says why"
            )

    def pids(self) -> list[int]:
        """The worker processes' ids (empty before the first submit)."""
        procs = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in procs.values() if p.pid is not None]

    def abandon(self, futures: Iterable[Future]) -> int:
        pending = [f for f in futures if not f.cancel()]
        if not pending or self._executor is None:
            return 0
        n = len(self.pids())
        self._replace()
        return n

    def alive(self) -> int:
        return self._size

    def _replace(self) -> list[int]:
        """Stop the pool's processes (a later submit starts fresh ones); returns their exit codes."""
        ex, self._executor = self._executor, None
        if ex is None:
            return []
        # The executor has no public way to stop a busy worker (terminate_workers is Python 3.14).
        procs = list((getattr(ex, "_processes", None) or {}).values())
        # shutdown drops the executor's references to these
        internals = (getattr(ex, "_result_queue", None), getattr(ex, "_pending_work_items", None))
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):  # already gone: nothing to stop
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
        # The executor's own thread may be the one reaping a process: its exit code shows up a moment later.
        deadline = time.monotonic() + 5.0
        while any(p.exitcode is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.01)
        _unblock_results(*internals)
        return [p.exitcode for p in procs if p.exitcode is not None]

    def close(self) -> None:
        self._replace()


def _unblock_results(results: Any, pending: dict | None) -> None:
    """End the read of a result a stopped worker was sending.

    A worker stopped while it was writing a result (large: a clip's frames) leaves half a message in the
    pool's result pipe, and the executor's thread waits for the rest for ever; at exit the interpreter waits
    for that thread, so the program hung after ``close()`` (or after a stuck worker was replaced). The
    parent holds the pipe's last write end once its workers are gone: closing it makes that read end (EOF),
    which the executor's thread takes for a broken pool, and it exits. On its way out it sets an exception
    on every call still pending, and Python 3.11 raises there for a call the loader cancelled (a traceback
    on stderr): those get a stand-in future first."""
    for item in list((pending or {}).values()):  # one C call: a snapshot, whatever that thread does
        if item.future.cancelled():
            item.future = Future()
    writer = getattr(results, "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):  # already closed
            writer.close()
