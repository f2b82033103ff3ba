"""StreamSourceRecords' pipeline on its own (no database, no gRPC): order, prompt answers,
nothing stored once the caller is no longer admitted, and a stream ended when the service
drains."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.records.streaming import Closing, pipelined


class Feed:
    """Requests that arrive when the test says, as a client's do on an open stream."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[int | None] = asyncio.Queue()
        self.stored: list[int] = []
        self.admitted = True
        self.closing = asyncio.Event()
        self.draining = asyncio.Event()

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

    def answers(self, batch_size: int, idle_at_drain: float = 0.3) -> AsyncIterator[list[str]]:
        return pipelined(
            self.requests(),
            batch_size=batch_size,
            prepare=self.prepare,
            store=self.store,
            before_store=self.before_store,
            closing=self.closing,
            draining=self.draining,
            idle_at_drain=idle_at_drain,
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


async def test_draining_ends_a_stream_after_the_batch_it_is_storing() -> None:
    # Found by an operations probe: records overran a 10 s shutdown grace under a stream of
    # source records, which ran on until the grace cut it off in the middle of a write.
    feed = Feed()
    answers = feed.answers(batch_size=3)
    for n in (1, 2, 3):
        await feed.incoming.put(n)
    assert await anext(answers) == ["stored 1", "stored 2", "stored 3"]
    for n in (4, 5):
        await feed.incoming.put(n)
    assert await anext(answers) == ["stored 4", "stored 5"]
    feed.closing.set()
    for n in (6, 7, 8):  # the client goes on sending: none of it is begun
        await feed.incoming.put(n)
    with pytest.raises(Closing):
        await anext(answers)
    assert feed.stored == [1, 2, 3, 4, 5]


async def test_draining_ends_an_idle_stream_at_once() -> None:
    feed = Feed()
    answers = feed.answers(batch_size=10)
    await feed.incoming.put(1)
    assert await anext(answers) == ["stored 1"]
    waiting = asyncio.ensure_future(anext(answers))  # the client sends nothing more for now
    await asyncio.sleep(0.01)
    assert not waiting.done()
    feed.closing.set()
    with pytest.raises(Closing):
        await asyncio.wait_for(waiting, 5)


async def test_a_stream_idle_as_the_service_drains_ends_before_the_last_call() -> None:
    # Found by an operations probe: an idle council stream held records' shutdown until the last
    # call, 7 s into a 10 s grace.
    feed = Feed()
    answers = feed.answers(batch_size=10, idle_at_drain=0.3)
    await feed.incoming.put(1)
    assert await anext(answers) == ["stored 1"]
    waiting = asyncio.ensure_future(anext(answers))
    await asyncio.sleep(0.4)  # idle for longer than the drain allows already
    assert not waiting.done()
    feed.draining.set()
    with pytest.raises(Closing):
        await asyncio.wait_for(waiting, 0.2)
    assert feed.stored == [1]


async def test_a_stream_that_goes_idle_while_the_service_drains_ends_then() -> None:
    feed = Feed()
    answers = feed.answers(batch_size=10, idle_at_drain=0.3)
    feed.draining.set()
    await feed.incoming.put(1)
    assert await anext(answers) == ["stored 1"]
    started = asyncio.get_running_loop().time()
    with pytest.raises(Closing):
        await asyncio.wait_for(anext(answers), 5)
    assert asyncio.get_running_loop().time() - started >= 0.25  # counted from its last answer


async def test_a_stream_still_sending_runs_on_while_the_service_drains() -> None:
    feed = Feed()
    answers = feed.answers(batch_size=10, idle_at_drain=0.3)
    feed.draining.set()
    got: list[str] = []
    for n in range(8):  # a record every 0.15 s, each answered before the next is sent
        await feed.incoming.put(n)
        got.extend(await asyncio.wait_for(anext(answers), 5))
        await asyncio.sleep(0.15)
    await feed.incoming.put(None)
    with pytest.raises(StopAsyncIteration):
        await anext(answers)
    assert got == [f"stored {n}" for n in range(8)]


async def test_a_stream_whose_requests_ended_is_not_cut_by_draining() -> None:
    feed = Feed()
    for n in (1, 2):
        feed.incoming.put_nowait(n)
    feed.incoming.put_nowait(None)
    answers = feed.answers(batch_size=10)
    assert await anext(answers) == ["stored 1", "stored 2"]
    await asyncio.sleep(0.01)  # the end of the requests has arrived
    feed.closing.set()
    with pytest.raises(StopAsyncIteration):  # ends as it would have, not told to send again
        await anext(answers)
    assert feed.stored == [1, 2]


async def test_draining_ends_a_stream_whose_client_sends_without_pause() -> None:
    # Found by re-probing: a client sending as fast as it could filled the read-ahead queue, and
    # the reader, cancelled as the stream ended, waited for ever to put the end in it: the drained
    # stream hung until the shutdown's grace cut it off.
    feed = Feed()

    async def flood() -> AsyncIterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    answers = pipelined(
        flood(),
        batch_size=4,
        prepare=feed.prepare,
        store=feed.store,
        before_store=feed.before_store,
        closing=feed.closing,
    )
    assert len(await anext(answers)) == 4
    feed.closing.set()

    async def drain() -> None:
        async for _ in answers:
            pass

    with pytest.raises(Closing):
        await asyncio.wait_for(drain(), 5)


async def test_a_batch_prepared_when_draining_began_is_not_begun() -> None:
    # Found by re-probing: the last call came while a batch was being prepared; it was stored
    # after all, past the grace, and never answered.
    feed = Feed()
    preparing = asyncio.Event()
    go_on = asyncio.Event()

    async def slow_prepare(batch: list[int]) -> list[int]:
        if batch[0] == 2:
            preparing.set()
            await go_on.wait()
        return list(batch)

    answers = pipelined(
        feed.requests(),
        batch_size=1,
        prepare=slow_prepare,
        store=feed.store,
        before_store=feed.before_store,
        closing=feed.closing,
    )
    await feed.incoming.put(1)
    assert await anext(answers) == ["stored 1"]
    await feed.incoming.put(2)
    waiting = asyncio.ensure_future(anext(answers))
    await preparing.wait()
    feed.closing.set()
    go_on.set()
    with pytest.raises(Closing):
        await asyncio.wait_for(waiting, 5)
    assert feed.stored == [1]
