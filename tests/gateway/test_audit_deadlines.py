"""A read is logged as what its caller got. Found by probing: a partner's GetChild with a 1.5 s
deadline, while the audit log was slow, was stored as ALLOWED once the log caught up, though the
client had given up and no child ever reached it: the child's subject-access report showed a
disclosure that never happened. Now the gateway gives its event no longer than its caller waits:
the read fails UNAVAILABLE and is logged UNAVAILABLE; a patient read beside it is served and logged
ALLOWED. Real services over gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from tests.conftest import DatabaseFactory
from tests.gateway.test_servicer import SAFEGUARDING, World, _events, _world
from tests.harness import bearer, create_user, eventually, write_locked

DEADLINE = 1.5  # the impatient client's
LOCKED = 3.0  # how long the log's writes are held up


@pytest.fixture
async def world(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        yield await _world(stack, databases, tmp_path)


def _read(world: World, token: str, cp: str, request_id: str, timeout: float) -> object:
    return world.gateway.GetChild(
        pb.GetChildRequest(contactpoint_id=cp, purpose=SAFEGUARDING),
        metadata=(*bearer(token), ("x-request-id", request_id)),
        timeout=timeout,
    )


async def test_a_read_its_client_gave_up_on_is_logged_unavailable_not_allowed(world: World) -> None:
    cp = await world.submit("gw-deadline-1")
    pat = create_user(world.identity_url, "pat.one", "practitioner")
    sam = create_user(world.identity_url, "sam.two", "practitioner")
    aud = create_user(world.identity_url, "avery.auditor", "auditor")
    impatient_token = await world.login("pat.one", pat.totp_secret)
    patient_token = await world.login("sam.two", sam.totp_secret)
    auditor = await world.login("avery.auditor", aud.totp_secret)
    with write_locked(world.audit_url, "leaves"):
        patient = asyncio.ensure_future(_read(world, patient_token, cp, "read-patient", 30))  # type: ignore[arg-type]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _read(world, impatient_token, cp, "read-gave-up", DEADLINE)  # type: ignore[misc]
        assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
        await asyncio.sleep(LOCKED - DEADLINE)
    assert (await patient).child.contactpoint_id == cp

    async def both_logged() -> bool:
        ids = [e.request_id for e in await _events(world, auditor)]
        return "read-gave-up" in ids and "read-patient" in ids

    await eventually(both_logged, within=10.0)
    await asyncio.sleep(0.5)  # nothing more comes
    events = await _events(world, auditor)
    outcomes = {
        rid: [(e.action, e.actor, e.outcome) for e in events if e.request_id == rid]
        for rid in ("read-gave-up", "read-patient")
    }
    assert outcomes == {
        "read-gave-up": [("GetChild", "pat.one", "UNAVAILABLE")],
        "read-patient": [("GetChild", "sam.two", "ALLOWED")],
    }
    [gave_up] = [e for e in events if e.request_id == "read-gave-up"]
    assert gave_up.contactpoint_id == cp
