"""WatchEvents over real gRPC, on SQLite and PostgreSQL: an auditor follows HIGH events as they
are appended (by this audit process or another on the same database), from where they left off;
opening a watch is logged; only auditors may watch; a watch ends when its token is revoked, when
the client cancels and when the service stops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import grpc
import pytest

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.service import start_built
from services.audit.main import build
from tests.harness import bearer, running_service
from tests.services.audit.conftest import Log, Metadata, violations

pytestmark = pytest.mark.asyncio(loop_scope="module")
# How long a test waits for something that should happen at the next poll (0.5 s): generous, so
# that a slow machine does not fail it, and never slept out when things work.
DEADLINE = 15.0
Stream = grpc.aio.UnaryStreamCall[pb.WatchEventsRequest, pb.AuditEvent]


def watch(log: Log, metadata: Metadata | None = None, **request: object) -> Stream:
    return log.stub.WatchEvents(pb.WatchEventsRequest(**request), metadata=metadata or log.auditor)  # type: ignore[arg-type]


async def next_event(stream: Stream) -> pb.AuditEvent:
    """The next event the watch sends, waiting at most DEADLINE."""
    event = await asyncio.wait_for(stream.read(), timeout=DEADLINE)
    assert isinstance(event, pb.AuditEvent), event
    return event


async def ending(stream: Stream) -> grpc.StatusCode:
    """How the watch ends (within DEADLINE), reading whatever it still sends."""
    try:
        while await asyncio.wait_for(stream.read(), timeout=DEADLINE) is not grpc.aio.EOF:
            pass
    except grpc.aio.AioRpcError as err:
        return err.code()
    return await stream.code()


async def append_all(log: Log, severities: Sequence[str]) -> list[int]:
    return [await log.append(severity=s, actor=f"{s.lower()}-{i}") for i, s in enumerate(severities)]


async def test_an_auditor_sees_high_events_as_they_are_appended(log: Log) -> None:
    assert await append_all(log, ["INFO", "HIGH", "WARNING"]) == [0, 1, 2]
    stream = watch(log)
    # First what is stored (HIGH only, by default), then what comes: the INFO event is not sent.
    assert (await next_event(stream)).leaf_index == 1
    await log.append(severity="INFO", actor="quiet")
    shielded = await log.append(severity="HIGH", actor="sam.police", detail="shield-override")
    event = await next_event(stream)
    assert (event.leaf_index, event.actor, event.detail, event.appended_by) == (
        shielded,
        "sam.police",
        "shield-override",
        "gateway",
    )
    stream.cancel()
    assert await stream.code() == grpc.StatusCode.CANCELLED

    # Opening the watch was logged (before anything was sent: right after the stored events).
    opened = [e for e in (await log.events(actor="avery.auditor")).events if e.action == "WatchEvents"]
    assert [(e.leaf_index, e.outcome, e.severity, e.appended_by) for e in opened] == [
        (3, "ALLOWED", "INFO", "(audit service)")
    ]
    assert opened[0].detail == "watch: min_severity=HIGH, after_leaf_index=none"


async def test_a_watch_resumes_after_an_index_at_a_chosen_severity(log: Log) -> None:
    await append_all(log, ["HIGH", "WARNING", "INFO", "HIGH", "WARNING"])
    stream = watch(log, min_severity="WARNING", after_leaf_index=1)
    assert [(await next_event(stream)).leaf_index for _ in range(2)] == [3, 4]
    later = await log.append(severity="WARNING")
    assert (await next_event(stream)).leaf_index == later
    stream.cancel()
    # At INFO a watch sees everything, its own opening included; index 0 is "after" nothing.
    everything = watch(log, min_severity="INFO", after_leaf_index=0)
    sent = [(await next_event(everything)) for _ in range(later + 1)]
    assert [e.leaf_index for e in sent] == list(range(1, later + 2))
    assert sent[-1].action == "WatchEvents" and "after_leaf_index=0" in sent[-1].detail
    everything.cancel()


async def test_only_auditors_may_watch_and_bad_requests_are_refused(log: Log) -> None:
    await log.append(severity="HIGH")
    for metadata, code in (
        (log.practitioner, grpc.StatusCode.PERMISSION_DENIED),
        (log.gateway, grpc.StatusCode.PERMISSION_DENIED),
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (bearer("not-a-token"), grpc.StatusCode.UNAUTHENTICATED),
    ):
        stream = log.stub.WatchEvents(pb.WatchEventsRequest(), metadata=metadata)
        assert await ending(stream) == code
    for request, fields in (
        (pb.WatchEventsRequest(min_severity="LOUD"), {"min_severity"}),
        (pb.WatchEventsRequest(min_severity="high"), {"min_severity"}),
        (pb.WatchEventsRequest(after_leaf_index=2**64 - 1), {"after_leaf_index"}),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await next_event(log.stub.WatchEvents(request, metadata=log.auditor))
        assert violations(err.value) == fields
    # The refused machine account and person, and the auditor's refused requests, are logged;
    # nothing else was (no watch opened).
    events = (await log.events()).events
    assert [(e.actor, e.action, e.outcome) for e in events[1:]] == [
        ("pat.practitioner", "WatchEvents", "DENIED"),
        ("gateway", "WatchEvents", "DENIED"),
        *[("avery.auditor", "WatchEvents", "INVALID")] * 3,
    ]


async def test_a_watch_sees_what_another_audit_process_appends(log: Log) -> None:
    stream = watch(log)
    await log.append(severity="HIGH", actor="first")
    assert (await next_event(stream)).actor == "first"
    # A second audit service on the same database (as replicas run): the watch reads the
    # database, not its own process's appends.
    async with (
        running_service("audit", None, build, log.settings) as (_, target),
        grpc.aio.insecure_channel(target) as ch,
    ):
        other = pb_grpc.AuditServiceStub(ch)
        event = pb.AuditEvent(action="GetChild", outcome="ALLOWED", severity="HIGH", actor="elsewhere")
        await other.AppendEvent(pb.AppendEventRequest(event=event), metadata=log.gateway)
        assert (await next_event(stream)).actor == "elsewhere"
    stream.cancel()


async def test_a_watch_ends_when_its_token_is_revoked(log: Log) -> None:
    # A second auditor of their own (the module's identity serves both databases' runs).
    token = await log.callers.login(f"rex.{uuid.uuid4().hex[:8]}", "auditor")
    stream = watch(log, bearer(token))
    await log.append(severity="HIGH", actor="first")
    assert (await next_event(stream)).actor == "first"  # the watch is running
    async with grpc.aio.insecure_channel(log.callers.target) as ch:
        await identity_grpc.IdentityServiceStub(ch).RevokeToken(
            identity_pb.RevokeTokenRequest(), metadata=bearer(token)
        )
    assert await ending(stream) == grpc.StatusCode.UNAUTHENTICATED


async def test_closing_the_service_ends_its_watches(log: Log) -> None:
    running = await start_built(await build(log.settings), "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = pb_grpc.AuditServiceStub(ch)
            streams = [stub.WatchEvents(pb.WatchEventsRequest(), metadata=log.auditor) for _ in range(2)]
            await log.append(severity="HIGH", actor="first")
            for stream in streams:
                assert (await next_event(stream)).actor == "first"
            # Closing the servicer ends its watches at their next look, UNAVAILABLE (reopen it).
            await running.services[0].servicer.close()
            for stream in streams:
                assert await ending(stream) == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)


async def test_a_watch_is_cut_when_the_server_stops(log: Log) -> None:
    running = await start_built(await build(log.settings), "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stream = pb_grpc.AuditServiceStub(ch).WatchEvents(pb.WatchEventsRequest(), metadata=log.auditor)
        await log.append(severity="HIGH", actor="first")
        assert (await next_event(stream)).actor == "first"
        await asyncio.wait_for(running.stop(0.2), timeout=DEADLINE)
        # UNAVAILABLE: the client reconnects (to another replica) and resumes after its last event.
        assert await ending(stream) == grpc.StatusCode.UNAVAILABLE


async def test_a_watch_outlives_a_poll_that_fell_behind(log: Log) -> None:
    """The service's poll of identity falls behind (here it never runs again: a minute apart,
    while the state counts as stale after 0.3 s): the watch's check between looks asks identity
    itself, as a new call would, and goes on, rather than end UNAVAILABLE at its next look."""
    settings = log.settings.model_copy(
        update={"revocation_poll_seconds": 60.0, "revocation_max_staleness_seconds": 0.3}
    )
    running = await start_built(await build(settings), "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stream = pb_grpc.AuditServiceStub(ch).WatchEvents(pb.WatchEventsRequest(), metadata=log.auditor)
            for actor in ("first", "second"):
                await asyncio.sleep(1.0)  # two looks or more, each after the state went stale
                await log.append(severity="HIGH", actor=actor)
                assert (await next_event(stream)).actor == actor
            stream.cancel()
    finally:
        await running.stop(0)
