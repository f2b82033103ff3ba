"""Identity's signing keys rotate by `kid`: a new key signs, the retired one still verifies until
every token it signed has expired, and verifiers elsewhere learn both without a restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform import token_verifier
from contactpoint.platform.auth import ALGORITHM
from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unauthenticated
from contactpoint.platform.keys import load_or_create_signing_key
from contactpoint.platform.peers import ServiceToken, remote_state_source
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from services.identity import repository, signing_keys
from services.identity.signing_keys import GRACE_SECONDS, KeyRing
from tests.harness import (
    create_service_account,
    identity_settings,
    platform_account,
    running_identity,
)


def test_rotation_keeps_the_retired_key_until_its_tokens_expire(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "identity-signing.pem"
    ring = KeyRing(path, ttl_seconds=900)
    first = set(ring.public_keys())
    old, new = signing_keys.rotate(path)
    assert first == {old} and old != new
    ring.refresh()
    assert set(ring.public_keys()) == {old, new}
    assert ring.public_keys()[new] and oct(path.stat().st_mode & 0o777) == "0o600"
    # Once every token the old key signed has expired, it is no longer published.
    retired = next(path.parent.glob("*.retired-*.pem"))
    past = time.time() - 900 - GRACE_SECONDS - 1
    os.utime(retired, (past, past))
    ring.refresh()
    assert set(ring.public_keys()) == {new}


async def _council_token_and_verifier(
    channel: grpc.aio.Channel, database_url: str, account: Any, *, poll_seconds: float
) -> tuple[pb.IssueServiceTokenRequest, str, TokenVerifier]:
    """A council account's token request and a token it was issued, and a verifier (as records
    runs one) that has fetched identity's keys once."""
    request = pb.IssueServiceTokenRequest(client_id=account.client_id, client_secret=account.client_secret)
    token = (await pb_grpc.IdentityServiceStub(channel).IssueServiceToken(request)).access_token
    own = ServiceToken(channel, **platform_account(database_url, "records"))
    verifier = TokenVerifier(remote_state_source(channel, own), poll_seconds=poll_seconds)
    await verifier.refresh()
    return request, token, verifier


async def test_tokens_of_both_keys_verify_after_a_rotation(database_url: str, tmp_path: Path) -> None:
    settings = identity_settings(database_url, tmp_path)
    async with running_identity(settings) as (_, target):
        account = create_service_account(database_url, "council-a", "council-system")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.IdentityServiceStub(channel)
            request, before, verifier = await _council_token_and_verifier(
                channel, database_url, account, poll_seconds=0.1
            )
            verifier.start()
            try:
                old, new = signing_keys.rotate(settings.signing_key_file)
                db = Database(database_url)
                try:
                    db.run_sync(repository.bump_version)
                finally:
                    db.dispose()
                assert jwt.get_unverified_header(before)["kid"] == old
                # Until every verifier can know the new key, the retired one goes on signing; then
                # the new one signs. Every token issued on the way verifies at once, elsewhere too.
                kids = []
                while not kids or kids[-1] != new:
                    token = (await stub.IssueServiceToken(request)).access_token
                    kids.append(jwt.get_unverified_header(token)["kid"])
                    assert verifier.verify(token).name == "council-a"
                    assert verifier.verify(before).name == "council-a"
                    assert len(kids) < 200, "the new key never started signing"
                    await asyncio.sleep(0.05)
                assert kids[0] == old and set(kids) == {old, new}
            finally:
                await verifier.stop()


async def test_a_flood_of_bad_token_requests_never_keeps_a_platform_service_waiting(
    database_url: str, tmp_path: Path
) -> None:
    """Machine secrets are random and checked in microseconds (no Argon2), so hundreds of wrong
    IssueServiceToken calls at once neither queue up nor starve the platform's own renewals."""
    settings = identity_settings(database_url, tmp_path)
    async with running_identity(settings) as (_, target):
        real = platform_account(database_url, "records")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.IdentityServiceStub(channel)

            async def attempt(client_id: str, secret: str) -> grpc.StatusCode:
                try:
                    await stub.IssueServiceToken(
                        pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret)
                    )
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK

            flood = [attempt(f"council-{i}-0123456789ab", "guess" * 8) for i in range(200)]
            flood += [attempt(real["client_id"], "wrong secret" * 4) for _ in range(100)]
            codes = await asyncio.gather(*flood, attempt(real["client_id"], real["client_secret"]))
    assert codes[-1] == grpc.StatusCode.OK
    assert set(codes[:-1]) == {grpc.StatusCode.UNAUTHENTICATED}


