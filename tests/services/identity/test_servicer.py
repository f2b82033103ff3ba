"""Identity over real gRPC on SQLite and PostgreSQL: service tokens, logins, lockout, revocation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pyotp
import pytest
from grpc_status import rpc_status
from sqlalchemy import text

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.db import Database
from services.identity.settings import IdentitySettings
from tests.harness import (
    bearer,
    create_service_account,
    create_user,
    identity_settings,
    platform_metadata,
    running_identity,
)

PASSWORD = "correct horse battery staple 9"


async def test_a_short_token_lifetime_is_accepted_and_kept(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CONTRACT §5 sets no floor on CONTACTPOINT_IDENTITY_TOKEN_TTL_SECONDS: a suite run with
    # tokens of a few seconds (to see them expire) must start (found by review: 30 was the least).
    monkeypatch.setenv("CONTACTPOINT_IDENTITY_TOKEN_TTL_SECONDS", "2")
    settings = IdentitySettings.model_validate(
        {"database_url": database_url, "signing_key_file": tmp_path / "keys" / "identity.pem"}
    )
    assert settings.token_ttl_seconds == 2
    async with running_identity(identity_settings(database_url, tmp_path, token_ttl_seconds=2)) as (
        _,
        target,
    ):
        account = create_service_account(database_url, "council-a", "council-system")
        async with grpc.aio.insecure_channel(target) as ch:
            resp = await pb_grpc.IdentityServiceStub(ch).IssueServiceToken(
                pb.IssueServiceTokenRequest(client_id=account.client_id, client_secret=account.client_secret)
            )
    claims = jwt.decode(resp.access_token, options={"verify_signature": False})
    # Its lifetime to the nearest second (cut down, one of 1 s could expire at once).
    assert abs(claims["iat_ms"] / 1000 + 2 - claims["exp"]) <= 0.5
    assert resp.expire_time.seconds == claims["exp"]


async def test_service_token_and_revocation(database_url: str, tmp_path: Path) -> None:
    settings = identity_settings(database_url, tmp_path)
    async with running_identity(settings) as (_, target):
        account = create_service_account(database_url, "council-a", "council-system")
        async with grpc.aio.insecure_channel(target) as ch:
            stub = pb_grpc.IdentityServiceStub(ch)
            resp = await stub.IssueServiceToken(
                pb.IssueServiceTokenRequest(client_id=account.client_id, client_secret=account.client_secret)
            )
            claims = jwt.decode(resp.access_token, options={"verify_signature": False})
            assert claims["roles"] == ["council-system"] and claims["org"] == "E08000003"
            assert abs(resp.expire_time.seconds - (time.time() + 900)) < 5

            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.IssueServiceToken(
                    pb.IssueServiceTokenRequest(client_id=account.client_id, client_secret="wrong")
                )
            assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED

            with pytest.raises(grpc.aio.AioRpcError) as empty:
                await stub.IssueServiceToken(pb.IssueServiceTokenRequest())
            assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            status = rpc_status.from_call(empty.value)
            assert status is not None and status.details, "INVALID_ARGUMENT carries BadRequest details"

            # A council system may not authenticate people: only the gateway may.
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.AuthenticateUser(
                    pb.AuthenticateUserRequest(username="x", password="y", totp_code="1"),
                    metadata=bearer(resp.access_token),
                )
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

            # Which tokens are revoked is told only to the platform's own services.
            for metadata in ((), bearer(resp.access_token)):
                with pytest.raises(grpc.aio.AioRpcError) as secret:
                    await stub.GetVerificationState(pb.GetVerificationStateRequest(), metadata=metadata)
                assert secret.value.code() in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.PERMISSION_DENIED,
                )
            platform = await platform_metadata(target, database_url, "records")
            state = await stub.GetVerificationState(pb.GetVerificationStateRequest(), metadata=platform)
            await stub.RevokeToken(pb.RevokeTokenRequest(), metadata=bearer(resp.access_token))
            after = await stub.GetVerificationState(
                pb.GetVerificationStateRequest(known_version=state.version), metadata=platform
            )
            assert not after.unchanged and claims["jti"] in after.revoked_token_ids
            await asyncio.sleep(0.6)
            with pytest.raises(grpc.aio.AioRpcError) as revoked:
                await stub.RevokeToken(pb.RevokeTokenRequest(), metadata=bearer(resp.access_token))
            assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED

            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.RevokeToken(pb.RevokeTokenRequest())
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


@dataclass
class SigningIn:
    """jo.bloggs, a practitioner, signing in through a running identity as the gateway does."""

    stub: pb_grpc.IdentityServiceStub
    gateway: tuple[tuple[str, str], ...]
    totp: pyotp.TOTP
    database_url: str

    async def login(self, code: str, password: str = PASSWORD) -> grpc.StatusCode:
        try:
            await self.stub.AuthenticateUser(
                pb.AuthenticateUserRequest(username="jo.bloggs", password=password, totp_code=code),
                metadata=self.gateway,
            )
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    def lockout(self) -> tuple[int, object]:
        """The account's failure count and lock, as stored."""
        db = Database(self.database_url)
        try:
            row = db.run_sync(
                lambda c: c.execute(
                    text("SELECT failed_logins, locked_until FROM accounts WHERE name = 'jo.bloggs'")
                ).one(),
                write=False,
            )
        finally:
            db.dispose()
        return int(row[0]), row[1]


