"""Assembles and runs the audit service."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.peers import ServiceToken, open_channel, remote_verifier
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import ConfigurationError, load_settings
from contactpoint.platform.tls import load_tls
from contactpoint.platform.tracing import tracing_for
from services.audit import repository
from services.audit.domain import Signer
from services.audit.log_key_check import check_log_key, refuse_a_new_key
from services.audit.sequencer import Sequencer
from services.audit.servicer import ACCESS, DESCRIPTOR, AuditServicer
from services.audit.settings import AuditSettings
from services.audit.witness_check import check_at_start
from services.audit.witnessing import WitnessClient

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: AuditSettings) -> Built:
    """The audit service, assembled from its settings."""
    db = Database(settings.database_url)
    if not settings.signing_key_file.exists():
        await asyncio.to_thread(
            db.run_sync, lambda c: refuse_a_new_key(c, settings.signing_key_file), write=False
        )
    key = load_or_create_signing_key(settings.signing_key_file)
    pinned = settings.pinned_key()
    if pinned is not None and raw_public_key(key) != pinned:
        # A key file swapped in beside the database would sign heads the pinned key refuses.
        raise ConfigurationError(
            f"the audit signing key at {settings.signing_key_file} is not the one pinned in "
            "CONTACTPOINT_AUDIT_PUBLIC_KEY"
        )
    await asyncio.to_thread(
        db.run_sync,
        lambda c: check_log_key(c, raw_public_key(key), settings.signing_key_file, settings.origin),
        write=False,
    )
    tls = load_tls(settings).channel_credentials()
    tracing = tracing_for(settings, "audit")
    witness: WitnessClient | None = None
    if settings.witness_target:
        channel = open_channel(settings.witness_target, tls, tracing=tracing)
        try:
            await check_at_start(db, channel, settings)
        except BaseException:
            await channel.close(None)
            db.dispose()
            raise
        witness = WitnessClient(db, channel, settings=settings)
    identity = open_channel(settings.identity_target, tls, tracing=tracing)
    token = ServiceToken(identity, *settings.machine_credentials())
    verifier = remote_verifier(settings, identity, token)
    signer = Signer(key, settings.origin)
    metrics = Metrics()
    metrics.watch_database(db.writer, db.reader)
    tree_size = metrics.gauge("contactpoint_audit_tree_size", "entries in the log (after the last batch)")
    batch_sizes = metrics.histogram(
        "contactpoint_audit_batch_events",
        "events per appended batch (one signed checkpoint each)",
        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    )
    tree_size.set(await asyncio.to_thread(db.run_sync, repository.tree_size, write=False))
    if witness is not None:
        # For alerting: appends refused because the log contradicts its witness (`witness_check`),
        # and how far the witness has cosigned.
        client = witness
        metrics.gauge_of(
            "contactpoint_audit_log_contradicts_witness",
            "1 while appends are refused because the log contradicts its witness's checkpoint",
            lambda: float(client.contradiction is not None),
        )
        metrics.gauge_of(
            "contactpoint_audit_witnessed_size",
            "entries the witness has cosigned, as far as this process knows (0: not known yet)",
            lambda: float(client.witnessed_size or 0),
        )

    def batch_written(events: int, size: int) -> None:
        batch_sizes.observe(events)
        tree_size.set(size)

    sequencer = Sequencer(
        db,
        signer,
        max_batch=settings.append_batch_max,
        on_commit=witness.notify if witness else None,
        refuse_when=(lambda: witness.contradiction) if witness else None,
        on_batch=batch_written,
    )
    servicer = AuditServicer(
        db=db, signer=signer, sequencer=sequencer, public_key=raw_public_key(key), verifier=verifier
    )
    spec = ServiceSpec(
        servicer,
        pb_grpc.add_AuditServiceServicer_to_server,
        DESCRIPTOR,
        ACCESS,
        on_refused=servicer.record_refusal,
    )

    async def close() -> None:
        await servicer.close()
        await sequencer.close()
        if witness is not None:
            await witness.close()  # a last push, so the final batch is witnessed too
        await identity.close(None)
        db.dispose()

    if witness is not None:
        witness.start()
    return Built(
        [spec],
        verifier,
        [close],
        on_drain=[servicer.close],
        metrics=metrics,
        tracing=tracing,
        checks=[db.problem],
    )


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve audit`."""
    settings = load_settings(AuditSettings, env)
    run_service("audit", settings, MIGRATIONS, lambda: build(settings))
