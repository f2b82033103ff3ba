"""A Logout identity cannot take at once (found by probing: the log said the person had logged
out, and the token went on reading children once identity was back): the gateway refuses the
token itself from that moment and revokes it as soon as identity can."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unauthenticated, Unavailable
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from gateway import logouts
from gateway.logout_repository import pending
from gateway.logouts import Logouts
from gateway.main import MIGRATIONS as GATEWAY_MIGRATIONS
from services.identity.token_issuer import TokenIssuer
from tests.conftest import DatabaseFactory
from tests.platform.probe import service_account


class _Identity:
    """Identity as the gateway's client sees it: down until told otherwise."""

    def __init__(self, *, up: bool = False, refuses: bool = False) -> None:
        self.up = up
        self.refuses = refuses
        self.revoked: list[str] = []
        self.revoked_ids: list[str] = []

    async def revoke(self, token: str) -> None:
        if self.refuses:
            raise Unauthenticated("invalid token")
        if not self.up:
            raise Unavailable("identity is unavailable")
        self.revoked.append(token)

    async def revoke_by_id(self, token_id: str, expires_at: float) -> None:
        if not self.up:
            raise Unavailable("identity is unavailable")
        assert expires_at > time.time()
        self.revoked_ids.append(token_id)


async def _until(check: Callable[[], object]) -> None:
    """Wait up to a second for `check()` to hold (the retries run at RETRY_SECONDS, 0.01 s here)."""
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.01)


async def _verifier_of(issuer: TokenIssuer) -> TokenVerifier:
    async def source(_known: int) -> VerificationState:
        return VerificationState(1, {issuer.key_id: issuer.public_key}, frozenset(), frozenset())

    verifier = TokenVerifier(source, max_staleness_seconds=3600)
    await verifier.refresh()
    return verifier


async def _verifier_and_token(issuer: TokenIssuer | None = None) -> tuple[TokenVerifier, str]:
    issuer = issuer or TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    return await _verifier_of(issuer), issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token


async def test_a_logout_identity_cannot_take_is_refused_here_and_revoked_when_it_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logouts, "RETRY_SECONDS", 0.01)
    verifier, token = await _verifier_and_token()
    identity = _Identity()
    ends = Logouts(identity, verifier)  # type: ignore[arg-type]
    person = verifier.verify(token)
    await ends.end(person)
    with pytest.raises(Unauthenticated):
        verifier.verify(token)  # refused here at once
    assert ends.pending == 1
    await asyncio.sleep(0.05)
    assert ends.pending == 1 and identity.revoked == []  # still down: still pending
    identity.up = True
    await _until(lambda: not ends.pending)
    # Asked again by the token's id (the gateway keeps no token).
    assert identity.revoked_ids == [person.token_id] and ends.pending == 0
    await ends.close()


async def test_a_token_identity_refuses_already_needs_nothing_more() -> None:
    verifier, token = await _verifier_and_token()
    ends = Logouts(_Identity(refuses=True), verifier)  # type: ignore[arg-type]
    await ends.end(verifier.verify(token))
    assert ends.pending == 0
    await ends.close()


async def test_an_ordinary_logout_is_refused_here_at_once() -> None:
    # Found by re-probing: the token read children here for 0.1 to 0.3 s after Logout answered,
    # until the gateway's next poll of identity.
    verifier, token = await _verifier_and_token()
    identity = _Identity(up=True)
    ends = Logouts(identity, verifier)  # type: ignore[arg-type]
    await ends.end(verifier.verify(token))
    assert identity.revoked == [token] and ends.pending == 0
    with pytest.raises(Unauthenticated):
        verifier.verify(token)
    await ends.close()


