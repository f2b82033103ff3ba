"""The records service starts its prepare workers before it serves, so that a council's first
stream after a restart does not wait for processes to spawn and import."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contactpoint.platform import migrate
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
