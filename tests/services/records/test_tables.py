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


def test_request_ids_of_two_source_systems_are_two_requests_after_the_upgrade(database_url: str) -> None:
    """0006: a first answer stored before is kept (under source system ""), and each source system
    of an organisation may use an id another has used; a downgrade keeps each id's first answer."""
    from sqlalchemy import text

    migrate.upgrade("records", MIGRATIONS, database_url, revision="0005")
    engine = make_engine(database_url)
    child = (
        "INSERT INTO children (contactpoint_id, status, shielded, provisional_shield, created_at, updated_at)"
        " VALUES ('100000000001', 'active', false, false, :t, :t)"
    )
    try:
        with engine.begin() as conn:
            conn.execute(text(child), {"t": "2026-12-01 00:00:00+00"})
            conn.execute(
                text(
                    "INSERT INTO submissions (organisation, request_id, request_hash, contactpoint_id,"
                    " outcome, created_at) VALUES ('E1', 'r', '0', '100000000001', 'CREATED', :t)"
                ),
                {"t": "2026-12-01 00:00:00+00"},
            )
        migrate.upgrade("records", MIGRATIONS, database_url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT source_system, request_id FROM submissions")).all() == [
                ("", "r")
            ]
            for system in ("social-care", "education"):
                conn.execute(
                    text(
                        "INSERT INTO submissions (organisation, source_system, request_id, request_hash,"
                        " contactpoint_id, outcome, created_at)"
                        " VALUES ('E1', :s, 'r', '0', '100000000001', 'CREATED', :t)"
                    ),
                    {"s": system, "t": "2026-12-02 00:00:00+00"},
                )
            assert conn.execute(text("SELECT count(*) FROM submissions")).scalar() == 3
        migrate.downgrade("records", MIGRATIONS, database_url, "0005")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT organisation, request_id FROM submissions")).all() == [
                ("E1", "r")
            ]
        migrate.upgrade("records", MIGRATIONS, database_url)
    finally:
        engine.dispose()
