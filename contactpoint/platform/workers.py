"""CPU-bound pure work in other processes.

A service's Python runs on one core at a time (the GIL): checking and keying a stream's records
while the previous batch is matched and stored only overlaps if the two are in different
processes. `ProcessWorkers` runs a module-level function there and awaits its answer; with no
workers it runs the same function in a thread of this process, with the same results."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import multiprocessing
import operator
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from contactpoint.platform import heap
from contactpoint.platform.lifetime import stop_with_parent
from contactpoint.platform.logging import get_logger

log = get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


# How many rounds `start` tries before it leaves any worker not yet seen to start on first use.
START_ROUNDS = 20
_START_PAUSE_SECONDS = 0.05


def _start_worker(imports: Sequence[str], service: int) -> None:
    """Workers leave stopping to their service: Ctrl-C reaches the whole process group, and the
    service shuts its pool down in order (a worker killed mid-task would break the pool). But a
    service that dies (killed, or stopped before its pool was shut down) takes its workers with
    it: they would otherwise wait for tasks for ever, holding its output open. They import their
    tasks' modules as they start, not with their first task, and they allocate as fast as their
    service, so their collector is tuned as its is (`heap.tune`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_with_parent(signal.SIGTERM)
    if os.getppid() != service:  # the service ended before the line above
        os._exit(1)
    for module in imports:
        importlib.import_module(module)
    heap.tune()


def _started() -> int:
    # Held a moment, so that the other idle workers take the round's other calls.
    time.sleep(_START_PAUSE_SECONDS)
    return os.getpid()


class ProcessWorkers:
    """`workers` processes (started by `start` or on first use, by spawning: a forked copy of a
    running gRPC server is unsafe), or 0 for a thread of this process. Use it from one thread that
    lives as long as the process (the event loop's): a worker ends when the thread that started
    it does.

    A worker that dies breaks its whole pool, and every task the pool held fails: each is tried
    once more on a fresh pool. A task that breaks that one too (it is what kills its worker)
    fails with `WorkerCrashed`; it is never run in the service's own process, which it might
    take down with it."""

    def __init__(self, workers: int, *, name: str, imports: Sequence[str] = ()) -> None:
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.workers = workers
        self.name = name
        self._imports = tuple(imports)
        self.started = 0  # how many workers the last `start` saw running
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        if self._closed:  # also between a broken pool and its retry: no pool outlives close()
            raise RuntimeError(f"the {self.name} workers are closed")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._imports, os.getpid()),
            )
        return self._pool

    async def start(self) -> int:
        """Start every worker now, each with its modules imported, instead of on first use: a
        service calls this before it serves, so that its first requests do not wait a second for
        processes to spawn. How many workers answered (all of them, unless the machine is too
        slow to start them within `START_ROUNDS` rounds: the rest start on first use)."""
        if self.workers == 0:
            return 0
        loop = asyncio.get_running_loop()
        seen: set[int] = set()
        for _ in range(START_ROUNDS):
            pool = self._executor()
            calls = [loop.run_in_executor(pool, _started) for _ in range(self.workers)]
            seen.update(await asyncio.gather(*calls))
            if len(seen) >= self.workers:
                break
        self.started = min(len(seen), self.workers)
        return self.started

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        # Only the pool that broke: another caller may already have started its successor.
        if self._pool is broken:
            self._pool = None
            broken.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a worker (arguments and result are pickled both ways)."""
        if self._closed:
            raise RuntimeError(f"the {self.name} workers are closed")
        if self.workers == 0:
            return await asyncio.to_thread(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        for attempt in (1, 2):
            pool = self._executor()
            try:
                return await loop.run_in_executor(pool, call)
            except BrokenProcessPool:
                log.error("workers.broken", pool=self.name, attempt=attempt)
                self._discard(pool)
        raise WorkerCrashed(f"a task broke two {self.name} workers in a row")

    def close(self) -> None:
        """Finish what was started, then stop the workers (a graceful shutdown)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class WorkerCrashed(Exception):
    """A task killed the worker process that ran it, twice."""


D = TypeVar("D")


def pickled_by_fields(cls: type[D]) -> type[D]:
    """A frozen dataclass pickled as a call of its constructor with its fields in order, for what
    workers send back by the thousand: unpickling a frozen dataclass otherwise sets each field
    through `object.__setattr__`, in the service's own process (a prepared batch of 200 records
    holds about 800 such objects)."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    values = operator.attrgetter(*names)
    one = len(names) == 1

    def __reduce__(self: D) -> tuple[type[D], tuple[object, ...]]:
        got = values(self)
        return cls, ((got,) if one else got)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign, assignment]
    return cls
