"""StreamSourceRecords' pipeline, apart from what it pipes: requests are read ahead, each batch
(whatever has arrived, up to a batch size) is prepared while the batch before it is stored, and a
batch's answers are given as soon as it is stored — not only when the next batch arrives, since a
client may wait for an answer before it sends more. No grpc, no SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

Q = TypeVar("Q")  # a request
P = TypeVar("P")  # a prepared batch
R = TypeVar("R")  # one request's answer
_END = object()
# How long a stream may have sent nothing, with nothing of it in hand, once the service drains
# before it is ended (`pipelined`'s `draining`).
IDLE_AT_DRAIN_SECONDS = 1.0


class Closing(Exception):
    """The service began to shut down: the batches in hand were answered and nothing more of the
    stream is read; the client sends the requests not answered again (elsewhere, or later)."""


async def pipelined(
    requests: AsyncIterator[Q],
    *,
    batch_size: int,
    prepare: Callable[[list[Q]], Awaitable[P]],
    store: Callable[[P], Coroutine[Any, Any, list[R]]],
    before_store: Callable[[], Awaitable[None]],
    closing: asyncio.Event | None = None,
    draining: asyncio.Event | None = None,
    idle_at_drain: float = IDLE_AT_DRAIN_SECONDS,
) -> AsyncGenerator[list[R], None]:
    """The answers to `requests`, a batch at a time and in request order. `before_store` is
    awaited just before each batch is stored; whatever it raises ends the pipeline, and nothing
    more is stored (batches already answered, and the one being stored then, stay stored).
    Once `closing` is set (the service draining), the batch being stored is answered, no other is
    begun, and `Closing` is raised: a long stream then ends within its batch, not at the end of
    the shutdown's grace period, cut off in the middle of a write. Once `draining` is set (the
    shutdown has begun), a stream ends the same way as soon as it has sent nothing for
    `idle_at_drain` seconds with nothing of it in hand: an idle council stream held the shutdown
    until `closing`, 7 s into a 10 s grace (found by an operations probe)."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=2 * batch_size)

    async def read() -> None:
        ended = True
        try:
            async for request in requests:
                await queue.put(request)
        except asyncio.CancelledError:
            # The pipeline is ending and no one reads the queue: waiting to put the end in a full
            # one would hold the shutdown (found by re-probing: a client sending without pause
            # filled it, and a drained stream hung until the grace cut it off).
            ended = False
            raise
        finally:
            if ended:
                await queue.put(_END)

    async def next_batch() -> list[Q] | None:
        batch: list[Q] = []
        item = await queue.get()
        while item is not _END:
            batch.append(cast(Q, item))  # read() puts only requests and _END
            if len(batch) >= batch_size or queue.empty():
                return batch
            item = queue.get_nowait()
        await queue.put(_END)  # seen again by the next call
        return batch or None

    reader = asyncio.create_task(read())
    arriving = asyncio.create_task(next_batch())
    closed = asyncio.ensure_future((closing or asyncio.Event()).wait())
    drained = asyncio.ensure_future((draining or asyncio.Event()).wait())
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()  # when the stream last had nothing in hand
    storing: asyncio.Task[list[R]] | None = None
    cut = False  # by `closing`, with requests perhaps still to come
    try:
        while True:
            if not arriving.done():
                waiting: set[asyncio.Future[Any]] = {arriving, closed}
                timeout = None
                if storing is not None:
                    waiting.add(storing)
                elif drained.done():
                    timeout = max(0.0, quiet_since + idle_at_drain - loop.time())
                else:
                    waiting.add(drained)
                await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if storing is not None and storing.done():  # answer now, while the client sends more
                    yield await storing
                    storing = None
                    quiet_since = loop.time()
                    continue
                if not arriving.done() and not closed.done():
                    if drained.done() and loop.time() - quiet_since >= idle_at_drain:
                        cut = True  # idle while the service drains
                        break
                    continue
            if closed.done() and not (arriving.done() and arriving.result() is None):
                cut = True
                break
            batch = await arriving
            if batch is None:
                break
            prepared = await prepare(batch)
            if storing is not None:
                yield await storing
                storing = None
            if closed.done():  # while it was prepared, or the batch before answered: not begun
                cut = True
                break
            await before_store()
            storing = asyncio.create_task(store(prepared))
            arriving = asyncio.create_task(next_batch())
        if storing is not None:
            yield await storing
            storing = None
        if cut:
            raise Closing("the service is shutting down")
    finally:
        reader.cancel()
        arriving.cancel()
        closed.cancel()
        drained.cancel()
        await asyncio.gather(reader, arriving, closed, drained, return_exceptions=True)
        if storing is not None:
            await asyncio.gather(storing, return_exceptions=True)
