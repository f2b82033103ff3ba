"""The garbage collector's tuning for a service process (`platform/heap.py`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from contactpoint.platform import heap
from contactpoint.platform.workers import ProcessWorkers


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class Survivor:
    """A container object of start-up's, alive for as long as the process."""


def test_settle_freezes_what_is_alive_and_makes_young_collections_rarer(restored: None) -> None:
    _, middle, old = gc.get_threshold()
    alive = Survivor()
    assert gc.is_tracked(alive)
    heap.settle()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0
    assert not any(o is alive for o in gc.get_objects())  # out of every generation's walk
    later = Survivor()
    assert any(o is later for o in gc.get_objects())  # what is made after is collected as usual


def young_threshold() -> int:
    return gc.get_threshold()[0]


async def test_workers_are_tuned_like_their_service() -> None:
    workers = ProcessWorkers(1, name="test")
    try:
        assert await workers.run(young_threshold) == heap.YOUNG_THRESHOLD
    finally:
        workers.close()
