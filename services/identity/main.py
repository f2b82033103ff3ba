"""Assembles and runs the identity service."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.auth import TokenVerifier, VerificationState
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from services.identity import domain
from services.identity.servicer import ACCESS, DESCRIPTOR, IdentityServicer
from services.identity.settings import IdentitySettings

MIGRATIONS = Path(__file__).parent / "migrations"
# Identity reads its own revocations straight from its database: polled often, it costs little.
LOCAL_POLL_SECONDS = 0.25


async def build(settings: IdentitySettings) -> Built:
    """The identity service, assembled from its settings."""
    db = Database(settings.database_url)
    issuer = domain.TokenIssuer(
        load_or_create_signing_key(settings.signing_key_file), settings.token_ttl_seconds
    )

    async def local_state(known_version: int) -> VerificationState | None:
        return await db.read(
            lambda conn: domain.verification_state(conn, issuer=issuer, known_version=known_version)
        )

    verifier = TokenVerifier(local_state, poll_seconds=LOCAL_POLL_SECONDS)
    await verifier.refresh()
    servicer = IdentityServicer(db=db, issuer=issuer, settings=settings)
    spec = ServiceSpec(servicer, pb_grpc.add_IdentityServiceServicer_to_server, DESCRIPTOR, ACCESS)

    async def close() -> None:
        db.dispose()

    return Built([spec], verifier, [close])


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve identity`."""
    settings = load_settings(IdentitySettings, env)
    run_service("identity", settings, MIGRATIONS, lambda: build(settings))
