"""Assembles and runs the records service."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contactpoint.platform.db import Database
from contactpoint.platform.peers import open_channel, remote_verifier
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.records.servicer import ACCESS, DESCRIPTOR, RecordsServicer
from services.records.settings import RecordsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: RecordsSettings) -> Built:
    """The records service, assembled from its settings."""
    db = Database(settings.database_url)
    identity = open_channel(settings.identity_target)
    verifier = remote_verifier(settings, identity)
    servicer = RecordsServicer(db=db, settings=settings)
    spec = ServiceSpec(servicer, pb_grpc.add_RecordsServiceServicer_to_server, DESCRIPTOR, ACCESS)

    async def close() -> None:
        await identity.close(None)
        db.dispose()

    return Built([spec], verifier, [close])


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve records`."""
    settings = load_settings(RecordsSettings, env)
    run_service("records", settings, MIGRATIONS, lambda: build(settings))
