"""Single statements on a request's hot path, run without a worker thread.

`Database.read`/`write` run a transaction in a worker thread through SQLAlchemy: right for work of
several statements, but on a path that runs on every request the thread hop and the round trips
for BEGIN and COMMIT cost more than the statement (bench/gateway_limits.py: about 0.4 ms of CPU a
call against 0.14 ms). `Statements.one` runs one statement that stands on its own:

- on PostgreSQL, straight from the event loop over a small pool of psycopg `AsyncConnection`s in
  autocommit (the statement is its own transaction: one round trip);
- on SQLite (the embedded default, where a transaction costs no round trip), in one write
  transaction through the `Database` as usual.

The SQL is written once, with SQLAlchemy's `:name` parameters, and compiled for psycopg once.
Failures map as the `Database`'s do: a lost race is `TransactionConflict`, anything else from the
database `Unavailable` (a broken connection is dropped, never returned to the pool).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import TextClause, make_url
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from contactpoint.platform.db import RETRYABLE_SQLSTATES, Database, TransactionConflict
from contactpoint.platform.errors import Unavailable

CONNECT_TIMEOUT_SECONDS = 5


def _libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (without the `+psycopg` driver)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Statements:
    """One statement at a time on `db`, pooled on PostgreSQL (at most `pool_size` connections,
    opened as needed). Belongs to one event loop; `close` it when the service stops."""

    def __init__(self, db: Database, *, pool_size: int = 10) -> None:
        self.db = db
        self._native = not db.url.startswith("sqlite")
        self._url = _libpq_url(db.url) if self._native else ""
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(pool_size)
        self._compiled: dict[int, tuple[str, TextClause]] = {}
        self._dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]

    def _pyformat(self, statement: TextClause) -> str:
        """The statement as psycopg takes it (`%(name)s`), compiled once per statement."""
        known = self._compiled.get(id(statement))
        if known is None or known[1] is not statement:
            known = (str(statement.compile(dialect=self._dialect)), statement)
            self._compiled[id(statement)] = known
        return known[0]

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            try:
                yield conn
            except BaseException:
                # Not knowing the connection's state after a failure (or a cancellation mid-way),
                # it is not used again.
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
            self._idle.append(conn)

    @property
    def dialect(self) -> str:
        """The backend: "postgresql" or "sqlite"."""
        return "postgresql" if self._native else "sqlite"

    async def one(self, statement: TextClause, params: Mapping[str, object]) -> Any:
        """Run `statement` (one that stands alone) and return its single row, whose columns read
        as attributes."""
        if not self._native:
            return await self.db.write(lambda c: c.execute(statement, dict(params)).one())
        sql = self._pyformat(statement)
        try:
            async with self._connection() as conn:
                cursor = conn.cursor(row_factory=namedtuple_row)
                await cursor.execute(sql, params)
                row = await cursor.fetchone()
        except psycopg.OperationalError as exc:
            if exc.sqlstate in RETRYABLE_SQLSTATES:
                raise TransactionConflict("the statement lost a race; retry it") from exc
            raise Unavailable("the database is unavailable") from exc
        if row is None:
            raise RuntimeError("the statement returned no row")
        return row

    async def close(self) -> None:
        """Close every pooled connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
