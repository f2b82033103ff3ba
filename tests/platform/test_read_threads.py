"""Reads run in threads of their own: however many writes (or any other work) hold the shared
worker threads, a read is not queued behind them (found by probing: one council's twenty streams
held every shared thread of the records service, and practitioners' reads failed UNAVAILABLE)."""

from __future__ import annotations

import asyncio
import os
import threading

from sqlalchemy import text

from contactpoint.platform.db import Database


async def test_a_read_is_answered_while_every_shared_thread_is_held(database_url: str) -> None:
    db = Database(database_url)
    release = threading.Event()
    try:
        shared = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
        held = [asyncio.to_thread(release.wait, 30) for _ in range(shared + 2)]
        holders = asyncio.gather(*held)
        await asyncio.sleep(0.1)  # every shared thread now waits on `release`
        answer = await asyncio.wait_for(db.read(lambda c: c.execute(text("SELECT 7")).scalar_one()), 10)
        assert answer == 7
        release.set()
        await holders
    finally:
        release.set()
        db.dispose()


async def test_a_write_is_made_while_every_shared_thread_is_held(database_url: str) -> None:
    # The shared threads are where a records service stores its feeds' batches: a data manager's
    # write must not queue behind a flood of them (found by re-probing).
    db = Database(database_url)
    release = threading.Event()
    try:
        shared = min(32, (os.cpu_count() or 1) + 4)
        holders = asyncio.gather(*(asyncio.to_thread(release.wait, 30) for _ in range(shared + 2)))
        await asyncio.sleep(0.1)
        answer = await asyncio.wait_for(db.write(lambda c: c.execute(text("SELECT 8")).scalar_one()), 10)
        assert answer == 8
        release.set()
        await holders
    finally:
        release.set()
        db.dispose()
