"""Assembles and runs the witness."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key
from contactpoint.platform.logging import get_logger
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from contactpoint.platform.tracing import tracing_for
from contactpoint.witness.v1 import witness_service_pb2_grpc as pb_grpc
from services.witness import domain
from services.witness.servicer import ACCESS, DESCRIPTOR, WitnessServicer
from services.witness.settings import WitnessSettings

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def witness_of(settings: WitnessSettings) -> domain.Witness:
    """The witness's identity and the log it follows, from its settings (its key created when
    missing)."""
    return domain.Witness(
        load_or_create_signing_key(settings.signing_key_file),
        settings.name,
        settings.log_origin,
        settings.pinned_log_key(),
    )


async def build(settings: WitnessSettings) -> Built:
    """The witness, assembled from its settings."""
    witness = witness_of(settings)
    db = Database(settings.database_url)
    problem = await db.read(lambda conn: domain.key_problem(conn, witness=witness))
    if problem is not None:
        # Said at once; the witness goes on cosigning only what the keys it follows signed (a
        # swapped key's checkpoints are refused, a logged rotation is followed when it arrives).
        log.warning("witness.log_key_not_followed", problem=problem)
    servicer = WitnessServicer(db=db, witness=witness)
    spec = ServiceSpec(servicer, pb_grpc.add_WitnessServiceServicer_to_server, DESCRIPTOR, ACCESS)

    async def close() -> None:
        db.dispose()

    metrics = Metrics()
    metrics.watch_database(db.writer, db.reader)
    return Built(
        [spec], None, [close], metrics=metrics, tracing=tracing_for(settings, "witness"), checks=[db.problem]
    )


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve witness`."""
    settings = load_settings(WitnessSettings, env)
    run_service("witness", settings, MIGRATIONS, lambda: build(settings))
