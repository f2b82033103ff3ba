"""Statements on a request's hot path, awaited on the event loop without a worker thread.

`Database.read`/`write` run a transaction in a worker thread through SQLAlchemy: right for
administrative work, but on a path that runs on every request the thread hop, SQLAlchemy and the
pool's ping cost several times the statement (bench/gateway_limits.py: about 0.4 ms of CPU a
call against 0.14 ms, and worker threads contend with the event loop for the GIL). `Statements`:

- `one(statement, params)`: one statement that stands on its own, its own transaction;
- `all(statement, params)`: a read that stands on its own, all its rows;
- `transaction()`: several, in one transaction (`Transaction.one` / `.execute`).

On PostgreSQL these run straight from the event loop over a small pool of psycopg
`AsyncConnection`s (autocommit, so a lone statement is one round trip, and a transaction sends
its own BEGIN and COMMIT). On SQLite (the embedded default, where a statement costs no round
trip) they run in a thread of the `Statements`' own, on a connection of its own used straight
through sqlite3 (`sqlite_writer`), one write transaction at a time (BEGIN IMMEDIATE, as every
writer there). SQLite has one writer anyway; and had each transaction waited for the write lock
in a worker thread of its own, the one holding the lock could find no thread free for its next
statement (the SQLite bench stalled so). One thread also means a connection is only ever used by
it, even when a request is cancelled half-way.

SQL is written once with SQLAlchemy's `:name` parameters (`text()`) and compiled for psycopg
once. Failures map as the `Database`'s do: a lost race is `TransactionConflict`, the database
unreachable `Unavailable`; a connection that failed is closed, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import TextClause, make_url
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql.selectable import TextualSelect

from contactpoint.platform.db import RETRYABLE_SQLSTATES, Database, TransactionConflict
from contactpoint.platform.deadlines import DeadlinePassed, still_in_time
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.sqlite_writer import SQLiteWriter, sqlite_errors

CONNECT_TIMEOUT_SECONDS = 5
T = TypeVar("T")


class Transaction(Protocol):
    """Statements inside one transaction."""

    async def one(self, statement: TextClause, params: Mapping[str, object]) -> Any:
        """Run `statement` and return its single row (columns read as attributes)."""

    async def execute(self, statement: TextClause, params: Mapping[str, object]) -> None:
        """Run `statement`, ignoring any rows."""


@contextlib.contextmanager
def _psycopg_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        if exc.sqlstate in RETRYABLE_SQLSTATES:
            raise TransactionConflict("the transaction lost a race; retry it") from exc
        raise Unavailable("the database is unavailable") from exc


class _PsycopgTransaction:
    def __init__(self, conn: psycopg.AsyncConnection[Any], compile_: Callable[[TextClause], str]) -> None:
        self._conn, self._compile = conn, compile_

    async def one(self, statement: TextClause, params: Mapping[str, object]) -> Any:
        cursor = self._conn.cursor(row_factory=namedtuple_row)
        await cursor.execute(self._compile(statement), params)
        row = await cursor.fetchone()
        if row is None:
            raise RuntimeError("the statement returned no row")
        return row

    async def execute(self, statement: TextClause, params: Mapping[str, object]) -> None:
        await self._conn.execute(self._compile(statement), params)


class Executes(Protocol):
    """Where `Statements.write`'s work runs its statements: the writer's own connection on SQLite,
    an SQLAlchemy `Connection` on PostgreSQL. Each result has `one()`, `rowcount` and `close()`."""

    def execute(self, statement: TextClause, params: Mapping[str, object], /) -> Any:
        """Run `statement` with `params`."""


class _ThreadedTransaction:
    """SQLite: statements in the writer's open transaction, each a hop to its thread."""

    def __init__(self, writer: SQLiteWriter) -> None:
        self._writer = writer

    def _run(self, statement: TextClause, params: Mapping[str, object], *, row: bool) -> Any:
        with sqlite_errors():
            result = self._writer.steps().execute(statement, params)
            if row:
                return result.one()
            # Closed at once: rows left unread (RETURNING) would keep the transaction from
            # committing.
            result.close()
            return None

    async def one(self, statement: TextClause, params: Mapping[str, object]) -> Any:
        return await self._writer.hop(lambda: self._run(statement, params, row=True))

    async def execute(self, statement: TextClause, params: Mapping[str, object]) -> None:
        await self._writer.hop(lambda: self._run(statement, params, row=False))


