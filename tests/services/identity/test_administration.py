"""Administrators manage accounts through identity (CONTRACT §5 v1.1), with real identity and
audit services over gRPC, on SQLite and PostgreSQL: suspend (tokens stop, no login), reinstate
(also clears a lockout; old tokens stay dead), reset TOTP; scoped to the administrator's
organisation, each call audited before it answers, and refused without an audit log."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyotp
import pytest
import typer
from sqlalchemy import make_url, text

from contactpoint.audit.v1 import audit_service_pb2 as audit_pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as audit_grpc
from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform import migrate
from contactpoint.platform.db import Database, is_sqlite
from contactpoint.platform.errors import Unauthenticated
from contactpoint.platform.peers import ServiceToken, remote_state_source
from contactpoint.platform.settings import ConfigurationError
from contactpoint.platform.token_verifier import TokenVerifier
from services.audit.main import MIGRATIONS as AUDIT_MIGRATIONS
from services.audit.main import build as build_audit
from services.audit.settings import AuditSettings
from services.identity.main import MIGRATIONS as IDENTITY_MIGRATIONS
from tests.conftest import DatabaseFactory
from tests.harness import (
    bearer,
    code_of,
    create_service_account,
    create_user,
    eventually,
    free_port,
    identity_settings,
    platform_account,
    running_identity,
    running_service,
)
from tests.platform.probe import violations

PASSWORD = "correct horse battery staple 9"
ORG_A, ORG_B = "E08000003", "E08000025"


@dataclass
class World:
    identity: pb_grpc.IdentityServiceStub
    audit: audit_grpc.AuditServiceStub
    identity_url: str
    gateway: tuple[tuple[str, str], ...]
    secrets: dict[str, str]
    audit_server: object
    identity_target: str
    auditor: str = ""

    async def login(self, username: str, *, secret: str | None = None, at: float | None = None) -> str:
        totp = pyotp.TOTP(secret or self.secrets[username])
        resp = await self.identity.AuthenticateUser(
            pb.AuthenticateUserRequest(
                username=username, password=PASSWORD, totp_code=totp.at(at) if at else totp.now()
            ),
            metadata=self.gateway,
        )
        return resp.access_token

    async def events(self, action: str) -> list[audit_pb.AuditEvent]:
        if not self.auditor:
            self.auditor = await self.login("avery.auditor")
        auditor = self.auditor
        resp = await self.audit.ListEvents(
            audit_pb.ListEventsRequest(page_size=500), metadata=bearer(auditor)
        )
        return [e for e in resp.events if e.action == action]


async def _world(stack: AsyncExitStack, databases: DatabaseFactory, tmp_path: Path) -> World:
    identity_url, audit_url = databases.new("identity"), databases.new("audit")
    audit_port = free_port()
    migrate.upgrade("identity", IDENTITY_MIGRATIONS, identity_url)
    own = create_service_account(identity_url, "identity", "identity-service", org="contactpoint")
    settings = identity_settings(
        identity_url,
        tmp_path,
        audit_target=f"127.0.0.1:{audit_port}",
        client_id=own.client_id,
        client_secret=own.client_secret,
    )
    _, identity_target = await stack.enter_async_context(running_identity(settings))
    audit_server, _ = await stack.enter_async_context(
        running_service(
            "audit",
            AUDIT_MIGRATIONS,
            build_audit,
            AuditSettings.model_validate(
                {
                    **platform_account(identity_url, "audit"),
                    "database_url": audit_url,
                    "listen": f"127.0.0.1:{audit_port}",
                    "identity_target": identity_target,
                    "signing_key_file": tmp_path / "keys" / "audit.pem",
                }
            ),
        )
    )
    secrets = {
        "ada.admin": create_user(identity_url, "ada.admin", "admin", org=ORG_A).totp_secret,
        "bob.admin": create_user(identity_url, "bob.admin", "admin", org=ORG_B).totp_secret,
        "pat.practitioner": create_user(
            identity_url, "pat.practitioner", "practitioner", org=ORG_A
        ).totp_secret,
        "avery.auditor": create_user(identity_url, "avery.auditor", "auditor", org=ORG_A).totp_secret,
    }
    gw = create_service_account(identity_url, "gateway", "gateway", org="contactpoint")
    channel = await stack.enter_async_context(grpc.aio.insecure_channel(identity_target))
    identity = pb_grpc.IdentityServiceStub(channel)
    gw_token = (
        await identity.IssueServiceToken(
            pb.IssueServiceTokenRequest(client_id=gw.client_id, client_secret=gw.client_secret)
        )
    ).access_token
    audit_channel = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{audit_port}"))
    return World(
        identity,
        audit_grpc.AuditServiceStub(audit_channel),
        identity_url,
        bearer(gw_token),
        secrets,
        audit_server,
        identity_target,
    )


@pytest.fixture
async def world(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        yield await _world(stack, databases, tmp_path)


async def refused(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return code_of(err.value)


async def token_works(world: World, token: str) -> bool:
    """Whether identity accepts `token` (RevokeToken is open to any valid token; use a throwaway)."""
    try:
        await world.identity.ResetTotp(pb.ResetTotpRequest(username="nobody"), metadata=bearer(token))
    except grpc.aio.AioRpcError as exc:
        return exc.code() != grpc.StatusCode.UNAUTHENTICATED
    return True


async def test_suspend_stops_tokens_and_login_and_reinstate_lets_them_back(world: World) -> None:
    admin = bearer(await world.login("ada.admin"))
    old = await world.login("pat.practitioner")
    assert await token_works(world, old)

    await world.identity.SuspendAccount(
        pb.SuspendAccountRequest(username="pat.practitioner", reason="left the service"), metadata=admin
    )
    # Its tokens stop working everywhere within 2 s (identity's own verifier here).
    await eventually(lambda: _not(token_works(world, old)))
    assert (
        await refused(world.login("pat.practitioner", at=time.time() + 30)) == grpc.StatusCode.UNAUTHENTICATED
    )

    await world.identity.ReinstateAccount(
        pb.ReinstateAccountRequest(username="pat.practitioner", reason="returned"), metadata=admin
    )
    fresh = await world.login("pat.practitioner", at=time.time() + 30)
    await eventually(lambda: token_works(world, fresh))
    # A token from before the suspension never works again: in identity, and in every other
    # service, which learns it from GetVerificationState.
    assert not await token_works(world, old)
    async with grpc.aio.insecure_channel(world.identity_target) as channel:
        own = ServiceToken(channel, **platform_account(world.identity_url, "records"))
        remote = TokenVerifier(remote_state_source(channel, own))
        await remote.refresh()
        assert remote.verify(fresh).name == "pat.practitioner"
        with pytest.raises(Unauthenticated):
            remote.verify(old)

    suspended = await world.events("SuspendAccount")
    reinstated = await world.events("ReinstateAccount")
    assert len(suspended) == len(reinstated) == 1
    event = suspended[0]
    assert (event.actor, event.actor_organisation, event.outcome) == ("ada.admin", ORG_A, "ALLOWED")
    assert "pat.practitioner" in event.detail and "left the service" in event.detail


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def test_reinstate_clears_a_lockout(world: World) -> None:
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError):
            await world.identity.AuthenticateUser(
                pb.AuthenticateUserRequest(
                    username="pat.practitioner", password="wrong password!!", totp_code="000000"
                ),
                metadata=world.gateway,
            )
    assert await refused(world.login("pat.practitioner")) == grpc.StatusCode.UNAUTHENTICATED
    admin = bearer(await world.login("ada.admin"))
    await world.identity.ReinstateAccount(
        pb.ReinstateAccountRequest(username="pat.practitioner", reason="locked out by a typo"), metadata=admin
    )
    assert await world.login("pat.practitioner", at=time.time() + 30)


async def test_reset_totp_replaces_the_second_factor(world: World) -> None:
    admin = bearer(await world.login("ada.admin"))
    before = await world.login("pat.practitioner")
    assert await token_works(world, before)
    reset = await world.identity.ResetTotp(
        pb.ResetTotpRequest(username="pat.practitioner", reason="lost phone"), metadata=admin
    )
    assert reset.totp_secret and reset.otpauth_uri.startswith("otpauth://totp/")
    assert reset.totp_secret != world.secrets["pat.practitioner"]
    assert await refused(world.login("pat.practitioner")) == grpc.StatusCode.UNAUTHENTICATED
    fresh = await world.login("pat.practitioner", secret=reset.totp_secret, at=time.time() + 30)
    # The session from before the reset ends (whoever holds the lost phone may hold it); the new
    # one works.
    await eventually(lambda: _not(token_works(world, before)))
    assert await token_works(world, fresh)
    # (token_works asks by a ResetTotp of its own, refused)
    [event] = [e for e in await world.events("ResetTotp") if e.outcome == "ALLOWED"]
    assert event.actor == "ada.admin" and "pat.practitioner" in event.detail
    # The secret itself is never written to the audit log.
    assert reset.totp_secret not in event.detail


async def test_scoped_to_the_administrators_organisation_and_roles(world: World) -> None:
    other_admin = bearer(await world.login("bob.admin"))
    practitioner = bearer(await world.login("pat.practitioner"))
    request = pb.SuspendAccountRequest(username="pat.practitioner", reason="not mine")
    # Another organisation's account reads as unknown: an administrator cannot probe others.
    assert (
        await refused(world.identity.SuspendAccount(request, metadata=other_admin))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await refused(
            world.identity.ResetTotp(pb.ResetTotpRequest(username="pat.practitioner"), metadata=other_admin)
        )
        == grpc.StatusCode.NOT_FOUND
    )
    unknown = pb.SuspendAccountRequest(username="no.such.person", reason="x")
    assert (
        await refused(world.identity.SuspendAccount(unknown, metadata=other_admin))
        == grpc.StatusCode.NOT_FOUND
    )
    # Only administrators (and, for suspension only, the gateway) may call these.
    for call in (
        world.identity.SuspendAccount(request, metadata=practitioner),
        world.identity.ReinstateAccount(
            pb.ReinstateAccountRequest(username="pat.practitioner", reason="x"), metadata=practitioner
        ),
        world.identity.ResetTotp(pb.ResetTotpRequest(username="pat.practitioner"), metadata=practitioner),
        world.identity.ReinstateAccount(
            pb.ReinstateAccountRequest(username="pat.practitioner", reason="x"), metadata=world.gateway
        ),
        world.identity.ResetTotp(pb.ResetTotpRequest(username="pat.practitioner"), metadata=world.gateway),
    ):
        assert await refused(call) == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await refused(
            world.identity.SuspendAccount(pb.SuspendAccountRequest(username="pat.practitioner", reason="x"))
        )
        == grpc.StatusCode.UNAUTHENTICATED
    )
    # A reason is required.
    no_reason = pb.SuspendAccountRequest(username="pat.practitioner")
    admin = bearer(await world.login("ada.admin"))
    # A username that cannot be one is INVALID_ARGUMENT, said without repeating what was sent
    # (20,000 characters echoed back made an error too large for gRPC to deliver).
    for wrong in ("x" * 20_000, "Pat\x1b[2J", "ab"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.identity.ResetTotp(pb.ResetTotpRequest(username=wrong), metadata=admin)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert wrong not in (err.value.details() or "")
    assert (
        await refused(world.identity.SuspendAccount(no_reason, metadata=admin))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    # None of that changed the account.
    assert await token_works(world, practitioner[0][1].removeprefix("Bearer "))
    # The gateway may suspend only the person it acts for (over the daily record limit): their
    # own token travels with the call. Its credentials alone, or another person's token, do not do.
    daily = pb.SuspendAccountRequest(username="pat.practitioner", reason="daily record limit")
    admin_token = admin[0][1]
    for metadata in (world.gateway, (*world.gateway, ("x-on-behalf-of", admin_token))):
        assert await refused(world.identity.SuspendAccount(daily, metadata=metadata)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    other = pb.SuspendAccountRequest(username="ada.admin", reason="daily record limit")
    assert (
        await refused(
            world.identity.SuspendAccount(
                other, metadata=(*world.gateway, ("x-on-behalf-of", practitioner[0][1]))
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    await world.identity.SuspendAccount(
        daily, metadata=(*world.gateway, ("x-on-behalf-of", practitioner[0][1]))
    )
    refusals = await world.events("SuspendAccount")
    assert {e.outcome for e in refusals} >= {"NOT_FOUND", "INVALID", "ALLOWED", "DENIED"}
    # A practitioner's attempt is recorded too, refused before any handler ran.
    assert any(e.outcome == "DENIED" and e.actor == "pat.practitioner" for e in refusals)


async def test_every_token_identity_issues_to_a_person_is_recorded(world: World) -> None:
    # Recorded by identity before it answers, as the Login it is, and the gateway is told so: a
    # login is one event (found by probing: a login read as two), and even a holder of the
    # gateway's credentials cannot obtain a token unseen.
    response = await world.identity.AuthenticateUser(
        pb.AuthenticateUserRequest(
            username="pat.practitioner",
            password=PASSWORD,
            totp_code=pyotp.TOTP(world.secrets["pat.practitioner"]).now(),
        ),
        metadata=(*world.gateway, ("x-request-id", "login-rid-1")),
    )
    assert response.recorded and response.access_token
    logins = [e for e in await world.events("Login") if e.actor == "pat.practitioner"]
    assert [
        (e.actor, e.outcome, e.actor_organisation, list(e.actor_roles), e.request_id) for e in logins
    ] == [("pat.practitioner", "ALLOWED", ORG_A, ["practitioner"], "login-rid-1")]
    assert logins[0].detail == "token issued by identity"
    assert await world.events("AuthenticateUser") == []


async def test_no_audit_log_no_administration(world: World) -> None:
    admin = bearer(await world.login("ada.admin"))
    practitioner = await world.login("pat.practitioner")
    await world.audit_server.stop(0)  # type: ignore[attr-defined]
    request = pb.SuspendAccountRequest(username="pat.practitioner", reason="audit is down")
    assert (
        await refused(world.identity.SuspendAccount(request, metadata=admin)) == grpc.StatusCode.UNAVAILABLE
    )
    # Nothing was stored: the person is not suspended.
    db = Database(world.identity_url)
    try:
        suspended = db.run_sync(
            lambda c: c.execute(
                text("SELECT suspended FROM accounts WHERE name = 'pat.practitioner'")
            ).scalar_one()
        )
    finally:
        db.dispose()
    assert not suspended
    assert await token_works(world, practitioner)


async def test_totp_secrets_are_sealed_at_rest(world: World) -> None:
    db = Database(world.identity_url)
    try:
        stored = db.run_sync(
            lambda c: c.execute(
                text("SELECT totp_secret FROM accounts WHERE name = 'pat.practitioner'")
            ).scalar_one()
        )
    finally:
        db.dispose()
    assert stored.startswith("v1:")
    assert world.secrets["pat.practitioner"] not in stored


async def test_identity_will_not_start_with_a_totp_key_that_does_not_open_the_secrets(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.new("identity")
    migrate.upgrade("identity", IDENTITY_MIGRATIONS, url)
    settings = identity_settings(url, tmp_path)
    create_user(url, "pat.practitioner", "practitioner")
    settings.totp_key_path.unlink()  # lost: refused, and no new key is made in its place
    with pytest.raises(ConfigurationError, match=r"no TOTP key at .* restore the key file"):
        async with running_identity(settings):
            pass
    assert not settings.totp_key_path.exists()  # found by probing: one was made, then refused
    settings.totp_key_path.write_text("A" * 43 + "=\n")  # another key (32 zero bytes) in its place
    with pytest.raises(ConfigurationError, match="TOTP key file"):
        async with running_identity(settings):
            pass


async def test_each_role_against_each_administration_rpc(world: World) -> None:
    """Only an administrator (and, for suspension, the gateway acting for that very person) may
    call these; every other role and kind of account is refused, whatever it asks."""
    people = {
        "practitioner": "pat.practitioner",
        "auditor": "avery.auditor",
        "admin": "ada.admin",
    }
    for role in ("shield-override", "data-manager"):
        name = f"role.{role.replace('-', '.')}"
        roles = ("practitioner", role) if role == "shield-override" else (role,)
        world.secrets[name] = create_user(world.identity_url, name, *roles, org=ORG_A).totp_secret
        people[role] = name
    tokens = {role: bearer(await world.login(name)) for role, name in people.items()}
    council = create_service_account(world.identity_url, "council-roles", "council-system", org=ORG_A)
    tokens["council-system"] = bearer(
        (
            await world.identity.IssueServiceToken(
                pb.IssueServiceTokenRequest(client_id=council.client_id, client_secret=council.client_secret)
            )
        ).access_token
    )
    tokens["gateway"] = world.gateway
    # Someone else, so that a suspension of theirs does not end a caller's token mid-test.
    target = "role.target"
    create_user(world.identity_url, target, "practitioner", org=ORG_A)
    calls = {
        "SuspendAccount": lambda md: world.identity.SuspendAccount(
            pb.SuspendAccountRequest(username=target, reason="role check"), metadata=md
        ),
        "ReinstateAccount": lambda md: world.identity.ReinstateAccount(
            pb.ReinstateAccountRequest(username=target, reason="role check"), metadata=md
        ),
        "ResetTotp": lambda md: world.identity.ResetTotp(pb.ResetTotpRequest(username=target), metadata=md),
    }
    outcomes = {}
    for rpc, call in calls.items():
        for role, metadata in tokens.items():
            try:
                await call(metadata)
                outcomes[(rpc, role)] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                outcomes[(rpc, role)] = exc.code()
    allowed = {key for key, code in outcomes.items() if code == grpc.StatusCode.OK}
    assert allowed == {(rpc, "admin") for rpc in calls}, outcomes
    assert all(
        code == grpc.StatusCode.PERMISSION_DENIED for key, code in outcomes.items() if key not in allowed
    )


async def test_a_suspended_administrator_is_refused_at_once_even_reinstating_themselves(world: World) -> None:
    """Found by probing: within the verifiers' poll after a suspension, the suspended
    administrator's own token reinstated them. Identity asks its own database."""
    world.secrets["cleo.admin"] = create_user(
        world.identity_url, "cleo.admin", "admin", org=ORG_A
    ).totp_secret
    ada = bearer(await world.login("ada.admin"))
    cleo = bearer(await world.login("cleo.admin"))
    await world.identity.SuspendAccount(
        pb.SuspendAccountRequest(username="cleo.admin", reason="misconduct"), metadata=ada
    )
    for request in (
        pb.ReinstateAccountRequest(username="cleo.admin", reason="I reinstate myself"),
        pb.ReinstateAccountRequest(username="pat.practitioner", reason="a favour"),
        pb.ReinstateAccountRequest(username="pat.practitioner", reason=""),  # not INVALID_ARGUMENT
    ):
        unauthenticated = grpc.StatusCode.UNAUTHENTICATED
        assert await refused(world.identity.ReinstateAccount(request, metadata=cleo)) == unauthenticated
    assert (
        await refused(
            world.identity.ResetTotp(pb.ResetTotpRequest(username="pat.practitioner"), metadata=cleo)
        )
        == grpc.StatusCode.UNAUTHENTICATED
    )
    assert await refused(world.login("cleo.admin", at=time.time() + 30)) == grpc.StatusCode.UNAUTHENTICATED
    outcomes = [e.outcome for e in await world.events("ReinstateAccount") if e.actor == "cleo.admin"]
    assert outcomes and "ALLOWED" not in outcomes


