"""The audit migrations build exactly the tables in tables.py, and an empty tree to append to."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from contactpoint.platform import migrate
from contactpoint.platform.db import make_engine
from services.audit.main import MIGRATIONS
from services.audit.tables import metadata, tree_state


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    migrate.upgrade("audit", MIGRATIONS, database_url)
    # Running again is a no-op (every replica migrates on start).
    migrate.upgrade("audit", MIGRATIONS, database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": "alembic_version_audit"})
            diff = [
                d
                for d in compare_metadata(ctx, metadata)
                if not (d[0] == "remove_table" and d[1].name == "alembic_version_audit")
            ]
            state = conn.execute(select(tree_state)).mappings().all()
    finally:
        engine.dispose()
    assert diff == []
    assert [dict(row) for row in state] == [{"id": 1, "size": 0, "peaks": "[]"}]
