"""Several events in one call: `AppendEvents` on the audit service (all or none, in order, one
batch), and the platform's `AuditWriter`, which gathers a service's concurrent appends into such
calls while each caller is still answered only once its own event is stored, and fails closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.peers import Metadata
from services.audit.servicer import ACCESS
from services.audit.verify_configured import verify_from_settings
from tests.harness import free_ports
from tests.services.audit.conftest import Log, violations

pytestmark = pytest.mark.asyncio(loop_scope="module")


def event(actor: str, **fields: object) -> pb.AuditEvent:
    values: dict[str, object] = {"action": "GetChild", "outcome": "ALLOWED", "severity": "INFO", **fields}
    return pb.AuditEvent(actor=actor, **values)  # type: ignore[arg-type]


class FixedToken:
    """A machine token that never changes (the gateway's, from the test's identity)."""

    def __init__(self, metadata: Metadata) -> None:
        self._metadata = metadata

    async def get(self) -> str:
        return self._metadata[0][1].removeprefix("Bearer ")

    def invalidate(self) -> None:
        pass

    async def metadata(self) -> Metadata:
        return self._metadata


@pytest_asyncio.fixture(loop_scope="module")
async def channel(log: Log) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{log.running.port}") as ch:
        yield ch


async def test_events_are_stored_in_order_under_one_head(log: Log) -> None:
    await log.append(actor="before")
    sent = [event(f"e{i}", detail=f"d{i}") for i in range(5)]
    resp = await log.stub.AppendEvents(pb.AppendEventsRequest(events=sent), metadata=log.gateway)
    assert list(resp.leaf_indexes) == [1, 2, 3, 4, 5]
    stored = (await log.events(page_size=100)).events
    assert [(e.leaf_index, e.actor, e.detail, e.appended_by) for e in stored[1:6]] == [
        (i + 1, f"e{i}", f"d{i}", "gateway") for i in range(5)
    ]
    report = verify_from_settings(log.settings)
    assert report.ok and report.tree_size == 7, report  # the events, and the read that listed them
    # One call, one batch: no head signs only part of it.
    heads = (await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=log.auditor)).tree_size
    assert heads == 7


async def test_bad_input_stores_nothing_and_names_each_bad_event(log: Log) -> None:
    cases: list[tuple[list[pb.AuditEvent], set[str]]] = [
        ([], {"events"}),
        ([event(f"e{i}") for i in range(257)], {"events"}),
        (
            [event("good"), event("a\x00b"), event("good"), event("x", severity="LOUD", purpose=99)],
            {"events[1].actor", "events[3].severity", "events[3].purpose"},
        ),
        ([event("good"), pb.AuditEvent()], {"events[1].action", "events[1].outcome", "events[1].severity"}),
    ]
    for events, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.stub.AppendEvents(pb.AppendEventsRequest(events=events), metadata=log.gateway)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(err.value) == fields
    assert await log.size() == 0
    # 256 is the most a call takes.
    resp = await log.stub.AppendEvents(
        pb.AppendEventsRequest(events=[event(f"e{i}") for i in range(256)]), metadata=log.gateway
    )
    assert list(resp.leaf_indexes) == list(range(256))


async def test_only_the_suites_auditing_services_append(log: Log) -> None:
    assert ACCESS["AppendEvents"] == ACCESS["AppendEvent"]
    request = pb.AppendEventsRequest(events=[event("x")])
    for metadata, code in (
        (log.practitioner, grpc.StatusCode.PERMISSION_DENIED),
        (log.auditor, grpc.StatusCode.PERMISSION_DENIED),
        (log.callers.council, grpc.StatusCode.PERMISSION_DENIED),
        ((), grpc.StatusCode.UNAUTHENTICATED),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.stub.AppendEvents(request, metadata=metadata)
        assert err.value.code() == code
    # Only the three refusals of authenticated callers are in the log; nothing they sent is.
    stored = (await log.events()).events
    assert [(e.action, e.outcome) for e in stored] == [("AppendEvents", "DENIED")] * 3


async def test_the_writer_gathers_concurrent_appends_and_answers_each(
    log: Log, channel: grpc.aio.Channel
) -> None:
    writer = AuditWriter(channel, FixedToken(log.gateway))
    await asyncio.gather(*(writer.append(event(f"c{i}")) for i in range(64)))
    # Fewer calls than events: appends made while a call was in flight went together.
    assert writer.events == 64 and writer.calls < 64
    stored = (await log.events(page_size=100)).events
    assert sorted(e.actor for e in stored[:64]) == sorted(f"c{i}" for i in range(64))
    report = verify_from_settings(log.settings)
    assert report.ok and report.tree_size == 65, report


async def test_a_bad_event_among_gathered_ones_fails_alone(log: Log, channel: grpc.aio.Channel) -> None:
    writer = AuditWriter(channel, FixedToken(log.gateway), in_flight=1)
    outcomes = await asyncio.gather(
        *(writer.append(event("a\x00b" if i == 5 else f"c{i}")) for i in range(12)), return_exceptions=True
    )
    assert [i for i, o in enumerate(outcomes) if o is not None] == [5]
    assert isinstance(outcomes[5], Unavailable)
    # The first went alone; the other eleven, gathered meanwhile, were refused whole and sent again
    # one by one: eleven stored.
    assert (writer.calls, writer.events) == (2, 12)
    assert await log.size() == 11


async def test_the_writer_fails_closed_when_the_log_is_unreachable() -> None:
    port = free_ports(1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        writer = AuditWriter(ch, FixedToken((("authorization", "Bearer x"),)))
        outcomes = await asyncio.gather(
            *(writer.append(event(f"c{i}")) for i in range(10)), return_exceptions=True
        )
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes


class OlderAudit(pb_grpc.AuditServiceServicer):
    """An audit service from before AppendEvents (a rolling upgrade): one event a call."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def AppendEvent(self, request: pb.AppendEventRequest, context: object) -> pb.AppendEventResponse:
        await asyncio.sleep(0.01)  # calls overlap, so that appends are gathered
        self.stored.append(request.event.actor)
        return pb.AppendEventResponse(leaf_index=len(self.stored) - 1)


