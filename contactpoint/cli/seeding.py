"""`contactpoint seed`: synthetic children through the real ingestion path (records' `submit`,
the function behind SubmitSourceRecord), straight on the records database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime

import typer
from pydantic import ValidationError
from sqlalchemy import Connection

from contactpoint.cli.synthetic import synthetic_records
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.logging import configure_logging
from contactpoint.platform.settings import load_settings
from contactpoint.records.v1.records_service_pb2 import SourceRecord


def seed(env: Mapping[str, str], *, children: int, seed_value: int, organisation: str) -> Counter[str]:
    """Submit `children` synthetic children (and their second-source duplicates); outcome counts."""
    from services.records import domain
    from services.records.main import MIGRATIONS
    from services.records.model import AgeLimits, Submitted
    from services.records.settings import RecordsSettings

    try:
        settings = load_settings(RecordsSettings, env)
    except ValidationError as exc:
        missing = ", ".join(
            "CONTACTPOINT_RECORDS_" + "_".join(map(str, e["loc"])).upper() for e in exc.errors()
        )
        typer.echo(f"contactpoint seed: bad records configuration: {missing}", err=True)
        raise typer.Exit(2) from None
    configure_logging(level="warning", fmt=settings.log_format)  # one line per record would drown the summary
    migrate.upgrade("records", MIGRATIONS, settings.database_url)
    db = Database(settings.database_url)
    outcomes: Counter[str] = Counter()
    try:
        today = datetime.now(UTC).date()
        limits = AgeLimits(settings.max_age_years, settings.extended_max_age_years)
        for record in synthetic_records(children, seed_value, today=today):
            # Same seed, same day: every request is a retry and changes nothing.
            request_id = (
                f"seed-{seed_value}-{today.isoformat()}-{record.source_system}-{record.source_record_id}"
            )

            def submit(conn: Connection, r: SourceRecord = record, rid: str = request_id) -> Submitted:
                return domain.submit(conn, organisation=organisation, request_id=rid, record=r, limits=limits)

            try:
                outcomes[db.run_sync(submit).outcome.name] += 1
            except ContactPointError as exc:
                outcomes[f"rejected ({exc.code.name})"] += 1
    finally:
        db.dispose()
    return outcomes
