"""ProcessWorkers: pure CPU work in spawned processes (or a thread), and a dead worker is survived."""

from __future__ import annotations

import os

import pytest

from contactpoint.platform.workers import ProcessWorkers


def where(x: int, *, times: int = 1) -> tuple[int, int]:
    return os.getpid(), x * times


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


async def test_a_dead_worker_costs_only_its_task_which_is_run_here_instead() -> None:
    workers = ProcessWorkers(1, name="test")
    try:
        assert await workers.run(die_unless, os.getpid()) == 7  # rerun in this process
        pid, value = await workers.run(where, 5)  # a fresh pool
        assert value == 5 and pid != os.getpid()
    finally:
        workers.close()
        workers.close()  # idempotent


def test_a_negative_number_of_workers_is_refused() -> None:
    with pytest.raises(ValueError):
        ProcessWorkers(-1, name="test")
