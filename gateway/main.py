"""Assembles and runs the gateway."""

from __future__ import annotations

from collections.abc import Mapping

from contactpoint.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from contactpoint.platform.audited import AuditWriter
from contactpoint.platform.peers import ServiceToken, open_channel, remote_verifier
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from gateway.records_client import RecordsClient
from gateway.servicer import ACCESS, DESCRIPTOR, GatewayServicer
from gateway.settings import GatewaySettings


async def build(settings: GatewaySettings) -> Built:
    """The gateway, assembled from its settings."""
    identity = open_channel(settings.identity_target)
    records = open_channel(settings.records_target)
    audit = open_channel(settings.audit_target)
    verifier = remote_verifier(settings, identity)
    token = ServiceToken(identity, settings.client_id, settings.client_secret.get_secret_value())
    servicer = GatewayServicer(
        verifier=verifier,
        identity=identity,
        records=RecordsClient(records, token),
        audit=AuditWriter(audit, token),
        token=token,
    )
    spec = ServiceSpec(servicer, pb_grpc.add_GatewayServiceServicer_to_server, DESCRIPTOR, ACCESS)

    async def close() -> None:
        for channel in (identity, records, audit):
            await channel.close(None)

    return Built([spec], verifier, [close])


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve gateway`."""
    settings = load_settings(GatewaySettings, env)
    run_service("gateway", settings, None, lambda: build(settings))