def _bump_version(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.run_sync(repository.bump_version)
    finally:
        db.dispose()


def _forged(token: str, key_file: Path, **claims: object) -> str:
    """A token signed with identity's key as someone holding a copy of the key file could sign it:
    `token`'s claims, changed."""
    body = {**jwt.decode(token, options={"verify_signature": False}), **claims}
    key = load_or_create_signing_key(key_file)
    return jwt.encode(
        body, key, algorithm=ALGORITHM, headers={"kid": jwt.get_unverified_header(token)["kid"]}
    )


async def test_a_leaked_key_once_rotated_signs_no_token_that_works(database_url: str, tmp_path: Path) -> None:
    # Found by probing: with a copy of the signing key, tokens forged after `rotate-signing-key`
    # (any roles, any lifetime) worked for 21 minutes and more, and one forged for a year
    # worked before the rotation too. Verifiers now refuse a retired key's tokens that claim to
    # be issued after its retirement, every token living longer than identity issues them for,
    # and a retired key as soon as identity stops publishing it.
    settings = identity_settings(database_url, tmp_path, token_ttl_seconds=60)
    leaked = tmp_path / "leaked.pem"
    async with running_identity(settings) as (_, target):
        account = create_service_account(database_url, "council-a", "council-system")
        shutil.copyfile(settings.signing_key_file, leaked)
        async with grpc.aio.insecure_channel(target) as channel:
            _, before, verifier = await _council_token_and_verifier(
                channel, database_url, account, poll_seconds=60
            )
            now = time.time()
            year = _forged(before, leaked, iat=int(now), iat_ms=int(now * 1000), exp=int(now) + 365 * 86_400)
            with pytest.raises(Unauthenticated):
                verifier.verify(year)
            # A forged `iat_ms` must fall within the second `iat` names (found by re-probing: one a
            # year ahead, with `exp` 900 s after it, made a year-long token look 900 s long).
            ahead_ms = int(now * 1000) + 365 * 86_400_000
            ahead = _forged(before, leaked, iat=int(now), iat_ms=ahead_ms, exp=ahead_ms // 1000 + 30)
            with pytest.raises(Unauthenticated):
                verifier.verify(ahead)
            assert verifier.verify(before).name == "council-a"

            signing_keys.rotate(settings.signing_key_file)
            _bump_version(database_url)  # as `contactpoint admin rotate-signing-key` does
            # Past the moment a retired key may still sign (identity publishes a new key before it
            # signs with it), as forged tokens issued "now" will claim to be.
            await asyncio.sleep(token_verifier.RETIRED_SIGNING_SECONDS + 1)
            await verifier.refresh()
            now = time.time()
            late = _forged(
                before, leaked, roles=["auditor"], iat=int(now), iat_ms=int(now * 1000), exp=int(now) + 60
            )
            with pytest.raises(Unauthenticated):
                verifier.verify(late)
            assert verifier.verify(before).name == "council-a"  # issued before: it lives out its life


def test_a_retired_keys_tokens_are_refused_once_they_must_all_have_expired() -> None:
    # Found by re-probing: a token verified before its key was retired stayed in the verifier's
    # cache of verified tokens, and was accepted as long as identity published the key.
    retired_ms, lifetime = 1_000_000_000_000, 900
    state = VerificationState(
        1,
        {"old": b"k"},
        frozenset(),
        frozenset(),
        retired_at_ms={"old": retired_ms},
        max_lifetime_seconds=lifetime,
    )
    before = {"iat": retired_ms // 1000 - 5, "iat_ms": retired_ms - 5000, "exp": retired_ms // 1000 + 895}
    grace = token_verifier.RETIRED_KEY_GRACE_SECONDS
    token_verifier.check_key_use("old", before, state, now=retired_ms / 1000 + lifetime + grace - 1)
    with pytest.raises(Unauthenticated):
        token_verifier.check_key_use("old", before, state, now=retired_ms / 1000 + lifetime + grace + 1)
    # Issued after its retirement, or claiming to live longer than a token lives: refused at once.
    late = {"iat": retired_ms // 1000 + 60, "iat_ms": retired_ms + 60_000, "exp": retired_ms // 1000 + 900}
    with pytest.raises(Unauthenticated):
        token_verifier.check_key_use("old", late, state, now=retired_ms / 1000 + 61)
    long_lived = {"iat": 10, "iat_ms": 10_000, "exp": 10 + 86_400}
    with pytest.raises(Unauthenticated):
        token_verifier.check_key_use("current", long_lived, state, now=20)
