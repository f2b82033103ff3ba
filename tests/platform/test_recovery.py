"""After identity was away, a service verifies tokens again only on a second answer: revocations
that could not reach identity meanwhile (a logout at the gateway) land in between (found by
re-probing: records and audit accepted a logged-out token for half a second after identity came
back, on a state identity served before it heard of the logout)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform import token_verifier
from contactpoint.platform.errors import Unauthenticated, Unavailable
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from services.identity.token_issuer import TokenIssuer
from tests.platform.probe import service_account


async def test_the_first_answer_after_an_outage_is_confirmed_before_tokens_are_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(token_verifier, "RECOVERY_CONFIRM_SECONDS", 0.2)
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    token = issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token
    revoked: set[str] = set()
    up = True
    version = 1

    async def source(_known: int) -> VerificationState:
        if not up:
            raise ConnectionError("identity is away")
        return VerificationState(version, {issuer.key_id: issuer.public_key}, frozenset(revoked), frozenset())

    verifier = TokenVerifier(source, max_staleness_seconds=0.1)
    await verifier.refresh()
    token_id = verifier.verify(token).token_id
    up = False
    with pytest.raises(ConnectionError):
        await verifier.refresh()
    await asyncio.sleep(0.15)  # stale: every token refused
    with pytest.raises(Unavailable):
        verifier.verify(token)

    # Identity is back, and answers first as it was; the logout's revocation lands just after.
    up = True

    async def logout_lands() -> None:
        nonlocal version
        await asyncio.sleep(0.05)
        revoked.add(token_id)
        version = 2

    landing = asyncio.ensure_future(logout_lands())
    fetch = asyncio.ensure_future(verifier.refresh())
    await asyncio.sleep(0.02)
    with pytest.raises(Unavailable):
        verifier.verify(token)  # the first answer does not make the state fresh
    await fetch
    await landing
    with pytest.raises(Unauthenticated):
        verifier.verify(token)  # the second one does, and it knows of the logout


async def test_a_poll_that_merely_fell_behind_is_not_held_back() -> None:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    token = issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token

    async def source(_known: int) -> VerificationState:
        return VerificationState(1, {issuer.key_id: issuer.public_key}, frozenset(), frozenset())

    verifier = TokenVerifier(source, max_staleness_seconds=0.05)
    await verifier.refresh()
    await asyncio.sleep(0.1)  # stale, but no fetch failed
    await asyncio.wait_for(verifier.refresh(), timeout=0.1)  # no confirmation wait
    assert verifier.verify(token).name
