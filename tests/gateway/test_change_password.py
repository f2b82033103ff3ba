"""A person changes their own password through the gateway (GatewayService.ChangePassword), the
only door for people: identity checks it and records the call, and the gateway writes no second
event. Real services over gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from contactpoint.platform.errors import CALL_RECORDED
from services.identity import password_change
from tests.conftest import DatabaseFactory
from tests.gateway.test_servicer import PASSWORD, SAFEGUARDING, World, _events, _world
from tests.harness import bearer, create_user, eventually, totp_code, write_locked
from tests.platform.probe import violations

NEW = "mauve otter lantern quietly 42"


@pytest.fixture
async def world(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        yield await _world(stack, databases, tmp_path)


def change(current: str, new: str) -> pb.ChangePasswordRequest:
    return pb.ChangePasswordRequest(current_password=current, new_password=new)


async def _login(world: World, username: str, password: str, secret: str, step: int) -> str:
    # The code of `step` steps from now (TOTP takes one step either side; each code works once).
    code = await totp_code(secret, step)
    resp = await world.gateway.Login(pb.LoginRequest(username=username, password=password, totp_code=code))
    return resp.access_token


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


def _error_metadata(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(exc)
    out: dict[str, str] = {}
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            out.update(info.metadata)
    return out


async def _reads(world: World, token: str, cp: str) -> bool:
    try:
        await world.gateway.GetChild(
            pb.GetChildRequest(contactpoint_id=cp, purpose=SAFEGUARDING), metadata=bearer(token)
        )
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False
    return True


async def test_a_practitioner_changes_their_password_through_the_gateway(world: World) -> None:
    cp = await world.submit("cpw-1")
    pat = create_user(world.identity_url, "pat.one", "practitioner")
    aud = create_user(world.identity_url, "avery.auditor", "auditor")
    token = await _login(world, "pat.one", PASSWORD, pat.totp_secret, -1)
    other_session = await _login(world, "pat.one", PASSWORD, pat.totp_secret, 0)
    assert await _reads(world, token, cp)

    await world.gateway.ChangePassword(
        change(PASSWORD, NEW), metadata=(*bearer(token), ("x-request-id", "cpw-request-1"))
    )
    # Every session of the account ends, this one too, within 2 s.
    await eventually(lambda: _ended(world, token, cp))
    assert not await _reads(world, other_session, cp)
    err = await _refused(_login(world, "pat.one", PASSWORD, pat.totp_secret, 1))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    fresh = await _login(world, "pat.one", NEW, pat.totp_secret, 1)
    assert await _reads(world, fresh, cp)

    # One event for the one request: identity's, with the request's id, never a password.
    events = [
        e
        for e in await _events(world, await world.login("avery.auditor", aud.totp_secret))
        if e.action == "ChangePassword"
    ]
    assert [(e.actor, e.outcome, e.request_id) for e in events] == [("pat.one", "ALLOWED", "cpw-request-1")]
    assert PASSWORD not in events[0].detail and NEW not in events[0].detail


async def _ended(world: World, token: str, cp: str) -> bool:
    return not await _reads(world, token, cp)


async def test_refusals_are_relayed_once_recorded_and_say_nothing_internal(world: World) -> None:
    dana = create_user(world.identity_url, "dana.manager", "data-manager")  # any person, not only readers
    aud = create_user(world.identity_url, "avery.auditor", "auditor")
    token = bearer(await world.login("dana.manager", dana.totp_secret))

    weak = await _refused(world.gateway.ChangePassword(change(PASSWORD, "password1234"), metadata=token))
    assert weak.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(weak)) == {"new_password"}
    for attempt in range(5):
        wrong = await _refused(
            world.gateway.ChangePassword(change(f"a wrong guess {attempt}!", NEW), metadata=token)
        )
        assert wrong.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(wrong) == {"current_password": password_change.WRONG_CURRENT}
        assert CALL_RECORDED not in _error_metadata(wrong)  # identity's word to the gateway only
    locked = await _refused(world.gateway.ChangePassword(change(PASSWORD, NEW), metadata=token))
    assert locked.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _error_metadata(locked) == {}
    nobody = await _refused(world.gateway.ChangePassword(change(PASSWORD, NEW)))
    assert nobody.code() == grpc.StatusCode.UNAUTHENTICATED

    events = [
        e
        for e in await _events(world, await world.login("avery.auditor", aud.totp_secret))
        if e.action == "ChangePassword"
    ]
    # Exactly one event a request: identity's for the four it answered, the gateway's for the one
    # it refused itself (no token).
    assert [(e.actor, e.outcome) for e in events] == [
        ("dana.manager", "INVALID"),
        *[("dana.manager", "INVALID")] * 5,
        ("dana.manager", "ACCOUNT_LOCKED"),
        ("", "DENIED"),
    ]
    assert all(PASSWORD not in e.detail and NEW not in e.detail for e in events)


async def test_identity_away_is_unavailable_and_recorded_by_the_gateway(world: World) -> None:
    pat = create_user(world.identity_url, "pat.one", "practitioner")
    aud = create_user(world.identity_url, "avery.auditor", "auditor")
    auditor = await world.login("avery.auditor", aud.totp_secret)
    token = await world.login("pat.one", pat.totp_secret)
    await world.servers["identity"].server.stop(grace=None)
    # Within the 2 s a token is still taken while identity cannot be reached.
    err = await _refused(world.gateway.ChangePassword(change(PASSWORD, NEW), metadata=bearer(token)))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    events = [e for e in await _events(world, auditor) if e.action == "ChangePassword"]
    assert [(e.actor, e.outcome, e.status_code) for e in events] == [
        ("pat.one", "UNAVAILABLE", grpc.StatusCode.UNAVAILABLE.value[0])
    ]


async def test_a_client_that_gives_up_still_leaves_one_event(world: World) -> None:
    """Found by re-probing: a client's short deadline made two events of one request (the
    gateway's CANCELLED and identity's CANCELLED). The gateway lets identity finish and relies on
    its event."""
    pat = create_user(world.identity_url, "pat.one", "practitioner")
    aud = create_user(world.identity_url, "avery.auditor", "auditor")
    token = await world.login("pat.one", pat.totp_secret)
    with write_locked(world.identity_url, "accounts"):  # identity's answer held up a moment
        err = await _refused(
            world.gateway.ChangePassword(change("a wrong guess!", NEW), metadata=bearer(token), timeout=0.5)
        )
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.sleep(1.0)
    auditor = await world.login("avery.auditor", aud.totp_secret)

    async def answered() -> bool:
        return any(e.action == "ChangePassword" for e in await _events(world, auditor))

    await eventually(answered, within=10.0)
    await asyncio.sleep(1.0)  # nothing more comes
    events = [e for e in await _events(world, auditor) if e.action == "ChangePassword"]
    assert [(e.actor, e.outcome) for e in events] == [("pat.one", "INVALID")]
