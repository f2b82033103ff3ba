"""The records service starts its prepare workers before it serves, so that a council's first
stream after a restart does not wait for processes to spawn and import."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contactpoint.platform import migrate
from contactpoint.platform.workers import ProcessWorkers
from services.records.main import MIGRATIONS, build
from tests.services.records.conftest import offline_settings


@pytest.mark.parametrize("workers", [0, 2])
def test_the_prepare_workers_are_running_once_the_service_is_built(
    database_url: str, tmp_path: Path, workers: int
) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url)
    settings = offline_settings(database_url, tmp_path / "records.keys", prepare_workers=workers)

    async def start_and_stop() -> int:
        built = await build(settings)
        try:
            return int(built.services[0].servicer.workers.started)
        finally:
            for close in built.on_stop:
                await close()

    assert asyncio.run(start_and_stop()) == workers


def test_a_worker_that_cannot_start_stops_the_service_and_leaves_nothing_running(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url)
    settings = offline_settings(database_url, tmp_path / "records.keys", prepare_workers=1)

    async def cannot_start(self: ProcessWorkers) -> int:
        raise RuntimeError("a worker could not start")

    monkeypatch.setattr(ProcessWorkers, "start", cannot_start)

    async def try_to_build() -> set[str]:
        with pytest.raises(RuntimeError, match="could not start"):
            await build(settings)
        # The scheduled jobs the build had started are cancelled and gone.
        await asyncio.sleep(0)
        return {t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(try_to_build()) == set()
