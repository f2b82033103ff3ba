"""An event whose caller has stopped waiting is not stored. Found by probing: with the audit
database's write lock held for 12 s, the gateway answered a read UNAVAILABLE (no child) after
5 s, and the audit service then stored that read's event as ALLOWED: the child's subject-access
report showed a disclosure that never happened. Likewise an auditor's ListEvents its client gave up
on was logged as a read that returned events. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from contactpoint.audit.v1 import audit_service_pb2 as pb
from tests.harness import write_locked
from tests.services.audit.conftest import Log

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
