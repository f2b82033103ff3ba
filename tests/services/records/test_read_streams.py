"""ReadChildRecords: GetChildRecord's reads over one long-lived stream, as the gateway makes them.
Each read is admitted for the practitioner whose token it carries and answered as GetChildRecord
answers it; a refused read never ends the stream; only the gateway's account may open one; a
stream ends once the gateway's own token is withdrawn, and when records drains."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.errors import PERSON_TOKEN_REFUSED
from contactpoint.platform.server import RunningServer
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.records.main import MIGRATIONS, build
from tests.harness import create_user, running_service
from tests.services.records.conftest import ORG_A, World, _login

CODE = grpc.StatusCode
Metadata = tuple[tuple[str, str], ...]
pytestmark = pytest.mark.asyncio(loop_scope="module")


def _reason(status: status_pb2.Status) -> str:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def _person_token(world: World) -> str:
    return world.person[0][1].removeprefix("Bearer ")


async def _two_children(world: World) -> tuple[str, str]:
    first = await world.submit(world.record("a"), "a")
    second = await world.submit(
        world.record(
            "b",
            nhs_number="",
            date_of_birth=world.next_day(),
            name=child_pb2.PersonName(given_names="Zebedee", family_name="Quartermaine"),
        ),
        "b",
    )
    assert first.contactpoint_id != second.contactpoint_id
    return first.contactpoint_id, second.contactpoint_id


async def _answers(
    stub: pb_grpc.RecordsServiceStub, metadata: Metadata, reads: list[pb.ReadChildRecordsRequest]
) -> dict[int, pb.ReadChildRecordsResponse]:
    """Send every read on one stream, half-close, and collect the answers by read id."""
    call = stub.ReadChildRecords(metadata=metadata)
    for read in reads:
        await call.write(read)
    await call.done_writing()
    answers = {}
    async for answer in call:
        assert answer.read_id not in answers, "one answer a read"
        answers[answer.read_id] = answer
    assert await call.code() == CODE.OK
    return answers


async def test_each_read_is_answered_as_get_child_record_answers_it(world: World) -> None:
    first, second = await _two_children(world)
    token = _person_token(world)
    reads = [
        pb.ReadChildRecordsRequest(read_id=n, contactpoint_id=cid, on_behalf_of=token)
        for n, cid in enumerate([first, second] * 20, start=1)
    ]
    reads.append(pb.ReadChildRecordsRequest(read_id=99, contactpoint_id="000000000000", on_behalf_of=token))
    answers = await _answers(world.records, world.gateway, reads)

    assert sorted(answers) == [*range(1, 41), 99]
    for read in reads[:-1]:
        assert answers[read.read_id].child == await world.get(read.contactpoint_id)
        assert not answers[read.read_id].HasField("error")
    assert answers[99].error.code == CODE.NOT_FOUND.value[0]
    assert not answers[99].HasField("child")


async def test_a_read_is_refused_for_its_own_person_and_the_stream_goes_on(world: World) -> None:
    child, _ = await _two_children(world)
    token = _person_token(world)
    manager = world.services.manager_a[0][1].removeprefix("Bearer ")
    reads = [
        pb.ReadChildRecordsRequest(read_id=1, contactpoint_id=child, on_behalf_of="not-a-token"),
        pb.ReadChildRecordsRequest(read_id=2, contactpoint_id=child, on_behalf_of=""),
        # A data manager is a person, but not one the gateway reads for.
        pb.ReadChildRecordsRequest(read_id=3, contactpoint_id=child, on_behalf_of=manager),
        # The gateway's own token is not a person's.
        pb.ReadChildRecordsRequest(
            read_id=4, contactpoint_id=child, on_behalf_of=world.gateway[0][1].removeprefix("Bearer ")
        ),
        pb.ReadChildRecordsRequest(read_id=5, contactpoint_id=child, on_behalf_of=token),
    ]
    answers = await _answers(world.records, world.gateway, reads)

    for refused in (1, 2, 3, 4):
        assert answers[refused].error.code == CODE.PERMISSION_DENIED.value[0], refused
        assert not answers[refused].HasField("child")
    assert _reason(answers[1].error) == PERSON_TOKEN_REFUSED
    assert _reason(answers[3].error) != PERSON_TOKEN_REFUSED
    assert answers[5].child.contactpoint_id == child


@pytest.mark.parametrize("caller", ["council", "person", "none"])
async def test_only_the_gateway_may_open_a_stream_of_reads(world: World, caller: str) -> None:
    child, _ = await _two_children(world)
    metadata = {"council": world.council_a, "person": world.person, "none": ()}[caller]
    call = world.records.ReadChildRecords(metadata=metadata)
    # The server may refuse the stream before the request is sent: the write then fails on the
    # client's side (INTERNAL, "Failed execute_batch", seen once in CI), and the refusal is the
    # call's own status.
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call.write(
            pb.ReadChildRecordsRequest(read_id=1, contactpoint_id=child, on_behalf_of=_person_token(world))
        )
    with pytest.raises(grpc.aio.AioRpcError):
        await call.read()
    assert await call.code() == (CODE.UNAUTHENTICATED if caller == "none" else CODE.PERMISSION_DENIED)


async def test_a_practitioners_token_revoked_mid_stream_reads_nothing_more(world: World) -> None:
    child, _ = await _two_children(world)
    name = f"pat-{world.prefix}"
    user = await asyncio.to_thread(create_user, world.services.identity_url, name, "practitioner", org=ORG_A)
    async with grpc.aio.insecure_channel(world.services.identity_target) as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        mine = await _login(identity, world.gateway, name, user.totp_secret)
        token = mine[0][1].removeprefix("Bearer ")
        call = world.records.ReadChildRecords(metadata=world.gateway)
        await call.write(pb.ReadChildRecordsRequest(read_id=1, contactpoint_id=child, on_behalf_of=token))
        assert (await call.read()).child.contactpoint_id == child

        await identity.RevokeToken(identity_pb.RevokeTokenRequest(), metadata=mine)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        for n in range(2, 10_000):
            assert loop.time() < deadline, "records never learnt that the practitioner's token was revoked"
            await call.write(pb.ReadChildRecordsRequest(read_id=n, contactpoint_id=child, on_behalf_of=token))
            answer = await call.read()
            if answer.HasField("error"):
                break
            assert answer.child.contactpoint_id == child
            await asyncio.sleep(0.05)
    assert answer.error.code == CODE.PERMISSION_DENIED.value[0]
    assert _reason(answer.error) == PERSON_TOKEN_REFUSED
    assert not answer.HasField("child")
    # The stream goes on for everyone else.
    other = pb.ReadChildRecordsRequest(
        read_id=99_999, contactpoint_id=child, on_behalf_of=_person_token(world)
    )
    await call.write(other)
    assert (await call.read()).child.contactpoint_id == child
    call.cancel()


async def test_a_stream_ends_once_the_gateways_own_token_is_revoked(world: World) -> None:
    # A token of the gateway's own issued for this test alone: revoking it touches no other test.
    child, _ = await _two_children(world)
    client_id, secret = world.services.gateway_account
    async with grpc.aio.insecure_channel(world.services.identity_target) as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        issued = await identity.IssueServiceToken(
            identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret)
        )
        metadata = (("authorization", f"Bearer {issued.access_token}"),)
        call = world.records.ReadChildRecords(metadata=metadata)
        token = _person_token(world)
        await call.write(pb.ReadChildRecordsRequest(read_id=1, contactpoint_id=child, on_behalf_of=token))
        assert (await call.read()).child.contactpoint_id == child

        await identity.RevokeToken(identity_pb.RevokeTokenRequest(), metadata=metadata)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            for n in range(2, 10_000):
                assert loop.time() < deadline, "records never learnt that the gateway's token was revoked"
                await call.write(
                    pb.ReadChildRecordsRequest(read_id=n, contactpoint_id=child, on_behalf_of=token)
                )
                answer = await call.read()
                assert answer.child.contactpoint_id == child
                await asyncio.sleep(0.05)
    assert ended.value.code() == CODE.UNAUTHENTICATED


async def test_a_draining_records_ends_its_streams_without_waiting_for_the_grace(world: World) -> None:
    child, _ = await _two_children(world)
    settings = world.services.records_settings.model_copy(update={"listen": "127.0.0.1:0"})
    async with (
        running_service("records", MIGRATIONS, build, settings) as (running, target),
        grpc.aio.insecure_channel(target) as channel,
    ):
        call = pb_grpc.RecordsServiceStub(channel).ReadChildRecords(metadata=world.gateway)
        token = _person_token(world)
        for n in range(1, 11):
            await call.write(pb.ReadChildRecordsRequest(read_id=n, contactpoint_id=child, on_behalf_of=token))
        answered = {(await call.read()).read_id for _ in range(10)}
        assert answered == set(range(1, 11))

        started = asyncio.get_running_loop().time()
        stopping = asyncio.create_task(running.stop(30))
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == CODE.OK
        await stopping
        assert asyncio.get_running_loop().time() - started < 10, "the stream held the grace period"


Feed = grpc.aio.StreamStreamCall[pb.SubmitSourceRecordRequest, pb.SubmitSourceRecordResponse]


@contextlib.asynccontextmanager
async def _own_records_feed(world: World) -> AsyncIterator[tuple[RunningServer, Feed]]:
    """A records process of the test's own (to stop), and council A's stream of source records to it."""
    settings = world.services.records_settings.model_copy(update={"listen": "127.0.0.1:0"})
    async with (
        running_service("records", MIGRATIONS, build, settings) as (running, target),
        grpc.aio.insecure_channel(target) as channel,
    ):
        yield running, pb_grpc.RecordsServiceStub(channel).StreamSourceRecords(metadata=world.council_a)


async def _send(world: World, call: Feed, rid: str) -> pb.SubmitSourceRecordResponse:
    record = world.record(rid, nhs_number="", date_of_birth=world.next_day())
    await call.write(pb.SubmitSourceRecordRequest(record=record, request_id=rid))
    return await call.read()


async def test_a_feed_ends_after_its_batch_before_the_grace_runs_out(world: World) -> None:
    # Found by an operations probe: a council's long stream ran on until the shutdown's grace cut
    # it off in the middle of a write ("Cancelling all calls"), and records overran a 10 s grace
    # by 1-5 s. A stream that finishes within most of the grace still does (test_up_processes).
    async with _own_records_feed(world) as (running, call):

        async def send(n: int) -> pb.SubmitSourceRecordResponse:
            return await _send(world, call, f"drain-{n}")

        for n in range(3):
            answer = await send(n)
            assert answer.contactpoint_id and not answer.HasField("error"), answer
        # A grace of 8 s: its last 30% (2.4 s) is the time the record under way has to be written
        # and the refusal to leave; 1.2 s of a 4 s grace was once too little under a loaded CI
        # (the grace cut the stream off as it ended: INTERNAL, though records had refused it).
        stopping = asyncio.create_task(running.stop(8))
        # The council goes on sending, and each record is answered, until the last call (70% of
        # the grace); then it is told to send the rest again (to another replica, or later).
        answered = 3
        while True:
            try:
                answer = await send(answered)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):  # ended while reading or sending
                break
            assert answer.contactpoint_id and not answer.HasField("error"), answer
            answered += 1
            await asyncio.sleep(0.05)
        assert await call.code() == CODE.UNAVAILABLE
        assert "send the records not answered again" in (await call.details() or "")
        assert answered > 10, answered  # it was not cut off as shutdown began
        await stopping


async def test_an_idle_feed_ends_as_records_drains_not_at_the_last_call(world: World) -> None:
    # Found by an operations probe: a council's stream left open with nothing to send held
    # records' shutdown until the last call (7 s into a 10 s grace; `up` took 12.7 s on SIGINT).
    async with _own_records_feed(world) as (running, call):
        answer = await _send(world, call, "idle-feed")
        assert answer.contactpoint_id and not answer.HasField("error"), answer

        started = asyncio.get_running_loop().time()
        stopping = asyncio.create_task(running.stop(30))  # the last call would come at 21 s
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await call.read()
        assert ended.value.code() == CODE.UNAVAILABLE
        assert "send the records not answered again" in (ended.value.details() or "")
        await stopping
        assert asyncio.get_running_loop().time() - started < 10, "the idle stream held the grace period"
