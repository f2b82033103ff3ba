"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, and real in-process
services on port 0.

PostgreSQL is 127.0.0.1:5432 by default (CONTACTPOINT_TEST_POSTGRES_URL overrides). Without a
server the PostgreSQL cases skip — except under CI=true, where a missing server fails the run.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from services.identity import credentials

POSTGRES_ADMIN_URL = os.environ.get(
    "CONTACTPOINT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_PG_PROBLEM = _postgres_reachable()

# Tests make their accounts straight in identity's database, on the event loop that also runs the
# in-process services: a fresh Argon2 hash (64 MiB, tens of milliseconds, far more under load) per
# account would stall those services' token-verification polls. Every test account has the same
# password, so its hash is made once per process (still a real Argon2id hash, checked for real).
credentials.hash_secret = functools.lru_cache(maxsize=64)(credentials.hash_secret)


class DatabaseFactory:
    """Creates empty databases of one backend for a test and drops them afterwards."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self._tmp = tmp_path
        self._created: list[str] = []

    def new(self, name: str = "db") -> str:
        """The SQLAlchemy URL of a new, empty database."""
        if self.backend == "sqlite":
            return f"sqlite:///{self._tmp / (name + '-' + uuid.uuid4().hex[:8] + '.db')}"
        db = f"cp_test_{name}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        self._created.append(db)
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{db}"

    def drop_all(self) -> None:
        """Drop every database this factory made."""
        if not self._created:
            return
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            for db in self._created:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Fresh databases on each backend (the test runs once per backend)."""
    if request.param == "postgresql" and _PG_PROBLEM is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL unreachable: {_PG_PROBLEM}")
    factory = DatabaseFactory(request.param, tmp_path)
    yield factory
    factory.drop_all()


@pytest.fixture
def database_url(databases: DatabaseFactory) -> str:
    """One fresh database URL, on each backend."""
    return databases.new()
