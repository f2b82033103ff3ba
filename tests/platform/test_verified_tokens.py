"""A token verified once is not checked in full again (VerifiedTokens), yet everything that can
change about it still counts on every use: its expiry, its key being retired, its revocation and
its subject's suspension; and an altered token is never taken for the one verified."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform import token_verifier as auth
from contactpoint.platform.errors import Unauthenticated
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from contactpoint.platform.verified_tokens import VerifiedTokens
from services.identity.token_issuer import TokenIssuer
from tests.platform.probe import service_account


class Identity:
    """A verification state that a test changes (a new version each time)."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.version, self.keys = 1, {issuer.key_id: issuer.public_key}
        self.revoked: frozenset[str] = frozenset()
        self.suspended: frozenset[str] = frozenset()

    async def source(self, _known: int) -> VerificationState:
        return VerificationState(self.version, dict(self.keys), self.revoked, self.suspended)

    def change(self, **what: object) -> None:
        self.version += 1
        for name, value in what.items():
            setattr(self, name, value)


async def test_a_cached_token_still_expires_loses_its_key_and_can_be_revoked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, max_staleness_seconds=3600)
    await verifier.refresh()
    issued = issuer.issue(service_account(), now=dt.datetime.now(dt.UTC))
    first = verifier.verify(issued.token)
    decodes = 0
    real_decode = auth.jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth.jwt, "decode", counting_decode)
    assert verifier.verify(issued.token) == first and decodes == 0  # from the cache

    # Revoked: refused though cached.
    identity.change(revoked=frozenset({first.token_id}))
    await verifier.refresh()
    with pytest.raises(Unauthenticated):
        verifier.verify(issued.token)

    # Fifteen minutes on, a cached token has expired like any other.
    other = issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token
    verifier.verify(other)
    real_time = auth.time.time
    monkeypatch.setattr(auth.time, "time", lambda: real_time() + 901)
    with pytest.raises(Unauthenticated) as expired:
        verifier.verify(other)
    assert expired.value.message == "token expired; log in again"
    monkeypatch.setattr(auth.time, "time", real_time)

    # Its key retired: verified afresh, and refused.
    identity.change(keys={})
    await verifier.refresh()
    with pytest.raises(Unauthenticated) as retired:
        verifier.verify(other)
    assert retired.value.message == "invalid token"


async def test_an_altered_token_is_not_the_cached_one() -> None:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, max_staleness_seconds=3600)
    await verifier.refresh()
    token = issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token
    verifier.verify(token)
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{head}.{body}.{flipped}")


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = VerifiedTokens(capacity=2)
    keys = {"k": b"raw"}
    for token in ("a", "b"):
        cache.put(token, "k", b"raw", {"sub": token})
    assert cache.get("a", keys) is not None  # "b" is now the least recently used
    cache.put("c", "k", b"raw", {"sub": "c"})
    assert cache.get("b", keys) is None
    assert cache.get("a", keys) is not None and cache.get("c", keys) is not None


async def test_a_failed_first_refresh_is_retried_long_before_the_next_poll() -> None:
    """A service that started before identity answered must not refuse every token for a whole
    poll interval: after a failure the verifier tries again within a fraction of a second."""
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    identity = Identity(issuer)
    calls = 0

    async def flaky(known: int) -> VerificationState:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("identity not up yet")
        return await identity.source(known)

    verifier = TokenVerifier(flaky, poll_seconds=60, max_staleness_seconds=120)
    verifier.start()
    try:
        issued = issuer.issue(service_account(), now=dt.datetime.now(dt.UTC))
        for _ in range(100):  # up to 5 s; a verifier that waited for its 60 s poll fails here
            await asyncio.sleep(0.05)
            if calls >= 2:
                break
        assert calls == 2
        assert verifier.verify(issued.token).name == service_account().name
    finally:
        await verifier.stop()