async def test_an_administrator_never_reinstates_or_resets_their_own_account(world: World) -> None:
    ada = bearer(await world.login("ada.admin"))
    own = pb.ReinstateAccountRequest(username="ada.admin", reason="clear my lockout")
    assert (
        await refused(world.identity.ReinstateAccount(own, metadata=ada)) == grpc.StatusCode.PERMISSION_DENIED
    )
    reset = pb.ResetTotpRequest(username="ada.admin", reason="new phone")
    assert await refused(world.identity.ResetTotp(reset, metadata=ada)) == grpc.StatusCode.PERMISSION_DENIED
    # Another person of the organisation, as before.
    await world.identity.ResetTotp(pb.ResetTotpRequest(username="pat.practitioner"), metadata=ada)


async def test_every_bad_field_is_named_and_a_username_is_read_as_login_reads_it(world: World) -> None:
    # Found by probing: an empty request named only the missing reason (one violation per bad
    # field, CONTRACT §7), and " PAT.Practitioner " was refused here though Login takes it.
    ada = bearer(await world.login("ada.admin"))
    for call in (
        world.identity.SuspendAccount(pb.SuspendAccountRequest(), metadata=ada),
        world.identity.ReinstateAccount(pb.ReinstateAccountRequest(reason=" "), metadata=ada),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations(err.value)) == {"username", "reason"}
    # Another organisation's person is NOT_FOUND whatever the case.
    bob = pb.SuspendAccountRequest(username="BOB.Admin", reason="x")
    assert await refused(world.identity.SuspendAccount(bob, metadata=ada)) == grpc.StatusCode.NOT_FOUND
    # Never one's own, whatever the case.
    own = pb.ResetTotpRequest(username=" ADA.ADMIN ", reason="new phone")
    assert await refused(world.identity.ResetTotp(own, metadata=ada)) == grpc.StatusCode.PERMISSION_DENIED

    old = await world.login("pat.practitioner")
    await world.identity.SuspendAccount(
        pb.SuspendAccountRequest(username=" PAT.Practitioner ", reason="left the service"), metadata=ada
    )
    await eventually(lambda: _not(token_works(world, old)))
    await world.identity.ReinstateAccount(
        pb.ReinstateAccountRequest(username="Pat.Practitioner", reason="back"), metadata=ada
    )
    assert await world.login("pat.practitioner", at=time.time() + 30)
    # Recorded under the account's own name.
    for action in ("SuspendAccount", "ReinstateAccount"):
        allowed = [e for e in await world.events(action) if e.outcome == "ALLOWED"]
        assert allowed and all("account: pat.practitioner" in e.detail for e in allowed), allowed


