"""A person changes their own password (IdentityService.ChangePassword), and the platform's operator
sets one for a person who forgot theirs (`contactpoint admin set-password`), with real identity and
audit services over gRPC, on SQLite and PostgreSQL. An account's first password is typed by whoever
creates it; before, nobody could ever change it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import typer

from contactpoint.identity.v1 import identity_service_pb2 as pb
from services.identity import password_change
from tests.conftest import DatabaseFactory
from tests.harness import bearer, eventually, totp_code, write_locked
from tests.platform.probe import violations
from tests.services.identity.test_administration import PASSWORD, World, _world, refused, token_works

NEW = "mauve otter lantern quietly 42"


@pytest.fixture
async def world(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        yield await _world(stack, databases, tmp_path)


async def login(world: World, username: str, password: str, *, step: int = 1) -> str:
    """A login with `password` and the code of `step` steps from now (-1, 0 or 1: TOTP takes one
    step either side; each code works once, and only a later one after it)."""
    code = await totp_code(world.secrets[username], step)
    resp = await world.identity.AuthenticateUser(
        pb.AuthenticateUserRequest(username=username, password=password, totp_code=code),
        metadata=world.gateway,
    )
    return resp.access_token


def change(current: str, new: str) -> pb.ChangePasswordRequest:
    return pb.ChangePasswordRequest(current_password=current, new_password=new)


async def test_a_person_changes_their_own_password_and_every_session_ends(world: World) -> None:
    token = await login(world, "pat.practitioner", PASSWORD, step=-1)
    other_session = await login(world, "pat.practitioner", PASSWORD, step=0)
    await world.identity.ChangePassword(change(PASSWORD, NEW), metadata=bearer(token))
    # Whoever knew the old password may be logged in: every token of the account ends, this one too.
    await eventually(lambda: _ended(world, token))
    assert not await token_works(world, other_session)
    assert (
        await refused(login(world, "pat.practitioner", PASSWORD, step=1)) == grpc.StatusCode.UNAUTHENTICATED
    )
    fresh = await login(world, "pat.practitioner", NEW, step=1)
    assert await token_works(world, fresh)
    [event] = await world.events("ChangePassword")
    assert (event.actor, event.outcome) == ("pat.practitioner", "ALLOWED")
    assert "tokens ended" in event.detail
    assert PASSWORD not in event.detail and NEW not in event.detail


async def _ended(world: World, token: str) -> bool:
    return not await token_works(world, token)


async def test_a_wrong_current_password_is_refused_and_counted_towards_the_lockout(world: World) -> None:
    # A stolen token is no way to guess the password: wrong guesses lock the account as logins do.
    token = bearer(await world.login("pat.practitioner"))
    for attempt in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.identity.ChangePassword(change(f"a wrong guess {attempt}!", NEW), metadata=token)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(err.value) == {"current_password": password_change.WRONG_CURRENT}
    # Locked: the right password changes nothing now, and no login gets in.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.identity.ChangePassword(change(PASSWORD, NEW), metadata=token)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await refused(login(world, "pat.practitioner", PASSWORD)) == grpc.StatusCode.UNAUTHENTICATED
    events = await world.events("ChangePassword")
    assert [e.outcome for e in events] == ["INVALID"] * 5 + ["ACCOUNT_LOCKED"]
    assert all(e.actor == "pat.practitioner" for e in events)
    assert "locked the account" in events[4].detail and "wrong current password" in events[0].detail
    # The one that locked it is a WARNING, as a login's that locks is (found by re-probing: INFO).
    assert [e.severity for e in events] == ["INFO"] * 4 + ["WARNING", "INFO"]
    # Reinstated by an administrator, the old password still works: nothing was changed.
    admin = bearer(await world.login("ada.admin"))
    await world.identity.ReinstateAccount(
        pb.ReinstateAccountRequest(username="pat.practitioner", reason="locked by guesses"), metadata=admin
    )
    assert await login(world, "pat.practitioner", PASSWORD, step=1)


async def test_every_bad_field_is_named_and_nothing_changes(world: World) -> None:
    token = bearer(await world.login("pat.practitioner"))
    cases = [
        (change("", ""), {"current_password", "new_password"}),
        (change(PASSWORD, "password1234"), {"new_password"}),  # easily guessed
        (change(PASSWORD, "short"), {"new_password"}),
        (change(PASSWORD, PASSWORD), {"new_password"}),  # the same
        (change(PASSWORD, "pat.practitioner"), {"new_password"}),  # the username
        (change(PASSWORD, NEW * 40), {"new_password"}),  # over 1,024 characters
        (change(PASSWORD, PASSWORD[:-1] + "10"), {"new_password"}),  # a character or two changed
        (change(PASSWORD, f"my {PASSWORD} again"), {"new_password"}),  # the old one inside
    ]
    for request, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.identity.ChangePassword(request, metadata=token)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert set(violations(err.value)) == fields, request
    # Refused before the password was checked: none counted, none changed, the token still works.
    assert await token_works(world, token[0][1].removeprefix("Bearer "))
    assert await login(world, "pat.practitioner", PASSWORD)
    events = await world.events("ChangePassword")
    assert len(events) == len(cases)
    assert all(e.detail.startswith("refused: ") and PASSWORD not in e.detail for e in events)


async def test_only_a_person_changes_a_password_and_refusals_are_recorded(world: World) -> None:
    assert (
        await refused(world.identity.ChangePassword(change(PASSWORD, NEW), metadata=world.gateway))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await refused(world.identity.ChangePassword(change(PASSWORD, NEW))) == grpc.StatusCode.UNAUTHENTICATED
    )
    events = await world.events("ChangePassword")
    assert [(e.outcome, e.status_code) for e in events] == [
        ("DENIED", grpc.StatusCode.PERMISSION_DENIED.value[0]),
        ("DENIED", grpc.StatusCode.UNAUTHENTICATED.value[0]),
    ]


async def test_a_token_ended_a_moment_ago_changes_nothing(world: World) -> None:
    # Identity holds the truth: a suspended person's token is refused at once, before the
    # verifiers' next poll would refuse it anyway.
    token = await world.login("pat.practitioner")
    admin = bearer(await world.login("ada.admin"))
    await world.identity.SuspendAccount(
        pb.SuspendAccountRequest(username="pat.practitioner", reason="left"), metadata=admin
    )
    assert (
        await refused(world.identity.ChangePassword(change(PASSWORD, NEW), metadata=bearer(token)))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    await world.identity.ReinstateAccount(
        pb.ReinstateAccountRequest(username="pat.practitioner", reason="back"), metadata=admin
    )
    assert await login(world, "pat.practitioner", PASSWORD, step=1)


async def test_the_operator_sets_a_forgotten_password(world: World, tmp_path: Path) -> None:
    from contactpoint.cli.accounts import Noted, in_identity_db

    env = {
        "CONTACTPOINT_IDENTITY_DATABASE_URL": world.identity_url,
        "CONTACTPOINT_IDENTITY_SIGNING_KEY_FILE": str(tmp_path / "keys" / "identity.pem"),
    }
    before = await world.login("pat.practitioner")
    for _ in range(5):  # forgotten, and locked out trying
        with pytest.raises(grpc.aio.AioRpcError):
            await login(world, "pat.practitioner", "not it, sadly", step=0)

    def set_to(password: str, reason: str = "forgot it, checked by phone") -> Awaitable[None]:
        return asyncio.to_thread(
            in_identity_db,
            env,
            lambda c: password_change.set_password(
                c, username=" Pat.Practitioner ", password=password, reason=reason, now=_now()
            ),
            noted=Noted("SetPassword", f"account: pat.practitioner; reason: {reason}"),
        )

    with pytest.raises(typer.Exit):
        await set_to("password1234")  # easily guessed: refused, nothing noted
    with pytest.raises(typer.Exit):
        await set_to(NEW, reason=" ")
    await set_to(NEW)
    await eventually(lambda: _ended(world, before))
    assert await login(world, "pat.practitioner", NEW, step=1)  # the lockout is lifted too
    [event] = await world.events("SetPassword")
    assert "pat.practitioner" in event.detail and NEW not in event.detail


def _now() -> datetime:
    return datetime.now(UTC)


async def test_a_change_its_caller_gave_up_on_is_not_made(world: World) -> None:
    """Found by re-probing: with identity's database locked past the gateway's deadline, the
    gateway answered UNAVAILABLE and the password was changed all the same once the lock went."""
    token = await world.login("pat.practitioner")
    with write_locked(world.identity_url, "accounts"):
        started = time.monotonic()
        code = await refused(
            world.identity.ChangePassword(change(PASSWORD, NEW), metadata=bearer(token), timeout=6.0)
        )
        assert code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
        await asyncio.sleep(max(0.0, 8.0 - (time.monotonic() - started)))
    await asyncio.sleep(1.0)  # identity's write, let go, decides
    assert await token_works(world, token)  # nothing changed: the session goes on
    assert await login(world, "pat.practitioner", PASSWORD, step=1)
