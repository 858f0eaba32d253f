"""Where clip decoding runs: inline, in threads (PyAV drops the GIL while decoding), or in spawned
processes (safe beside CUDA and DALI, which break forked children)."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

WorkerType = Literal["thread", "process"]
WORKER_TYPES: tuple[str, ...] = ("thread", "process")


class _Deferred(Future):
    """A future that runs its call when the result is asked for: num_workers=0 decodes in the caller."""

    def __init__(self, fn, args) -> None:
        super().__init__()
        self._call: tuple[Any, tuple] | None = (fn, args)

    def result(self, timeout: float | None = None) -> Any:
        if self._call is not None:
            fn, args = self._call
            self._call = None
            try:
                self.set_result(fn(*args))
            except BaseException as exc:
                self.set_exception(exc)
        return super().result(timeout)


class DecodePool:
    def __init__(self, *, num_workers: int, worker_type: WorkerType) -> None:
        self.num_workers = num_workers
        self.worker_type = worker_type
        self._executor: ThreadPoolExecutor | ProcessPoolExecutor | None = None

    def _ensure(self) -> ThreadPoolExecutor | ProcessPoolExecutor:
        if self._executor is None:
            if self.worker_type == "thread":
                self._executor = ThreadPoolExecutor(
                    max_workers=self.num_workers, thread_name_prefix="vidloader"
                )
            else:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.num_workers, mp_context=mp.get_context("spawn")
                )
        return self._executor

    def submit(self, fn, *args) -> Future:
        if self.num_workers == 0:
            return _Deferred(fn, args)
        try:
            return self._ensure().submit(fn, *args)
        except BrokenProcessPool:
            # A worker died (its clips report that when collected); later work goes to fresh workers.
            self.close()
            return self._ensure().submit(fn, *args)

    def reset(self) -> None:
        """Drop a broken process pool (a worker died) so the next submit starts fresh ones."""
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