async def test_account_changes_from_the_command_line_reach_the_audit_log(
    world: World, tmp_path: Path
) -> None:
    """Found by probing: `contactpoint admin suspend`, `reinstate` and `create-user` left nothing in
    the log (an operator could reinstate a person the gateway had suspended, or create an
    administrator, without a trace). Each is written with the change, and identity forwards it."""
    from contactpoint.cli.accounts import Noted, in_identity_db
    from contactpoint.cli.accounts import create_user as cli_create_user
    from contactpoint.cli.auditlog import operator
    from services.identity import administration

    env = {
        "CONTACTPOINT_IDENTITY_DATABASE_URL": world.identity_url,
        "CONTACTPOINT_IDENTITY_SIGNING_KEY_FILE": str(tmp_path / "keys" / "identity.pem"),
    }
    # The commands run as a command does, in a thread of their own (identity runs on this loop).
    await asyncio.to_thread(
        in_identity_db,
        env,
        lambda c: administration.suspend(c, username="pat.practitioner", reason="cli probe", scope=None),
        noted=Noted("SuspendAccount", "account: pat.practitioner; reason: cli probe"),
    )
    # While identity runs, a command returns only once its change is in the log (found by
    # probing: it landed up to a second later, among whatever was done next).
    assert len(await world.events("SuspendAccount")) == 1
    await asyncio.to_thread(
        cli_create_user, env, username="new.admin", org=ORG_A, roles=["admin"], password=PASSWORD
    )
    assert len(await world.events("CreateUser")) == 1
    # A change that fails is not noted: nothing happened.
    with pytest.raises(typer.Exit):
        await asyncio.to_thread(
            in_identity_db,
            env,
            lambda c: administration.reinstate(c, username="no.such.person", reason="x", scope=None),
            noted=Noted("ReinstateAccount", "account: no.such.person; reason: x"),
        )
    suspended = [e for e in await world.events("SuspendAccount") if "cli probe" in e.detail]
    created = await world.events("CreateUser")
    assert [(e.actor, list(e.actor_roles), e.outcome) for e in suspended] == [
        (operator(), ["operator"], "ALLOWED")
    ]
    # When the change was made leads the detail: the log's own time is when it arrived.
    assert re.fullmatch(
        r"made at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z on the command line; "
        r"account: pat\.practitioner; reason: cli probe",
        suspended[0].detail,
    ), suspended[0].detail
    assert created[0].severity == "HIGH" and "new.admin" in created[0].detail and "admin" in created[0].detail
    assert await world.events("ReinstateAccount") == []
    # Forwarded once: nothing waits any longer.
    db = Database(world.identity_url)
    try:
        waiting = db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM operator_actions")).scalar_one())
    finally:
        db.dispose()
    assert waiting == 0
    # ...nor do the reasons stay in identity's files (found by probing: in its write-ahead log).
    if is_sqlite(world.identity_url):
        path = Path(str(make_url(world.identity_url).database))
        for file in (path, Path(f"{path}-wal")):
            assert not file.exists() or b"cli probe" not in file.read_bytes(), file