async def test_a_logout_its_caller_cancels_is_still_carried_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by review: the Logout's event was written, the client cancelled while identity was
    asked, and the revocation was dropped with the handler: the token, refused only in this
    process's memory, read children through every other replica until it expired."""
    monkeypatch.setattr(logouts, "RETRY_SECONDS", 0.01)
    verifier, token = await _verifier_and_token()
    identity = _Identity()
    asked = asyncio.Event()
    revoke = identity.revoke

    async def slow_revoke(token: str) -> None:
        asked.set()
        await asyncio.sleep(0.2)
        await revoke(token)

    identity.revoke = slow_revoke  # type: ignore[method-assign]
    ends = Logouts(identity, verifier)  # type: ignore[arg-type]
    person = verifier.verify(token)
    logout = asyncio.create_task(ends.end(person))
    await asyncio.wait_for(asked.wait(), 1)
    logout.cancel()  # the client went, identity still being asked (down, this time)
    with pytest.raises(asyncio.CancelledError):
        await logout
    await _until(lambda: ends.pending)
    assert ends.pending == 1  # kept, and asked for again
    identity.up = True
    await _until(lambda: not ends.pending)
    assert identity.revoked_ids == [person.token_id] and ends.pending == 0
    await ends.close()


async def test_a_pending_logout_outlives_a_gateway_restart(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by probing: a gateway restarted while a revocation was pending forgot it, and the
    logged-out token read children again until it expired. The token's id (never the token) is
    kept in the gateway's database; the next gateway refuses it and asks identity again."""
    monkeypatch.setattr(logouts, "RETRY_SECONDS", 0.01)
    url = databases.new("gateway")
    migrate.upgrade("gateway", GATEWAY_MIGRATIONS, url)
    db = Database(url)
    try:
        issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
        verifier, token = await _verifier_and_token(issuer)
        person = verifier.verify(token)
        identity = _Identity()
        first = Logouts(identity, verifier, db)  # type: ignore[arg-type]
        await first.end(person)
        await first.close()  # the gateway stops, identity still away
        stored = await db.read(lambda c: pending(c, now=time.time()))
        assert [p.token_id for p in stored] == [person.token_id]
        assert token not in repr(stored)

        # A new gateway (a fresh verifier, which has never heard of the logout).
        fresh = await _verifier_of(issuer)
        assert fresh.verify(token).token_id == person.token_id
        second = Logouts(identity, fresh, db)  # type: ignore[arg-type]
        await second.resume()
        with pytest.raises(Unauthenticated):
            fresh.verify(token)  # refused at once by the restarted gateway
        identity.up = True
        for _ in range(200):
            if not second.pending:
                break
            await asyncio.sleep(0.01)
        assert identity.revoked_ids == [person.token_id] and second.pending == 0
        assert await db.read(lambda c: pending(c, now=time.time())) == []
        await second.close()
    finally:
        db.dispose()


async def test_another_running_replica_takes_a_pending_logout_up(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by re-probing: while the gateway that answered the Logout stayed down, another replica
    (running all along) served the token again once identity was back, and nobody told identity.
    Every replica reads the pending Logouts as it runs, refuses their tokens and asks identity."""
    monkeypatch.setattr(logouts, "RETRY_SECONDS", 0.01)
    monkeypatch.setattr(logouts, "WATCH_SECONDS", 0.01)
    url = databases.new("gateway")
    migrate.upgrade("gateway", GATEWAY_MIGRATIONS, url)
    db = Database(url)
    try:
        issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
        first_verifier, token = await _verifier_and_token(issuer)
        other_verifier = await _verifier_of(issuer)
        identity = _Identity()
        other = Logouts(identity, other_verifier, db)  # type: ignore[arg-type]
        await other.resume()  # running before the Logout, with nothing pending
        person = first_verifier.verify(token)
        assert other_verifier.verify(token).token_id == person.token_id
        first = Logouts(identity, first_verifier, db)  # type: ignore[arg-type]
        await first.end(person)
        await first.close()  # the gateway that took it goes down
        for _ in range(200):
            try:
                other_verifier.verify(token)
            except Unauthenticated:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(Unauthenticated):
            other_verifier.verify(token)  # refused by the replica that never saw the Logout
        identity.up = True
        for _ in range(200):
            if not other.pending:
                break
            await asyncio.sleep(0.01)
        assert identity.revoked_ids == [person.token_id] and other.pending == 0
        await other.close()
    finally:
        db.dispose()
