"""StreamSourceRecords checks its caller's token again before it stores, on SQLite and PostgreSQL:
here the servicer is driven directly, as the interceptor would after admitting the caller, with a
token that has expired since the stream opened (revocation and suspension are tried over real
gRPC in test_attacks.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select

from contactpoint.platform.auth import ALGORITHM, ISSUER, SERVICE, Principal, set_principal
from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unauthenticated
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import key_scheme
from services.records.servicer import RecordsServicer
from services.records.settings import RecordsSettings
from services.records.tables import source_records
from tests.harness import bind_records_keys
from tests.services.records.conftest import ORG_A, make_record

KEY_ID = "test-key"


class Issuer:
    """Signs tokens as identity would, and feeds a verifier its key."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.verifier = TokenVerifier(self.state, max_staleness_seconds=24 * 3600)

    async def state(self, known_version: int) -> VerificationState | None:
        if known_version == 1:
            return None
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerificationState(1, {KEY_ID: raw}, frozenset(), frozenset())

    def principal(self, expires: dt.datetime) -> Principal:
        """A council system's principal, as admitted when its stream opened."""
        now = dt.datetime.now(dt.UTC)
        claims = {
            "iss": ISSUER,
            "sub": "council-account",
            "jti": uuid.uuid4().hex,
            "iat": int((now - dt.timedelta(minutes=20)).timestamp()),
            "exp": int(expires.timestamp()),
            "name": "council",
            "org": ORG_A,
            "roles": ["council-system"],
            "kind": SERVICE,
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": KEY_ID})
        return Principal(
            subject="council-account",
            name="council",
            organisation=ORG_A,
            roles=frozenset({"council-system"}),
            kind=SERVICE,
            token_id=str(claims["jti"]),
            expire_time=expires,
            token=token,
        )


@pytest.fixture
def servicer(database_url: str, db: Database) -> Iterator[tuple[RecordsServicer, Issuer]]:
    """A records servicer on a migrated database, with a verifier that knows the issuer's key."""
    issuer = Issuer()
    settings = RecordsSettings.model_validate(
        {"database_url": database_url, "identity_target": "127.0.0.1:1", "prepare_workers": 0}
    )
    servicer = RecordsServicer(
        db=db,
        settings=settings,
        audit=None,
        verifier=issuer.verifier,
        vault=bind_records_keys(db),
        filing=key_scheme.Filing(done=True),
    )
    try:
        yield servicer, issuer
    finally:
        servicer.workers.close()


async def _stream(
    servicer: RecordsServicer, principal: Principal, count: int
) -> list[pb.SubmitSourceRecordResponse]:
    async def requests() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        for n in range(count):
            yield pb.SubmitSourceRecordRequest(
                record=make_record(f"t-{n}", nhs_number=""), request_id=f"t-{n}"
            )

    set_principal(principal)
    try:
        return [r async for r in servicer.StreamSourceRecords(requests(), cast(Context, None))]
    finally:
        set_principal(None)


def _stored(db: Database) -> int:
    return int(
        db.run_sync(lambda c: c.execute(select(func.count()).select_from(source_records)).scalar_one())
    )


async def test_a_stream_whose_token_has_expired_stores_nothing(
    servicer: tuple[RecordsServicer, Issuer], db: Database
) -> None:
    records, issuer = servicer
    await issuer.verifier.refresh()
    now = dt.datetime.now(dt.UTC)

    # The control: a token still good for an hour stores what it sends.
    answers = await _stream(records, issuer.principal(now + dt.timedelta(hours=1)), 1)
    assert len(answers) == 1 and not answers[0].HasField("error")
    assert _stored(db) == 1

    # A token that expired after the stream was admitted: the stream ends, nothing more is stored.
    with pytest.raises(Unauthenticated):
        await _stream(records, issuer.principal(now - dt.timedelta(minutes=1)), 3)
    assert _stored(db) == 1


async def test_a_stream_whose_verifier_fell_behind_catches_up_and_stores(
    servicer: tuple[RecordsServicer, Issuer], db: Database
) -> None:
    """The verifier has no fresh state (its poll has not run: a held-up event loop, one slow
    answer from identity): the check before storing asks identity itself, as a new call would,
    rather than end the stream UNAVAILABLE."""
    records, issuer = servicer
    assert issuer.verifier.stale()
    answers = await _stream(records, issuer.principal(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)), 2)
    assert [a.HasField("error") for a in answers] == [False, False]
    assert _stored(db) == 2