async def test_every_login_identity_decides_is_recorded_by_it_in_the_same_transaction(world: World) -> None:
    """Found by probing and re-probing: a lockout was one more "login failed" among many, and with
    the log down failed logins still counted and locked the account, unlogged; a holder of the
    gateway's credentials could lock an account unseen. Identity records each refusal it decides,
    the login that locks at WARNING, before it counts it, and tells the gateway (ErrorInfo) so
    that it writes no second event."""
    from contactpoint.platform.errors import error_metadata

    wrong = pb.AuthenticateUserRequest(
        username="pat.practitioner", password="not the password!!", totp_code="000000"
    )
    refusals = []
    for _ in range(5):  # the default limit
        with pytest.raises(grpc.aio.AioRpcError) as refused_login:
            await world.identity.AuthenticateUser(wrong, metadata=world.gateway)
        refusals.append(refused_login.value)
    assert [r.details() for r in refusals] == ["login failed"] * 5
    assert [error_metadata(r) for r in refusals] == [{"login_recorded": "true"}] * 5
    logins = [e for e in await world.events("Login") if e.actor == "pat.practitioner"]
    assert [(e.outcome, e.severity) for e in logins] == [("DENIED", "INFO")] * 4 + [("DENIED", "WARNING")]
    assert logins[-1].detail == (
        "refused: a wrong password; this login locked the account for 900 s after 5 failed logins"
    )

    # With the log away, a failure is neither recorded nor counted: the account stays unlocked.
    await world.audit_server.stop(0)  # type: ignore[attr-defined]
    other = pb.AuthenticateUserRequest(
        username="bob.admin", password="not the password!!", totp_code="000000"
    )
    for _ in range(6):  # more than the limit
        assert await refused(world.identity.AuthenticateUser(other, metadata=world.gateway)) == (
            grpc.StatusCode.UNAVAILABLE
        )
    db = Database(world.identity_url)
    try:
        counted = db.run_sync(
            lambda c: c.execute(
                text("SELECT failed_logins, locked_until FROM accounts WHERE name = 'bob.admin'")
            ).one()
        )
    finally:
        db.dispose()
    assert tuple(counted) == (0, None)


