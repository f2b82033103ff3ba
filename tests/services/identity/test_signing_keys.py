"""Identity's signing keys rotate by `kid`: a new key signs, the retired one still verifies until
every token it signed has expired, and verifiers elsewhere learn both without a restart."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import grpc
import jwt

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.db import Database
from contactpoint.platform.peers import ServiceToken, remote_state_source
from contactpoint.platform.token_verifier import TokenVerifier
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


async def test_tokens_of_both_keys_verify_after_a_rotation(database_url: str, tmp_path: Path) -> None:
    settings = identity_settings(database_url, tmp_path)
    async with running_identity(settings) as (_, target):
        account = create_service_account(database_url, "council-a", "council-system")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.IdentityServiceStub(channel)
            request = pb.IssueServiceTokenRequest(
                client_id=account.client_id, client_secret=account.client_secret
            )
            before = (await stub.IssueServiceToken(request)).access_token
            own = ServiceToken(channel, **platform_account(database_url, "records"))
            verifier = TokenVerifier(remote_state_source(channel, own), poll_seconds=0.1)
            await verifier.refresh()
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