@asynccontextmanager
async def signing_in(
    database_url: str, tmp_path: Path, *, max_failed_logins: int = 3
) -> AsyncIterator[SigningIn]:
    """Identity locking an account after 3 failures (or as many as given), and jo.bloggs to sign in."""
    settings = identity_settings(
        database_url, tmp_path, max_failed_logins=max_failed_logins, lockout_seconds=60
    )
    async with running_identity(settings) as (_, target):
        gateway = create_service_account(database_url, "gateway", "gateway", org="contactpoint")
        user = create_user(database_url, "jo.bloggs", "practitioner")
        async with grpc.aio.insecure_channel(target) as ch:
            stub = pb_grpc.IdentityServiceStub(ch)
            gw = await stub.IssueServiceToken(
                pb.IssueServiceTokenRequest(client_id=gateway.client_id, client_secret=gateway.client_secret)
            )
            yield SigningIn(stub, bearer(gw.access_token), pyotp.TOTP(user.totp_secret), database_url)


async def test_login_totp_once_and_lockout(database_url: str, tmp_path: Path) -> None:
    async with signing_in(database_url, tmp_path) as jo:
        stub, md = jo.stub, jo.gateway
        code = jo.totp.now()
        assert await jo.login(code) == grpc.StatusCode.OK
        # The same code is accepted once only.
        assert await jo.login(code) == grpc.StatusCode.UNAUTHENTICATED
        # An unknown user fails the same way, with the same message.
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.AuthenticateUser(
                pb.AuthenticateUserRequest(username="nobody", password=PASSWORD, totp_code=code),
                metadata=md,
            )
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            await stub.AuthenticateUser(
                pb.AuthenticateUserRequest(username="jo.bloggs", password="not the password", totp_code=code),
                metadata=md,
            )
        assert (unknown.value.code(), unknown.value.details()) == (
            wrong.value.code(),
            wrong.value.details(),
        )
        # Concurrent wrong attempts (one more above) lock the account.
        results = await asyncio.gather(*(jo.login("000000", "wrong password!!") for _ in range(5)))
        assert set(results) == {grpc.StatusCode.UNAUTHENTICATED}
        # Locked: even the right password and a fresh code fail.
        assert await jo.login(jo.totp.at(time.time() + 30)) == grpc.StatusCode.UNAUTHENTICATED


async def test_parallel_sign_ins_with_the_right_credentials_lock_nobody_out(
    database_url: str, tmp_path: Path
) -> None:
    """A partner's client that signs its person in several times at once (or retries one that
    succeeded) gets one token and refusals for the rest, each judged on its credentials: it must
    not lock its own person out (before: every attempt failed and the account was locked)."""
    async with signing_in(database_url, tmp_path) as jo:
        code = jo.totp.now()
        results = await asyncio.gather(*(jo.login(code) for _ in range(6)))
        # One token; the others are refused (a code works once) or, on a host too busy for them
        # to get their turn within 2 s, told to retry — none counts against the person.
        assert [r.name for r in results].count("OK") == 1, results
        assert set(results) <= {
            grpc.StatusCode.OK,
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        }
        assert jo.lockout() == (0, None)
        # Wrong passwords sent at once are still each a failure: three lock the account.
        wrong = await asyncio.gather(*(jo.login("000000", "wrong password!!") for _ in range(3)))
        assert set(wrong) == {grpc.StatusCode.UNAUTHENTICATED}
        assert jo.lockout()[1] is not None


