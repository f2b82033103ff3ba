"""Records' Alembic history builds exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from contactpoint.platform import migrate
from contactpoint.platform.db import make_engine
from services.records.main import MIGRATIONS
from services.records.tables import metadata


def test_migrations_build_exactly_the_tables(database_url: str) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url)
    migrate.upgrade("records", MIGRATIONS, database_url)  # a second start changes nothing
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": "alembic_version_records"})
            diff = [
                d
                for d in compare_metadata(ctx, metadata)
                if not (d[0] == "remove_table" and d[1].name.startswith("alembic_version"))
            ]
    finally:
        engine.dispose()
    assert diff == []
