"""The gateway's reads over long-lived ReadChildRecords streams (`gateway.read_streams`), against
a records of the test's own that misbehaves on purpose: reads answered in any order, a stream
that ends holding reads (sent again on a fresh one), a renewed token (a new stream, the old one
half-closed), a refused token (fetched again), records' refusals mapped as a call's would be, and
UNAVAILABLE when records cannot answer in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
import pytest

from contactpoint.platform.auth import Principal
from contactpoint.platform.errors import (
    PERSON_TOKEN_REFUSED,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    internal_status,
)
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from gateway import read_streams
from gateway.read_streams import ReadStreams

pytestmark = pytest.mark.asyncio
PERSON = Principal(
    subject="p1",
    name="pat",
    organisation="E08000003",
    roles=frozenset({"practitioner"}),
    kind="person",
    token_id="t1",
    expire_time=None,  # type: ignore[arg-type]
    token="person-token",
)


@dataclass
class FakeRecords(pb_grpc.RecordsServiceServicer):
    """Answers each read with a child of the id asked for, after `delay`, unless told otherwise:
    `drop` ends the next stream once it has read that many reads, answering none of them;
    `refuse_tokens` ends streams opened with those tokens UNAUTHENTICATED; `errors` answers a
    child id with a status."""

    delay: float = 0.0
    drop: int = 0
    silent_streams: int = 0
    refuse_tokens: set[str] = field(default_factory=set)
    errors: dict[str, object] = field(default_factory=dict)
    opened_with: list[str] = field(default_factory=list)
    half_closed: list[str] = field(default_factory=list)
    reads: int = 0

    async def ReadChildRecords(self, requests, context):  # type: ignore[no-untyped-def,override]
        token = dict(context.invocation_metadata())["authorization"].removeprefix("Bearer ")
        self.opened_with.append(token)
        if token in self.refuse_tokens:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        if self.silent_streams:  # takes reads, answers none
            self.silent_streams -= 1
            async for _ in requests:
                pass
            await asyncio.Event().wait()
        answers: asyncio.Queue[pb.ReadChildRecordsResponse] = asyncio.Queue()
        held = []

        async def answer(read: pb.ReadChildRecordsRequest) -> None:
            await asyncio.sleep(self.delay)
            error = self.errors.get(read.contactpoint_id)
            if error is not None:
                await answers.put(pb.ReadChildRecordsResponse(read_id=read.read_id, error=error))
            else:
                child = pb.GetChildRecordResponse().child
                child.contactpoint_id = read.contactpoint_id
                await answers.put(pb.ReadChildRecordsResponse(read_id=read.read_id, child=child))

        async def pump() -> None:
            async for read in requests:
                assert read.on_behalf_of == "person-token"
                self.reads += 1
                if self.drop:
                    held.append(read)
                    if len(held) == self.drop:
                        self.drop = 0
                        await answers.put(None)  # type: ignore[arg-type]
                        return
                    continue
                asyncio.get_running_loop().create_task(answer(read))
            self.half_closed.append(token)
            await asyncio.sleep(self.delay + 0.05)
            await answers.put(None)  # type: ignore[arg-type]

        pumping = asyncio.get_running_loop().create_task(pump())
        while (item := await answers.get()) is not None:
            yield item
        pumping.cancel()


class Token:
    """A machine token source whose token the test changes."""

    def __init__(self) -> None:
        self.token = "gateway-1"
        self.invalidated = 0

    async def get(self) -> str:
        return self.token

    def invalidate(self) -> None:
        self.invalidated += 1
        self.token = "gateway-2"

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@asynccontextmanager
async def records(fake: FakeRecords) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    pb_grpc.add_RecordsServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(0)


async def test_concurrent_reads_share_the_streams_and_each_gets_its_own_answer() -> None:
    fake = FakeRecords(delay=0.01)
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=2)
        ids = [f"{n:012d}" for n in range(60)]
        children = await asyncio.gather(*(reads.read(cid, PERSON) for cid in ids))
        await reads.close()
    assert [c.contactpoint_id for c in children] == ids
    assert fake.opened_with == ["gateway-1", "gateway-1"]


async def test_reads_held_by_a_stream_that_ends_are_sent_again_on_a_fresh_one() -> None:
    fake = FakeRecords(drop=5)
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=1)
        ids = [f"{n:012d}" for n in range(5)]
        children = await asyncio.gather(*(reads.read(cid, PERSON) for cid in ids))
        await reads.close()
    assert [c.contactpoint_id for c in children] == ids
    assert len(fake.opened_with) == 2
    assert fake.reads == 10


async def test_a_renewed_token_opens_a_new_stream_and_the_old_one_is_closed() -> None:
    fake = FakeRecords()
    token = Token()
    async with records(fake) as channel:
        reads = ReadStreams(channel, token, streams=1)
        assert (await reads.read("000000000001", PERSON)).contactpoint_id == "000000000001"
        token.token = "gateway-renewed"
        assert (await reads.read("000000000002", PERSON)).contactpoint_id == "000000000002"
        for _ in range(100):
            if fake.half_closed:
                break
            await asyncio.sleep(0.01)
        half_closed = list(fake.half_closed)
        await reads.close()
    assert fake.opened_with == ["gateway-1", "gateway-renewed"]
    assert half_closed == ["gateway-1"]


async def test_a_refused_token_is_fetched_again_and_the_read_sent_again() -> None:
    fake = FakeRecords(refuse_tokens={"gateway-1"})
    token = Token()
    async with records(fake) as channel:
        reads = ReadStreams(channel, token, streams=1)
        assert (await reads.read("000000000001", PERSON)).contactpoint_id == "000000000001"
        await reads.close()
    assert token.invalidated == 1
    assert fake.opened_with == ["gateway-1", "gateway-2"]


def _status(error: Exception) -> object:
    return error.to_status()  # type: ignore[attr-defined]


async def test_records_refusals_are_mapped_as_a_calls_would_be() -> None:
    fake = FakeRecords(
        errors={
            "000000000404": _status(NotFound("no such child")),
            "000000000403": _status(PermissionDenied("person", reason=PERSON_TOKEN_REFUSED)),
            "000000000500": internal_status(),
        }
    )
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=1)
        with pytest.raises(NotFound):
            await reads.read("000000000404", PERSON)
        with pytest.raises(Unauthenticated):  # the person's token, refused by records
            await reads.read("000000000403", PERSON)
        with pytest.raises(Unavailable):
            await reads.read("000000000500", PERSON)
        # The stream went on through all of it.
        assert (await reads.read("000000000001", PERSON)).contactpoint_id == "000000000001"
        await reads.close()
    assert len(fake.opened_with) == 1


async def test_a_read_not_answered_in_time_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_streams, "PEER_TIMEOUT_SECONDS", 0.2)
    fake = FakeRecords(delay=2.0)
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=1)
        with pytest.raises(Unavailable):
            await reads.read("000000000001", PERSON)
        await reads.close()


async def test_records_down_is_unavailable() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        reads = ReadStreams(channel, Token(), streams=2)
        with pytest.raises(Unavailable):
            await reads.read("000000000001", PERSON)
        await reads.close()


async def test_a_cancelled_read_ends_no_other_read_on_its_stream() -> None:
    # Found by probing: grpc cancels the whole call when a write is cancelled, so a practitioner
    # resetting their own request ended every other read the stream held.
    fake = FakeRecords(delay=0.3)
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=1)
        await reads.read("000000000000", PERSON)
        others = [asyncio.create_task(reads.read(f"{n:012d}", PERSON)) for n in range(1, 20)]
        await asyncio.sleep(0.05)
        for _ in range(3):
            victim = asyncio.create_task(reads.read("000000000099", PERSON))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            victim.cancel()
            await asyncio.sleep(0.1)
        children = await asyncio.gather(*others)
        await reads.close()
    assert [c.contactpoint_id for c in children] == [f"{n:012d}" for n in range(1, 20)]
    assert len(fake.opened_with) == 1
    assert fake.reads == 1 + 19 + 3


async def test_a_read_sent_again_after_close_opens_no_stream() -> None:
    fake = FakeRecords(delay=0.3)
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=1)
        pending = asyncio.create_task(reads.read("000000000001", PERSON))
        await asyncio.sleep(0.05)
        await reads.close()
        with pytest.raises(Unavailable):
            await pending
    assert fake.opened_with == ["gateway-1"]


async def test_a_stream_that_answers_nothing_is_given_no_more_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by review: a replica that took reads and answered none kept its share of them.
    monkeypatch.setattr(read_streams, "PEER_TIMEOUT_SECONDS", 0.3)
    fake = FakeRecords(silent_streams=1)
    async with records(fake) as channel:
        reads = ReadStreams(channel, Token(), streams=1)
        with pytest.raises(Unavailable):
            await reads.read("000000000001", PERSON)
        assert (await reads.read("000000000002", PERSON)).contactpoint_id == "000000000002"
        await reads.close()
    assert len(fake.opened_with) == 2
