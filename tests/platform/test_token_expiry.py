"""An expired token is refused UNAUTHENTICATED saying so ("token expired; log in again"), so that
a client knows to log in again; a token that is not ours still says only "invalid token"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.errors import Unauthenticated
from contactpoint.platform.keys import load_or_create_signing_key
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from contactpoint.records.v1 import records_service_pb2 as pb
from services.identity.token_issuer import TokenIssuer
from tests.harness import bearer, identity_settings, running_identity
from tests.platform.probe import ECHO, STREAM, WATCH, running_probe, service_account

EXPIRED = "token expired; log in again"
AN_HOUR_AGO = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # identity's tokens last 15 minutes


async def test_the_verifier_says_when_a_token_has_expired() -> None:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)

    async def source(_known: int) -> VerificationState:
        return VerificationState(1, {issuer.key_id: issuer.public_key}, frozenset(), frozenset())

    verifier = TokenVerifier(source, max_staleness_seconds=3600)
    await verifier.refresh()
    assert verifier.verify(issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token).name
    with pytest.raises(Unauthenticated) as expired:
        verifier.verify(issuer.issue(service_account(), now=AN_HOUR_AGO).token)
    assert expired.value.message == EXPIRED
    assert expired.value.code == grpc.StatusCode.UNAUTHENTICATED

    # An expired token signed by someone else (under our key's id) is not ours: nothing more said.
    forger = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    forged = forger.issue(service_account(), now=AN_HOUR_AGO).token
    claims = jwt.decode(forged, options={"verify_signature": False})
    headers = {"kid": issuer.key_id}
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=headers)
    for token in (forged, "not-a-token"):
        with pytest.raises(Unauthenticated) as invalid:
            verifier.verify(token)
        assert invalid.value.message == "invalid token"


async def test_an_expired_token_is_refused_saying_so_over_grpc() -> None:
    request = pb.SubmitSourceRecordRequest(request_id="r-1")
    async with running_probe() as probe:
        expired = probe.metadata(now=AN_HOUR_AGO)
        for method in (ECHO, WATCH, STREAM):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                if method == ECHO:
                    await probe.typed(method)(request, metadata=expired)
                elif method == WATCH:
                    [_ async for _ in probe.typed(method)(request, metadata=expired)]
                else:
                    [_ async for _ in probe.typed(method)(iter([request]), metadata=expired)]
            assert (refused.value.code(), refused.value.details()) == (
                grpc.StatusCode.UNAUTHENTICATED,
                EXPIRED,
            )
        assert probe.handled == []
        # The refusal hook hears of it, with whom the (correctly signed) token was issued to, for
        # the audit log: the token no longer lets them in, but it still says whose it was.
        assert [(rpc, caller and caller.name, exc.message) for rpc, caller, exc in probe.refusals] == [
            ("Echo", "probe-caller", EXPIRED),
            ("Watch", "probe-caller", EXPIRED),
            ("Stream", "probe-caller", EXPIRED),
        ]


async def test_identity_refuses_its_own_expired_token_saying_so(database_url: str, tmp_path: Path) -> None:
    settings = identity_settings(database_url, tmp_path)
    async with (
        running_identity(settings) as (_, target),
        grpc.aio.insecure_channel(target) as channel,
    ):
        issuer = TokenIssuer(load_or_create_signing_key(settings.signing_key_file), ttl_seconds=900)
        token = issuer.issue(service_account(), now=AN_HOUR_AGO).token
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await identity_grpc.IdentityServiceStub(channel).RevokeToken(
                identity_pb.RevokeTokenRequest(), metadata=bearer(token)
            )
        assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, EXPIRED)
