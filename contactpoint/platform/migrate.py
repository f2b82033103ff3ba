"""Alembic, one migration history per service (each service owns its own database).

Each service keeps `migrations/` beside its code; its `env.py` calls `run_migrations` with its
metadata. The version table is named for the service, so services may share a PostgreSQL
database in development without stepping on each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text

from contactpoint.platform.db import is_sqlite, make_engine

# Arbitrary but fixed: replicas of one service starting together migrate one at a time.
_ADVISORY_LOCK_BASE = 0x43504D00


def alembic_config(service: str, migrations_dir: Path, database_url: str) -> Config:
    """An Alembic config for one service, built in code (no alembic.ini to keep in step)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Bring the service's database to the latest revision (or to `revision`)."""
    _migrate(service, migrations_dir, database_url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(service: str, migrations_dir: Path, database_url: str, revision: str) -> None:
    """Take the service's database back to `revision` (a rollback; tests of a migration)."""
    _migrate(service, migrations_dir, database_url, lambda cfg: command.downgrade(cfg, revision))


def _migrate(service: str, migrations_dir: Path, database_url: str, run: Callable[[Config], None]) -> None:
    cfg = alembic_config(service, migrations_dir, database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not is_sqlite(database_url):
                lock = _ADVISORY_LOCK_BASE + sum(service.encode())
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock})
            cfg.attributes["connection"] = conn
            run(cfg)
            conn.commit()
            if not is_sqlite(database_url):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
                conn.commit()
    finally:
        engine.dispose()


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's `env.py` (online mode only: we always have a connection)."""
    cfg = context.config
    service = cfg.attributes["service"]
    connection = cfg.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=f"alembic_version_{service}",
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
