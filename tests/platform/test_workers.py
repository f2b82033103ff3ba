"""ProcessWorkers: pure CPU work in spawned processes (or a thread), and a dead worker is survived."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from contactpoint.platform.workers import ProcessWorkers, WorkerCrashed, pickled_by_fields


def where(x: int, *, times: int = 1) -> tuple[int, int]:
    return os.getpid(), x * times


def imported(module: str) -> tuple[int, bool]:
    return os.getpid(), module in sys.modules


def die_unless(parent: int) -> int:
    if os.getpid() != parent:
        os._exit(3)  # the worker process dies mid-task
    return 7


async def test_work_runs_in_another_process_and_answers_with_keywords() -> None:
    workers = ProcessWorkers(1, name="test")
    try:
        pid, value = await workers.run(where, 6, times=7)
        assert value == 42
        assert pid != os.getpid()
        again, _ = await workers.run(where, 1)
        assert again == pid  # one worker, started once
    finally:
        workers.close()


async def test_no_workers_runs_in_this_process() -> None:
    workers = ProcessWorkers(0, name="test")
    pid, value = await workers.run(where, 2, times=3)
    assert (pid, value) == (os.getpid(), 6)
    workers.close()


def die_once(marker: str) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)  # the worker dies mid-task
    return 7


async def test_a_task_whose_worker_died_is_tried_once_more_on_a_fresh_pool(tmp_path: Path) -> None:
    workers = ProcessWorkers(1, name="test")
    try:
        assert await workers.run(die_once, str(tmp_path / "died")) == 7
        pid, value = await workers.run(where, 5)
        assert value == 5 and pid != os.getpid()
    finally:
        workers.close()
        workers.close()  # idempotent


async def test_a_task_that_kills_every_worker_fails_and_never_runs_in_the_service() -> None:
    workers = ProcessWorkers(1, name="test")
    try:
        with pytest.raises(WorkerCrashed):
            await workers.run(die_unless, os.getpid())  # would return 7 if run here
        pid, value = await workers.run(where, 5)  # the pool recovers for the next task
        assert value == 5 and pid != os.getpid()
    finally:
        workers.close()


async def test_closed_workers_take_no_more_work() -> None:
    for count in (0, 1):
        workers = ProcessWorkers(count, name="test")
        workers.close()
        with pytest.raises(RuntimeError):
            await workers.run(where, 1)


def test_a_negative_number_of_workers_is_refused() -> None:
    with pytest.raises(ValueError):
        ProcessWorkers(-1, name="test")


async def test_started_workers_are_all_running_with_their_modules_imported_before_any_task() -> None:
    # "json.tool" is imported by nothing else a worker starts with: only `imports` brings it.
    workers = ProcessWorkers(2, name="test", imports=("json.tool",))
    try:
        assert await workers.start() == 2
        answers = await asyncio.gather(*(workers.run(imported, "json.tool") for _ in range(8)))
        assert all(has for _, has in answers)
        pids = {pid for pid, _ in answers}
        assert os.getpid() not in pids and len(pids) <= 2
    finally:
        workers.close()
    lazy = ProcessWorkers(1, name="test")
    try:
        _, has = await lazy.run(imported, "json.tool")
        assert not has  # without `imports`, a worker has not imported it
    finally:
        lazy.close()


async def test_starting_no_workers_starts_nothing() -> None:
    workers = ProcessWorkers(0, name="test")
    assert await workers.start() == 0
    workers.close()


_SERVICE = """
import asyncio, os, sys, time
from contactpoint.platform.workers import ProcessWorkers

def pid() -> int:
    return os.getpid()

async def main() -> None:
    workers = ProcessWorkers(1, name="test")
    await workers.start()
    print(await workers.run(pid), flush=True)
    time.sleep(60)  # killed long before this ends

if __name__ == "__main__":
    asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_ends_when_its_service_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(_SERVICE)
    service = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        worker = int(service.stdout.readline())
        assert _alive(worker)
        service.kill()  # no graceful shutdown: the pool is never shut down
        service.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class _Pair:
    left: str
    right: tuple[int, ...]


@pickled_by_fields
@dataclass(frozen=True)
class _One:
    only: object


def test_a_dataclass_pickled_by_its_fields_comes_back_equal_and_built_by_its_constructor() -> None:
    pair = _Pair("a", (1, 2))
    data = pickle.dumps(pair)
    assert pickle.loads(data) == pair  # noqa: S301 - our own bytes
    assert b"__setstate__" not in data and pickle.loads(data).__class__ is _Pair  # noqa: S301
    one = _One(_Pair("b", ()))  # one field, itself pickled by its fields
    assert pickle.loads(pickle.dumps(one)) == one  # noqa: S301
    # Unpickled by a call of the constructor with the fields in order.
    assert _Pair.__reduce__(pair) == (_Pair, ("a", (1, 2)))  # type: ignore[operator]
