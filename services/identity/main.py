"""Assembles and runs the identity service."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import grpc

from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.db import Database
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.peers import open_channel
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from contactpoint.platform.tls import load_tls
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from contactpoint.platform.tracing import tracing_for
from services.identity import domain, operator_log, totp_key
from services.identity.hashing import Hashing
from services.identity.operator_presence import Presence
from services.identity.own_token import OwnServiceToken
from services.identity.servicer import ACCESS, DESCRIPTOR, IdentityServicer
from services.identity.settings import IdentitySettings
from services.identity.signing_keys import KeyRing
from services.identity.token_issuer import TokenIssuer

MIGRATIONS = Path(__file__).parent / "migrations"
# Identity reads its own revocations straight from its database: polled often, it costs little.
LOCAL_POLL_SECONDS = 0.25


async def build(settings: IdentitySettings) -> Built:
    """The identity service, assembled from its settings."""
    db = Database(settings.database_url)
    tracing = tracing_for(settings, "identity")
    issuer = TokenIssuer(
        KeyRing(settings.signing_key_file, ttl_seconds=settings.token_ttl_seconds), settings.token_ttl_seconds
    )

    async def local_state(known_version: int) -> VerificationState | None:
        return await db.read(
            lambda conn: domain.verification_state(conn, issuer=issuer, known_version=known_version)
        )

    sealer = await db.write(lambda conn: totp_key.open_totp_sealer(conn, settings.totp_key_path))
    await db.write(lambda conn: totp_key.seal_legacy_totp_secrets(conn, sealer=sealer))
    verifier = TokenVerifier(local_state, poll_seconds=LOCAL_POLL_SECONDS)
    await verifier.refresh()
    channels: list[grpc.aio.Channel] = []
    audit: AuditWriter | None = None
    if settings.audit_target and settings.client_id:
        channels.append(
            open_channel(settings.audit_target, load_tls(settings).channel_credentials(), tracing=tracing)
        )
        token = OwnServiceToken(db, issuer, settings.client_id, settings.client_secret.get_secret_value())
        audit = AuditWriter(channels[0], token)
    hashing = Hashing.from_settings(
        workers=settings.password_workers,
        queue=settings.password_queue,
        per_username_per_minute=settings.logins_per_username_per_minute,
        max_failed_logins=settings.max_failed_logins,
    )
    servicer = IdentityServicer(
        db=db,
        issuer=issuer,
        settings=settings,
        sealer=sealer,
        audit=audit,
        hashing=hashing,
        verifier=verifier,
    )
    spec = ServiceSpec(
        servicer,
        pb_grpc.add_IdentityServiceServicer_to_server,
        DESCRIPTOR,
        ACCESS,
        on_refused=servicer.record_refusal,
    )

    # Account changes made from the command line, put in the audit log (`operator_log`).
    # While it forwards, a command waits for its own change to reach the log (`operator_presence`).
    presence = Presence.hold(settings.database_url) if audit is not None else None
    forwarding = (
        asyncio.get_running_loop().create_task(
            operator_log.forward(db, audit, presence), name="operator-actions"
        )
        if audit is not None
        else None
    )

    async def close() -> None:
        if forwarding is not None:
            forwarding.cancel()
            await asyncio.gather(forwarding, return_exceptions=True)
        if presence is not None:
            presence.release()
        for channel in channels:
            await channel.close(None)
        hashing.close()
        db.dispose()

    metrics = Metrics()
    metrics.watch_database(db.writer, db.reader)
    return Built([spec], verifier, [close], metrics=metrics, tracing=tracing, checks=[db.problem])


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve identity`."""
    settings = load_settings(IdentitySettings, env)
    run_service("identity", settings, MIGRATIONS, lambda: build(settings))
