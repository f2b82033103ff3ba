"""StreamSourceRecords' pipeline on its own (no database, no gRPC): order, prompt answers, and
nothing stored once the caller is no longer admitted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.records.streaming import pipelined


class Feed:
    """Requests that arrive when the test says, as a client's do on an open stream."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[int | None] = asyncio.Queue()
        self.stored: list[int] = []
        self.admitted = True

    async def requests(self) -> AsyncIterator[int]:
        while (item := await self.incoming.get()) is not None:
            yield item

    async def prepare(self, batch: list[int]) -> list[int]:
        return list(batch)

    async def store(self, batch: list[int]) -> list[str]:
        self.stored.extend(batch)
        return [f"stored {n}" for n in batch]

    async def before_store(self) -> None:
        if not self.admitted:
            raise PermissionError("no longer admitted")

    def answers(self, batch_size: int) -> AsyncIterator[list[str]]:
        return pipelined(
            self.requests(),
            batch_size=batch_size,
            prepare=self.prepare,
            store=self.store,
            before_store=self.before_store,
        )


async def test_answers_keep_the_request_order_across_batches() -> None:
    feed = Feed()
    for n in range(25):
        feed.incoming.put_nowait(n)
    feed.incoming.put_nowait(None)
    answers = [a async for batch in feed.answers(batch_size=4) for a in batch]
    assert answers == [f"stored {n}" for n in range(25)]


async def test_a_batch_is_answered_before_the_next_arrives_and_nothing_is_stored_once_refused() -> None:
    feed = Feed()
    answers = feed.answers(batch_size=10)
    await feed.incoming.put(1)
    # The client waits for this answer before it sends more: it must not wait for the next batch.
    assert await anext(answers) == ["stored 1"]

    feed.admitted = False
    for n in (2, 3, 4):
        await feed.incoming.put(n)
    with pytest.raises(PermissionError):
        await anext(answers)
    assert feed.stored == [1]
