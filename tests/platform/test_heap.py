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


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_a_service_settles_its_heap_once_built_and_before_it_serves(
    restored: None, monkeypatch: pytest.MonkeyPatch, event_loop: str
) -> None:
    """`run_service` settles the heap after the service is built and started, before it waits for
    requests: what start-up built is frozen, and young collections are rarer."""
    from contactpoint.platform import service
    from contactpoint.platform.settings import ServiceSettings

    steps: list[str] = []
    seen: dict[str, int] = {}
    gc.unfreeze()

    async def build() -> object:
        steps.append("built")
        return object()

    async def start_built(built: object, listen: str, credentials: object, *, settings: object) -> object:
        steps.append("started")
        seen["frozen_when_started"] = gc.get_freeze_count()
        return object()

    async def run_until_signalled(running: object, *, grace: float, name: str) -> None:
        steps.append("serving")
        seen["frozen"] = gc.get_freeze_count()
        seen["young"] = young_threshold()

    monkeypatch.setattr(service, "start_built", start_built)
    monkeypatch.setattr(service, "run_until_signalled", run_until_signalled)
    settings = ServiceSettings(event_loop=event_loop, log_format="console", log_level="warning")
    service.run_service("test", settings, None, build)  # type: ignore[arg-type]
    assert steps == ["built", "started", "serving"]
    assert seen["frozen_when_started"] == 0
    assert seen["frozen"] > 0
    assert seen["young"] == heap.YOUNG_THRESHOLD
