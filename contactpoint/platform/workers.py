"""CPU-bound pure work in other processes.

A service's Python runs on one core at a time (the GIL): checking and keying a stream's records
while the previous batch is matched and stored only overlaps if the two are in different
processes. `ProcessWorkers` runs a module-level function there and awaits its answer; with no
workers it runs the same function in a thread of this process, with the same results."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from contactpoint.platform.logging import get_logger

log = get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def _ignore_interrupts() -> None:
    """Workers leave stopping to their service: Ctrl-C reaches the whole process group, and the
    service shuts its pool down in order (a worker killed mid-task would break the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessWorkers:
    """`workers` processes (started on first use, by spawning: a forked copy of a running gRPC
    server is unsafe), or 0 for a thread of this process. A worker that dies breaks only the
    tasks it held: they are run again in this process and the pool is started afresh."""

    def __init__(self, workers: int, *, name: str) -> None:
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.workers = workers
        self.name = name
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        return self._pool

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a worker (arguments and result are pickled both ways)."""
        if self.workers == 0:
            return await asyncio.to_thread(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), functools.partial(fn, *args, **kwargs))
        except BrokenProcessPool:
            log.error("workers.broken", pool=self.name)
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            return await asyncio.to_thread(fn, *args, **kwargs)

    def close(self) -> None:
        """Finish what was started, then stop the workers (a graceful shutdown)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
