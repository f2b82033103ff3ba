"""The gateway's reads of one child, many over a few long-lived `ReadChildRecords` streams.

A gRPC call costs both ends far more than a message on a stream that is already open: a
stream's read costs records about half the CPU a `GetChildRecord` call does (see
docs/benchmarks.md, "Reads over a stream"). Nothing about a read changes: each still reads one
child, for one practitioner whose token it carries and records checks, and is answered or
refused as `GetChildRecord` would answer it.

- A stream is opened with the gateway's own token, and opened anew (the old one finishing what it
  holds) once that token is renewed, so that it never outlives it.
- Reads go to the streams in turn: on a channel spreading calls over records' replicas, each
  stream is on one replica.
- A stream that ends (records draining or restarting, a replica gone, the gateway's token
  refused) fails the reads it holds, and each is sent once more on a fresh stream: a read
  changes nothing in records, so sending it twice is safe. The token is fetched again first when
  records refused it.
- A read waits `PEER_TIMEOUT_SECONDS` at most in all, as a call would, then is UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from typing import Any

import grpc

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.auth import Principal
from contactpoint.platform.errors import Unavailable, from_status
from contactpoint.platform.logging import get_logger
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, TokenSource
from contactpoint.records.v1 import records_service_pb2 as records_pb
from contactpoint.records.v1 import records_service_pb2_grpc as records_grpc

log = get_logger(__name__)
Answer = records_pb.ReadChildRecordsResponse


class _Lost(Exception):
    """The stream a read was on ended before it was answered."""

    def __init__(self, token_refused: bool = False) -> None:
        super().__init__("the stream of reads ended")
        self.token_refused = token_refused


class _Stream:
    """One open `ReadChildRecords` stream and the reads it holds, by read id. One task writes the
    stream's reads in turn and one reads its answers: a read itself only queues its message and
    waits for its answer, so that cancelling it cancels no write (grpc cancels the whole call when
    a write is cancelled, which would end every other read the stream holds: found by probing, a
    practitioner resetting their own request, or a read's timeout during a slow write)."""

    def __init__(self, stub: records_grpc.RecordsServiceStub, token: str) -> None:
        self.token = token
        self._call: grpc.aio.StreamStreamCall[records_pb.ReadChildRecordsRequest, Answer] = (
            stub.ReadChildRecords(metadata=(("authorization", f"Bearer {token}"),))  # type: ignore[call-arg,assignment]
        )
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._next_id = 0
        # What is to be written, in order; None half-closes the stream.
        self._outbox: asyncio.Queue[records_pb.ReadChildRecordsRequest | None] = asyncio.Queue()
        self.ended = False
        loop = asyncio.get_running_loop()
        self.reader = loop.create_task(self._read(), name="records-read-stream")
        self._writer = loop.create_task(self._write(), name="records-read-stream-writer")

    async def _write(self) -> None:
        with contextlib.suppress(grpc.RpcError, asyncio.InvalidStateError):  # the reader sees the end
            while (request := await self._outbox.get()) is not None:
                await self._call.write(request)
            await self._call.done_writing()

    async def _read(self) -> None:
        lost = _Lost()
        try:
            async for answer in self._call:
                waiting = self._pending.pop(answer.read_id, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(answer)
        except grpc.aio.AioRpcError as exc:
            lost = _Lost(token_refused=exc.code() == grpc.StatusCode.UNAUTHENTICATED)
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                log.warning("records.read_stream_ended", code=exc.code().name)
        except asyncio.CancelledError:
            pass
        except Exception:  # an answer records could not have sent (undecodable): end the stream
            log.exception("records.read_stream_broken")
        finally:
            self.ended = True
            self._call.cancel()
            self._writer.cancel()
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(lost)
            self._pending.clear()

    async def read(self, contactpoint_id: str, person_token: str) -> Answer:
        """Records' answer to one read (`_Lost` if the stream ends first)."""
        if self.ended:
            raise _Lost()
        self._next_id += 1
        read_id = self._next_id
        request = records_pb.ReadChildRecordsRequest(
            read_id=read_id, contactpoint_id=contactpoint_id, on_behalf_of=person_token
        )
        answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[read_id] = answered
        self._outbox.put_nowait(request)
        try:
            return await answered
        finally:
            self._pending.pop(read_id, None)

    def retire(self) -> None:
        """Send no more reads on this stream; records answers what it holds, then ends it."""
        self.ended = True
        self._outbox.put_nowait(None)

    def cancel(self) -> None:
        self._call.cancel()
        self._writer.cancel()


def _forget(retired: set[_Stream], stream: _Stream, _: Any) -> None:
    retired.discard(stream)


class ReadStreams:
    """Reads of one child over `streams` long-lived streams to records."""

    def __init__(self, channel: grpc.aio.Channel, token: TokenSource, *, streams: int) -> None:
        if streams < 1:
            raise ValueError("at least one stream")
        self._stub = records_grpc.RecordsServiceStub(channel)
        self._token = token
        self._streams: list[_Stream | None] = [None] * streams
        self._turn = 0
        # Streams still finishing their reads after a newer token replaced them.
        self._retired: set[_Stream] = set()
        self._closed = False

    async def _next_stream(self) -> _Stream:
        token = await self._token.get()
        if self._closed:  # a read sent again after `close` opens nothing that would outlive it
            raise Unavailable("the records service is unavailable")
        slot = self._turn % len(self._streams)
        self._turn += 1
        stream = self._streams[slot]
        if stream is None or stream.ended or stream.token != token:
            if stream is not None:
                self._retire(stream)
            stream = self._streams[slot] = _Stream(self._stub, token)
        return stream

    def _retire(self, stream: _Stream) -> None:
        """Send `stream` no more reads; it ends once records has answered what it holds."""
        if stream.ended:
            return
        stream.retire()
        self._retired.add(stream)
        stream.reader.add_done_callback(partial(_forget, self._retired, stream))

    async def read(self, contactpoint_id: str, person: Principal) -> child_pb2.Child:
        """The full record of one child read for `person`: what `GetChildRecord` would answer."""
        used: list[_Stream] = []
        try:
            async with asyncio.timeout(PEER_TIMEOUT_SECONDS):
                answer = await self._answer(contactpoint_id, person, used)
        except TimeoutError:
            # A stream that does not answer in time is given no more reads (found by review: a
            # replica that took reads and answered none kept its share of them until the token's
            # renewal). Retired, not cancelled: the reads it holds keep their own time, so that
            # an overloaded records is not sent all of them again at once.
            for stream in used:
                self._retire(stream)
            raise Unavailable("the records service is unavailable") from None
        if answer.HasField("error"):
            mapped = from_status(answer.error)
            if mapped is None:
                log.error("records.call_failed", code=answer.error.code)
                raise Unavailable("the records service is unavailable")
            raise mapped
        return answer.child

    async def _answer(self, contactpoint_id: str, person: Principal, used: list[_Stream]) -> Answer:
        for attempt in (1, 2):
            stream = await self._next_stream()
            used.append(stream)
            try:
                return await stream.read(contactpoint_id, person.token)
            except _Lost as lost:
                if lost.token_refused:
                    self._token.invalidate()
                if attempt == 2:
                    raise Unavailable("the records service is unavailable") from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """End every stream (the gateway is stopping: its requests are over)."""
        self._closed = True
        streams = [s for s in self._streams if s is not None] + list(self._retired)
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*(s.reader for s in streams), return_exceptions=True)