async def test_an_older_audit_service_gets_one_event_a_call() -> None:
    older = OlderAudit()
    server = grpc.aio.server()
    pb_grpc.add_AuditServiceServicer_to_server(older, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            writer = AuditWriter(ch, FixedToken((("authorization", "Bearer x"),)))
            await asyncio.gather(*(writer.append(event(f"c{i}")) for i in range(20)))
    finally:
        await server.stop(None)
    assert writer.calls < 20
    assert sorted(older.stored) == sorted(f"c{i}" for i in range(20))


async def test_a_caller_never_waits_for_ever_whatever_the_failure() -> None:
    # A closed channel fails outside gRPC's status codes (a usage error): still Unavailable to
    # each caller, gathered or alone, and never a caller left waiting.
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{free_ports(1)}")
    await ch.close()
    writer = AuditWriter(ch, FixedToken((("authorization", "Bearer x"),)))
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(writer.append(event(f"c{i}")) for i in range(10)), return_exceptions=True),
        timeout=10,
    )
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes


async def test_a_call_waits_for_the_requests_still_under_way(log: Log, channel: grpc.aio.Channel) -> None:
    """Gathering for a moment (the gateway's): while other requests of the process are under way,
    a call waits for their events (up to `gather_seconds`), and goes as soon as none is left.
    Without it the first event goes alone and the rest follow in later calls."""
    start = await log.size()

    async def request(writer: AuditWriter, i: int) -> None:
        async with writer.request("GetChild", f"r{i}") as call:
            call.actor = f"g{i}"
            await asyncio.sleep(0.002 * i)  # each handler takes a little longer

    waits = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=30.0)
    await asyncio.wait_for(asyncio.gather(*(request(waits, i) for i in range(8))), timeout=20)
    # One call for all eight: the last to record let it go, long before 30 seconds.
    assert (waits.calls, waits.events) == (1, 8)

    at_once = AuditWriter(channel, FixedToken(log.gateway))
    await asyncio.gather(*(request(at_once, i) for i in range(8)))
    assert at_once.events == 8 and at_once.calls > 1
    assert await log.size() == start + 16


async def _a_lone_request_goes_at_once(writer: AuditWriter, name: str) -> None:
    # Nothing else under way: its call goes at once (a wait would have been 30 seconds).
    async with asyncio.timeout(10):
        async with writer.request("GetChild", name) as call:
            call.actor = name


async def test_a_lone_request_is_not_kept_waiting(log: Log, channel: grpc.aio.Channel) -> None:
    writer = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=30.0)
    await _a_lone_request_goes_at_once(writer, "alone")
    await _a_lone_request_goes_at_once(writer, "alone-2")
    assert (writer.calls, writer.events) == (2, 2)


async def test_a_request_that_takes_long_keeps_no_one_waiting_for_longer_than_the_moment(
    log: Log, channel: grpc.aio.Channel
) -> None:
    writer = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=0.05)
    slow_done = asyncio.Event()

    async def slow() -> None:
        async with writer.request("GetChild", "slow") as call:
            call.actor = "slow"
            await slow_done.wait()

    slow_task = asyncio.create_task(slow())
    await asyncio.sleep(0)
    # The slow request is under way: the quick one's call waits the moment, then goes without it.
    async with asyncio.timeout(10):
        async with writer.request("GetChild", "quick") as call:
            call.actor = "quick"
    assert (writer.calls, writer.events) == (1, 1) and not slow_task.done()
    slow_done.set()
    await slow_task
    assert (writer.calls, writer.events) == (2, 2)


async def test_a_request_recorded_elsewhere_keeps_no_one_waiting(log: Log, channel: grpc.aio.Channel) -> None:
    """Found by the steady-rate bench: a login identity recorded itself ended with no event of the
    gateway's, and stayed counted as under way, so every later call waited the whole moment."""
    writer = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=30.0)
    async with writer.request("Login", "login") as login:
        login.recorded = True  # identity's answer said it is in the log
    await _a_lone_request_goes_at_once(writer, "after")
    assert (writer.calls, writer.events) == (1, 1)


async def test_a_request_whose_event_cannot_be_built_keeps_no_one_waiting(
    log: Log, channel: grpc.aio.Channel
) -> None:
    """Found by probing: an event that failed to build (a bug elsewhere) left its request counted
    as under way for ever, and every later lone request waited the whole moment."""
    writer = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=30.0)
    with pytest.raises(ValueError):
        async with writer.request("GetChild", "bad") as call:
            call.purpose = "not a purpose"  # type: ignore[assignment]
    await _a_lone_request_goes_at_once(writer, "lone")
    assert (writer.calls, writer.events) == (1, 1)
