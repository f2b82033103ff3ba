"""An event whose caller has stopped waiting is not stored. Found by probing: with the audit
database's write lock held for 12 s, the gateway answered a read UNAVAILABLE (no child) after
5 s, and the audit service then stored that read's event as ALLOWED: the child's subject-access
report showed a disclosure that never happened. Likewise an auditor's ListEvents its client gave up
on was logged as a read that returned events. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.deadlines import COMMIT_WITHIN, DeadlinePassed
from contactpoint.platform.errors import Unavailable, error_reason
from tests.harness import write_locked
from tests.services.audit.conftest import Log
from tests.services.audit.test_append_events import FixedToken

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The caller's deadline, and how long the database stays locked: well past it.
DEADLINE = 1.5
LOCKED = 3.0


async def _late(call: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    # Its own deadline, or, a moment before it, the service's word that nothing was stored.
    assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


def _event(actor: str) -> pb.AuditEvent:
    return pb.AuditEvent(action="GetChild", outcome="ALLOWED", severity="INFO", actor=actor)


async def test_an_event_its_caller_gave_up_on_is_not_stored(log: Log) -> None:
    await log.append(actor="before")
    size = await log.size()
    with write_locked(log.settings.database_url, "leaves"):
        late_one = log.stub.AppendEvent(
            pb.AppendEventRequest(event=_event("gave-up")), metadata=log.gateway, timeout=DEADLINE
        )
        late_many = log.stub.AppendEvents(
            pb.AppendEventsRequest(events=[_event("gave-up-too"), _event("gave-up-too")]),
            metadata=log.gateway,
            timeout=DEADLINE,
        )
        # One that waits long enough is stored once the lock is let go.
        patient = asyncio.ensure_future(
            log.stub.AppendEvent(
                pb.AppendEventRequest(event=_event("waited")), metadata=log.gateway, timeout=30
            )
        )
        await asyncio.gather(_late(late_one), _late(late_many))
        await asyncio.sleep(LOCKED - DEADLINE)
    assert (await patient).leaf_index == size
    assert await log.size() == size + 1
    actors = [e.actor for e in (await log.events(page_size=100)).events]
    assert "gave-up" not in actors and "gave-up-too" not in actors
    assert actors[:2] == ["before", "waited"]
    # And the log goes on (after the ListEvents just made).
    assert await log.append(actor="after") == size + 2


async def test_a_read_its_auditor_gave_up_on_is_not_logged_as_read(log: Log) -> None:
    await log.append(actor="someone")
    with write_locked(log.settings.database_url, "leaves"):
        await _late(
            log.stub.ListEvents(
                pb.ListEventsRequest(page_size=10),
                metadata=(*log.auditor, ("x-request-id", "read-given-up")),
                timeout=DEADLINE,
            )
        )
        await asyncio.sleep(LOCKED - DEADLINE)
    events = (await log.events(page_size=100)).events
    assert "read-given-up" not in [e.request_id for e in events]
    assert [e.action for e in events].count("ListEvents") == 0  # this read's own event comes after


# --- the writer (the gateway's, records' data managers'): an event carries its request's deadline ---


@pytest_asyncio.fixture(loop_scope="module")
async def channel(log: Log) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{log.running.port}") as ch:
        yield ch


async def test_a_gathered_call_is_as_patient_as_its_earliest_event_and_the_rest_go_again(
    log: Log, channel: grpc.aio.Channel
) -> None:
    """One call carries events of several requests; it is given no longer than the most impatient
    of them waits, so that none is stored after its caller gave up. When the log rolls the call
    back for that, the late event fails (`DeadlinePassed`, nothing stored) and the others are sent
    again, and stored once the log can take them."""
    size = await log.size()
    writer = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=1.0)
    with write_locked(log.settings.database_url, "leaves"):
        writer.began()
        writer.began()  # two requests under way: the call waits for both events
        impatient = writer.enqueue(_event("impatient"), ends_request=True, by=time.monotonic() + DEADLINE)
        patient = writer.enqueue(_event("patient"), ends_request=True)
        with pytest.raises(DeadlinePassed):
            await impatient
        assert not patient.done()
        await asyncio.sleep(LOCKED - DEADLINE)
    await asyncio.wait_for(patient, 10)
    assert writer.calls >= 2 and writer.events >= 3  # both together, then the patient one again
    assert [e.actor for e in (await log.events(page_size=100)).events][size:] == ["patient"]


async def test_an_event_already_late_is_not_sent(log: Log, channel: grpc.aio.Channel) -> None:
    size = await log.size()
    writer = AuditWriter(channel, FixedToken(log.gateway))
    with pytest.raises(DeadlinePassed):
        await writer.enqueue(_event("too-late"), by=time.monotonic() - 0.1)
    assert writer.calls == 0
    assert await log.size() == size


async def test_a_call_queued_behind_a_held_batch_is_answered_at_its_deadline(
    log: Log, channel: grpc.aio.Channel
) -> None:
    """Found by probing: with one replica's batch held up by the database's lock, another's call
    waited in the queue behind it past its deadline, unanswered, so its caller could not tell
    whether its events were stored and failed the patient request gathered with the impatient one,
    which then left no event at all. A queued call is now answered at its deadline (nothing
    stored), and the patient event is sent again."""
    size = await log.size()
    first_replica = AuditWriter(channel, FixedToken(log.gateway))
    second_replica = AuditWriter(channel, FixedToken(log.gateway), gather_seconds=1.0)
    with write_locked(log.settings.database_url, "leaves"):
        held = first_replica.enqueue(_event("held"))  # its batch now waits for the lock
        await asyncio.sleep(0.3)
        second_replica.began()
        second_replica.began()
        impatient = second_replica.enqueue(
            _event("impatient"), ends_request=True, by=time.monotonic() + DEADLINE
        )
        patient = second_replica.enqueue(_event("patient"), ends_request=True)
        with pytest.raises(DeadlinePassed):
            await impatient
        assert not patient.done()
        await asyncio.sleep(LOCKED - DEADLINE)
    await asyncio.wait_for(held, 10)
    await asyncio.wait_for(patient, 10)
    stored = [e.actor for e in (await log.events(page_size=100)).events][size:]
    assert sorted(stored) == ["held", "patient"]


async def test_an_append_asked_to_commit_within_a_time_is_refused_in_time_and_not_stored(log: Log) -> None:
    """A sender whose own callers wait less than its call does (the gateway's writer) asks for a
    commit within a time (`COMMIT_WITHIN`) and gives the call a longer deadline, so that the answer
    "too late, nothing stored" always reaches it (found by re-probing: on a loaded host, with the
    call's deadline the same as the caller's, it arrived after it)."""
    size = await log.size()
    with write_locked(log.settings.database_url, "leaves"):
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.stub.AppendEvent(
                pb.AppendEventRequest(event=_event("asked")),
                metadata=(*log.gateway, (COMMIT_WITHIN, "1000")),
                timeout=30,
            )
        took = time.monotonic() - started
        await asyncio.sleep(LOCKED - took)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(err.value) == DeadlinePassed.reason
    assert took < 2.5
    assert await log.size() == size


async def test_an_event_without_a_deadline_still_fails_when_the_log_stays_locked(
    log: Log, channel: grpc.aio.Channel
) -> None:
    """Sent again only when rolled back for another event's deadline: with none, a call the log
    rolled back for its own deadline fails as before (UNAVAILABLE at about 5 s), not for ever."""
    size = await log.size()
    writer = AuditWriter(channel, FixedToken(log.gateway))
    with write_locked(log.settings.database_url, "leaves"):
        started = time.monotonic()
        with pytest.raises(Unavailable) as err:
            await writer.enqueue(_event("no-deadline"))
        assert not isinstance(err.value, DeadlinePassed)
        assert time.monotonic() - started < 7.0
    assert await log.size() == size


# --- a receiver that stalls: what the headers still say ---

STALL = 2.0  # how long the request waits on its way, as in a receiver paused after it arrived


class _Stalling(grpc.GenericRpcHandler):
    """A relay in front of the log that holds each call for `STALL` seconds and then passes it on
    with the caller's headers and remaining time as they were sent: what the log sees when its
    process was paused (SIGSTOP, a starved host) while the request waited in its socket, since a
    time to wait is counted from when the receiver reads it."""

    def __init__(self, upstream: grpc.aio.Channel) -> None:
        self._upstream = upstream

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method  # type: ignore[attr-defined]

        async def relay(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return await self._relay(method, request, context)

        return grpc.unary_unary_rpc_method_handler(relay)  # bytes in, bytes out

    async def _relay(
        self, method: str, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        remaining = context.time_remaining()
        sent = tuple((k, v) for k, v in context.invocation_metadata() or () if not k.startswith("grpc-"))
        await asyncio.sleep(STALL)
        call = self._upstream.unary_unary(method)
        try:
            return await call(request, metadata=sent, timeout=remaining)  # type: ignore[no-any-return]
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()))
            raise


async def test_an_event_is_not_stored_when_the_log_reads_it_after_its_callers_deadline(
    log: Log, channel: grpc.aio.Channel
) -> None:
    """Found by probing: the audit process was stopped for 2.5 s while a read with a 1 s deadline
    waited for its event; on waking it stored the event as ALLOWED, though the client had given up
    and got nothing. The time to commit within was counted from when the log read the request. The
    writer now sends the same moment by the wall clock too (`COMMIT_BY_WALL`), which moved on while
    the log was stalled: the event is refused (DEADLINE_PASSED) and nothing is stored."""
    size = await log.size()
    relay = grpc.aio.server()
    relay.add_generic_rpc_handlers((_Stalling(channel),))
    port = relay.add_insecure_port("127.0.0.1:0")
    await relay.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as through_relay:
            writer = AuditWriter(through_relay, FixedToken(log.gateway))
            with pytest.raises(DeadlinePassed):
                await writer.enqueue(_event("stalled"), by=time.monotonic() + 1.0)
            # One with time to spare after the stall is stored through the same relay.
            await writer.enqueue(_event("in-time"), by=time.monotonic() + STALL + 3.0)
    finally:
        await relay.stop(None)
    assert [e.actor for e in (await log.events(page_size=100)).events][size:] == ["in-time"]