def _server_spoke(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server has sent anything to an idle connection. Nothing is expected (autocommit,
    no LISTEN): a server restarted, or its backend ended, leaves its goodbye or the closed socket
    there, and a statement sent on it fails. One poll, no round trip (found by probing: after a
    PostgreSQL restart each pooled connection failed the first request to use it, UNAVAILABLE
    though the database was back, minutes later on a quiet service)."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


async def _by(conn: psycopg.AsyncConnection[Any], running: asyncio.Future[T], commit_by: float) -> T:
    """`running`'s outcome, the statement cancelled on the server if it has not ended by
    `commit_by`: then its row if it committed all the same (the cancel came too late), else
    QueryCanceled (nothing stored)."""
    done, _ = await asyncio.wait({running}, timeout=max(commit_by - time.monotonic(), 0.0))
    if done:
        return running.result()
    try:
        await conn.cancel_safe()
        return await running
    finally:
        # Never used again: a cancel that arrives late must not meet another statement.
        await conn.close()


def _libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (without the `+psycopg` driver)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Statements:
    """Hot-path statements on `db`, pooled on PostgreSQL (at most `pool_size` connections, opened
    as needed). Belongs to one event loop; `close` it when the service stops."""

    def __init__(self, db: Database, *, pool_size: int = 10, wait_for_flush: bool = True) -> None:
        self.db = db
        # PostgreSQL: with `wait_for_flush` False a commit returns before its WAL reaches disk
        # (synchronous_commit = off): a crash of the database server may lose the last few hundred
        # milliseconds of commits, never corrupt or half-apply one. For bookkeeping that may lose
        # so much (the gateway's allowances), never for what was acknowledged as stored.
        self._options = "" if wait_for_flush else "-c synchronous_commit=off"
        self._native = not db.url.startswith("sqlite")
        self._url = _libpq_url(db.url) if self._native else ""
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(pool_size)
        self._compiled: dict[int, tuple[str, TextClause | TextualSelect]] = {}
        self._dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
        # SQLite: this process's writes through `Statements`, one at a time (see the module's doc).
        self._sqlite = None if self._native else SQLiteWriter(db.writer, db.turns)

    @property
    def dialect(self) -> str:
        """The backend: "postgresql" or "sqlite"."""
        return "postgresql" if self._native else "sqlite"

    def _pyformat(self, statement: TextClause | TextualSelect) -> str:
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
            if conn is not None and not conn.closed and _server_spoke(conn):
                with contextlib.suppress(Exception):
                    await conn.close()
            if conn is None or conn.closed:
                with _psycopg_errors():
                    conn = await psycopg.AsyncConnection.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT_SECONDS,
                        options=self._options,
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

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if self._sqlite is not None:
            sqlite = self._sqlite
            async with sqlite.turn:
                try:
                    # Inside: a caller cancelled while the thread begins still rolls it back (and
                    # gives the database's write turn back) before anyone else's transaction.
                    await sqlite.hop(sqlite.begin)
                    yield _ThreadedTransaction(sqlite)
                except BaseException:
                    await sqlite.hop(sqlite.rollback)
                    raise
                await sqlite.hop(sqlite.commit)
            return
        with _psycopg_errors():
            async with self._connection() as pg, pg.transaction():
                yield _PsycopgTransaction(pg, self._pyformat)

    async def write(self, fn: Callable[[Executes], T]) -> T:
        """Run `fn` in one write transaction in one hop to a thread: on SQLite the writer's (in turn
        with this object's other writes), on PostgreSQL a worker thread (`Database.write`). For
        work that is cheaper as one hop than as several awaited statements: several statements on
        SQLite."""
        if self._sqlite is not None:
            return await self._sqlite.transaction(fn)
        return await self.db.write(fn)

    async def one(
        self, statement: TextClause, params: Mapping[str, object], *, commit_by: float | None = None
    ) -> Any:
        """Run `statement`, one that stands alone, as its own transaction; its single row. With
        `commit_by` (a `time.monotonic()`), it commits by then or not at all (`DeadlinePassed`)."""
        if not self._native:

            def run(c: Executes) -> Any:
                row = c.execute(statement, params).one()
                still_in_time(commit_by)
                return row

            return await self.write(run)
        with _psycopg_errors():
            async with self._connection() as pg:
                asked = _PsycopgTransaction(pg, self._pyformat).one(statement, params)
                if commit_by is None:
                    return await asked  # the hot path: no task of its own
                try:
                    return await _by(pg, asyncio.ensure_future(asked), commit_by)
                except psycopg.errors.QueryCanceled as exc:
                    raise DeadlinePassed from exc

    async def all(self, statement: TextClause | TextualSelect, params: Mapping[str, object]) -> list[Any]:
        """Run `statement`, a read that stands alone, as its own transaction; all its rows (named
        tuples). On SQLite a read in a worker thread (`Database.read`): readers there need no turn."""
        if not self._native:
            return await self.db.read(lambda c: list(c.execute(statement, dict(params)).all()))
        with _psycopg_errors():
            async with self._connection() as pg:
                cursor = pg.cursor(row_factory=namedtuple_row)
                await cursor.execute(self._pyformat(statement), params)
                return await cursor.fetchall()

    async def close(self) -> None:
        """Close every pooled connection (and, on SQLite, end the writer's thread)."""
        if self._sqlite is not None:
            self._sqlite.close()
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