@pytest.mark.parametrize(("limit", "attempts"), [(5, 12), (12, 12), (15, 15)])
async def test_concurrent_wrong_passwords_are_each_refused_and_lock_the_account(
    database_url: str, tmp_path: Path, limit: int, attempts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONTRACT §5: after MAX_FAILED_LOGINS consecutive failures the account is locked, safely under
    concurrent attempts, and a failed login says only UNAUTHENTICATED. Found by review: of twelve
    at once, those that waited over 2 s for their turn were RESOURCE_EXHAUSTED; with 15 to lock,
    those past the username's burst of ten were refused unchecked and uncounted, so the account
    stayed open."""
    # Each waits its turn however slow the host: fifteen Argon2 checks one after another outlasted
    # the 8 s a turn may take when the whole suite ran beside them (a wait that long is refused
    # RESOURCE_EXHAUSTED, to be retried: `test_username_throttle_a_turn_not_reached_in_time...`).
    from services.identity import hashing

    monkeypatch.setattr(hashing, "TURN_WAIT_SECONDS", 120.0)
    async with signing_in(database_url, tmp_path, max_failed_logins=limit) as jo:
        results = await asyncio.gather(*(jo.login("000000", "wrong password!!") for _ in range(attempts)))
        assert set(results) == {grpc.StatusCode.UNAUTHENTICATED}, results
        assert jo.lockout()[1] is not None
        assert await jo.login(jo.totp.now()) == grpc.StatusCode.UNAUTHENTICATED


async def test_a_login_past_its_callers_deadline_stores_nothing(database_url: str, tmp_path: Path) -> None:
    """Found by review: identity could check and commit a login after the gateway had given up on
    it (a token no one received, a failure counted for an answer no one saw). Attempts that
    cannot be checked within the caller's deadline, less what the rest of the login needs, are
    refused RESOURCE_EXHAUSTED and count for nothing; every failure counted was answered."""
    async with signing_in(database_url, tmp_path, max_failed_logins=50) as jo:

        async def attempt() -> grpc.StatusCode:
            try:
                await jo.stub.AuthenticateUser(
                    pb.AuthenticateUserRequest(
                        username="jo.bloggs", password="wrong password!!", totp_code="000000"
                    ),
                    metadata=jo.gateway,
                    timeout=2.0,
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        results = await asyncio.gather(*(attempt() for _ in range(30)))
        await asyncio.sleep(1.5)  # anything still under way has finished
        assert set(results) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}, results
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in results
        assert jo.lockout()[0] == results.count(grpc.StatusCode.UNAUTHENTICATED)


async def test_wrong_passwords_in_a_row_lock_the_account_at_a_limit_above_ten(
    database_url: str, tmp_path: Path
) -> None:
    async with signing_in(database_url, tmp_path, max_failed_logins=12) as jo:
        for _ in range(11):
            assert await jo.login("000000", "wrong password!!") == grpc.StatusCode.UNAUTHENTICATED
        assert jo.lockout() == (11, None)
        assert await jo.login("000000", "wrong password!!") == grpc.StatusCode.UNAUTHENTICATED
        assert jo.lockout()[1] is not None
        assert await jo.login(jo.totp.now()) == grpc.StatusCode.UNAUTHENTICATED


SIGN_IN_ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


async def test_sign_ins_over_a_usernames_burst_are_refused_unchecked_and_count_against_nobody(
    database_url: str, tmp_path: Path
) -> None:
    """Found by probing: two bursts of eight right sign-ins a second apart went past the username's
    burst of ten; those refused unchecked were counted as failures, locked the account, and the
    second burst's own right code was refused with them."""
    async with signing_in(database_url, tmp_path) as jo:
        first = await asyncio.gather(*(jo.login(jo.totp.now()) for _ in range(8)))
        assert [r.name for r in first].count("OK") == 1, first
        second = await asyncio.gather(*(jo.login(jo.totp.at(time.time() + 30)) for _ in range(8)))
        assert [r.name for r in second].count("OK") == 1, second
        assert set(second) <= SIGN_IN_ANSWERS
        assert jo.lockout() == (0, None)