async def test_the_gateway_revokes_a_logged_out_token_by_its_id(world: World) -> None:
    """A Logout the gateway answered while identity was away (found by probing: a gateway restart
    lost it): the gateway keeps only the token's id, and identity revokes the token by it, for the
    gateway's account alone."""
    import jwt
    from google.protobuf import timestamp_pb2

    token = await world.login("pat.practitioner")
    claims = jwt.decode(token, options={"verify_signature": False})
    expire_time = timestamp_pb2.Timestamp(seconds=int(claims["exp"]))
    request = pb.RevokeLoggedOutTokenRequest(token_id=claims["jti"], expire_time=expire_time)
    # Nobody else may: not the person, not an administrator.
    for caller in (bearer(token), bearer(await world.login("ada.admin"))):
        assert await refused(world.identity.RevokeLoggedOutToken(request, metadata=caller)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    assert await token_works(world, token)
    # Bad input is refused, and revokes nothing (a time out of range was INTERNAL: found by re-probing).
    for bad in (
        pb.RevokeLoggedOutTokenRequest(token_id=claims["jti"], expire_time=timestamp_pb2.Timestamp(nanos=-1)),
        pb.RevokeLoggedOutTokenRequest(
            token_id=claims["jti"], expire_time=timestamp_pb2.Timestamp(seconds=10**12)
        ),
        pb.RevokeLoggedOutTokenRequest(expire_time=expire_time),
        pb.RevokeLoggedOutTokenRequest(token_id=claims["jti"]),
        pb.RevokeLoggedOutTokenRequest(token_id="x" * 65, expire_time=expire_time),
    ):
        assert await refused(world.identity.RevokeLoggedOutToken(bad, metadata=world.gateway)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )
    assert await token_works(world, token)
    await world.identity.RevokeLoggedOutToken(request, metadata=world.gateway)
    await world.identity.RevokeLoggedOutToken(request, metadata=world.gateway)  # again: no harm
    await eventually(lambda: _not(token_works(world, token)))


async def test_a_malformed_login_is_recorded_too(world: World) -> None:
    """Found by re-probing: with the gateway's credentials, a malformed name or missing factor left
    no trace (refused unchecked). Identity records those refusals as well."""
    from contactpoint.platform.errors import error_metadata

    for username in ("alice\nroot SuspendAccount", "A" * 500, ""):
        with pytest.raises(grpc.aio.AioRpcError) as refused_login:
            await world.identity.AuthenticateUser(
                pb.AuthenticateUserRequest(username=username, password="x" * 12, totp_code="000000"),
                metadata=world.gateway,
            )
        assert refused_login.value.details() == "login failed"
        assert error_metadata(refused_login.value) == {"login_recorded": "true"}
    denied = [e for e in await world.events("Login") if e.outcome == "DENIED"]
    assert len(denied) == 3
