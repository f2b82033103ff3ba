"""A Logout identity cannot take at once (found by probing: the log said the person had logged
out, and the token went on reading children once identity was back): the gateway refuses the
token itself from that moment and revokes it as soon as identity can."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform.errors import Unauthenticated, Unavailable
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from gateway import logouts
from gateway.logouts import Logouts
from services.identity.token_issuer import TokenIssuer
from tests.platform.probe import service_account


class _Identity:
    """Identity as the gateway's client sees it: down until told otherwise."""

    def __init__(self, *, up: bool = False, refuses: bool = False) -> None:
        self.up = up
        self.refuses = refuses
        self.revoked: list[str] = []

    async def revoke(self, token: str) -> None:
        if self.refuses:
            raise Unauthenticated("invalid token")
        if not self.up:
            raise Unavailable("identity is unavailable")
        self.revoked.append(token)


async def _verifier_and_token() -> tuple[TokenVerifier, str]:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)

    async def source(_known: int) -> VerificationState:
        return VerificationState(1, {issuer.key_id: issuer.public_key}, frozenset(), frozenset())

    verifier = TokenVerifier(source, max_staleness_seconds=3600)
    await verifier.refresh()
    return verifier, issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token


async def test_a_logout_identity_cannot_take_is_refused_here_and_revoked_when_it_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logouts, "RETRY_SECONDS", 0.01)
    verifier, token = await _verifier_and_token()
    identity = _Identity()
    ends = Logouts(identity, verifier)  # type: ignore[arg-type]
    await ends.end(verifier.verify(token))
    with pytest.raises(Unauthenticated):
        verifier.verify(token)  # refused here at once
    assert ends.pending == 1
    await asyncio.sleep(0.05)
    assert ends.pending == 1 and identity.revoked == []  # still down: still pending
    identity.up = True
    for _ in range(100):
        if not ends.pending:
            break
        await asyncio.sleep(0.01)
    assert identity.revoked == [token] and ends.pending == 0
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
