"""Assembles and runs the gateway."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path

from contactpoint.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.db import Database
from contactpoint.platform.logging import get_logger
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.peers import ServiceToken, open_channel, remote_verifier
from contactpoint.platform.readiness import peer_serving
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from contactpoint.platform.statements import Statements
from contactpoint.platform.tls import load_tls
from contactpoint.platform.tracing import tracing_for
from gateway.allowance import Limits
from gateway.identity_client import IdentityClient
from gateway.limits import Allowances
from gateway.logouts import Logouts
from gateway.peer_throttle import PeerThrottle
from gateway.records_client import RecordsClient
from gateway.servicer import ACCESS, DESCRIPTOR, GatewayServicer
from gateway.settings import GatewaySettings

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def build(settings: GatewaySettings) -> Built:
    """The gateway, assembled from its settings."""
    tls = load_tls(settings).channel_credentials()
    tracing = tracing_for(settings, "gateway")
    identity = open_channel(settings.identity_target, tls, tracing=tracing)
    records = open_channel(settings.records_target, tls, tracing=tracing)
    audit = open_channel(settings.audit_target, tls, tracing=tracing)
    token = ServiceToken(identity, *settings.machine_credentials())
    verifier = remote_verifier(settings, identity, token)
    identity_client = IdentityClient(identity, token)
    audit_writer = AuditWriter(audit, token, gather_seconds=settings.audit_gather_ms / 1000)
    db = Database(settings.database_url)
    # Allowances are bookkeeping: a crash of their database may forget the last moments' reads
    # (a person may then read a few more that day), so commits need not wait for the disk.
    store = Statements(db, wait_for_flush=False)
    limits = Limits(settings.rate_per_minute, settings.daily_record_limit)
    metrics = Metrics()
    metrics.watch_database(db.writer)
    _, client_secret = settings.machine_credentials()
    allowances = Allowances(
        store,
        limits,
        identity_client,
        verifier.suspended_since,
        metrics=metrics,
        # Every replica shares the gateway's account, so they key searches alike.
        search_key=hashlib.sha256(b"contactpoint-gateway-search:" + client_secret.encode()).digest(),
    )
    servicer = GatewayServicer(
        identity=identity_client,
        records=(
            records_client := RecordsClient(
                records, token, read_streams=0 if tracing.enabled else settings.records_read_streams
            )
        ),
        audit=audit_writer,
        allowances=allowances,
        logins=PeerThrottle(settings.logins_per_peer_per_minute),
        logouts=(logouts := Logouts(identity_client, verifier, db)),
    )
    await logouts.resume()
    spec = ServiceSpec(
        servicer,
        pb_grpc.add_GatewayServiceServicer_to_server,
        DESCRIPTOR,
        ACCESS,
        on_refused=audit_writer.record_refusal,
    )

    async def housekeeping() -> None:
        while True:
            try:
                dropped = await allowances.forget_old_days()
                if dropped:
                    log.info("limits.forgot_old_days", reads=dropped)
            except Exception:  # the schedule goes on
                log.exception("limits.housekeeping_failed")
            await asyncio.sleep(settings.housekeeping_seconds)

    chores = asyncio.get_running_loop().create_task(housekeeping(), name="allowance-housekeeping")

    async def close() -> None:
        chores.cancel()
        await asyncio.gather(chores, return_exceptions=True)
        await logouts.close()
        await records_client.close()
        for channel in (identity, records, audit):
            await channel.close(None)
        await store.close()
        db.dispose()

    # Audit first: with the audit service away no request can be answered, so none is invited.
    checks = [db.problem, peer_serving(audit, "the audit service")]
    return Built([spec], verifier, [close], metrics=metrics, tracing=tracing, checks=checks)


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve gateway`."""
    settings = load_settings(GatewaySettings, env)
    run_service("gateway", settings, MIGRATIONS, lambda: build(settings))
