"""Database engines and the one-transaction-per-RPC unit of work, on SQLite and PostgreSQL alike.

gRPC handlers run on the asyncio loop; database work runs in worker threads through
`Database.read` / `Database.write`, each one transaction: commit on success, roll back on any
error, always close. A read transaction sees one snapshot of the database throughout (on
PostgreSQL REPEATABLE READ; SQLite's reads see one anyway), so that what it reads in several
statements is never half before and half after another transaction's commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from contactpoint.platform.errors import Unavailable
from contactpoint.platform.write_turns import WriteTurns, current_kind

T = TypeVar("T")
# PostgreSQL's serialization failure and deadlock: the transaction lost a race and may be retried.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# How long an SQLite writer waits for the write lock (its busy timeout, and its turn's wait).
SQLITE_BUSY_SECONDS = 30


class TransactionConflict(Exception):
    """The transaction lost a race with a concurrent one (a unique key, a deadlock): nothing was
    stored, and running the whole transaction again resolves it."""


def failure_line(exc: BaseException) -> str:
    """A database failure in one line for an operator: its kind and the driver's first line, which
    says which server and what went wrong (never a password; and only for failures to reach or use
    the database, which quote no SQL or data), at most 200 characters."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}"


def is_sqlite(url: str) -> bool:
    """Whether `url` names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_private_file(path: Path) -> None:
    """Create the SQLite file `path` (and its folder) readable by its owner only (0600, folder
    0700) before SQLite opens it; SQLite gives its -wal and -shm files the database's mode. An
    existing file is left as it is."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process created it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# A database error's message never holds the values its statement was given (sealed records, an
# audit event's text, a username): error messages reach traces and operators (found by probing).
HIDE_PARAMETERS = True


def make_engine(url: str, *, immediate: bool = False) -> Engine:
    """An engine for `url`. On SQLite, WAL and foreign keys are on, and with `immediate` every
    transaction takes the write lock up front (BEGIN IMMEDIATE) so that concurrent writers wait
    instead of failing half-way."""
    if not is_sqlite(url):
        return create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=HIDE_PARAMETERS
        )
    parsed = make_url(url)
    database = parsed.database
    if database and database != ":memory:" and "uri" not in parsed.query:
        create_private_file(Path(database))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
        hide_parameters=HIDE_PARAMETERS,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN is ours (SQLAlchemy's recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # What is deleted or overwritten is zeroed in the file, not left in its free space (most
        # builds do this already; not every one).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# Threads for `Database.read`, and for `Database.write`, each apart from the event loop's shared
# ones (where a records service's feeds are stored).
READ_THREADS = 8
WRITE_THREADS = 8

# How many times in all a transaction that lost a race is run (`retrying`).
CONFLICT_ATTEMPTS = 4


async def retrying(
    run: Callable[[], Awaitable[T]],
    *,
    busy: str,
    attempts: int = CONFLICT_ATTEMPTS,
    before_retry: Callable[[], None] | None = None,
) -> T:
    """Run `run` (one transaction) again while it loses a race (TransactionConflict: a deadlock
    or a serialisation failure, when nothing it did was kept), after a short random pause; if it
    still loses after `attempts` runs, Unavailable(`busy`): the caller may retry, never INTERNAL.
    `before_retry` undoes what a lost run left behind in memory."""
    for attempt in range(1, attempts + 1):
        try:
            return await run()
        except TransactionConflict as exc:
            if attempt == attempts:
                raise Unavailable(busy) from exc
            if before_retry is not None:
                before_retry()
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def retrying_sync(run: Callable[[], T], *, busy: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """`retrying` for a transaction run in the calling thread (a command, a batch job)."""
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except TransactionConflict as exc:
            if attempt == attempts:
                raise Unavailable(busy) from exc
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


@contextmanager
def database_errors() -> Iterator[None]:
    """The database's failures as the platform's: a lost race (TransactionConflict) or a
    dependency down (Unavailable)."""
    try:
        yield
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
            raise TransactionConflict("the transaction lost a race; retry it") from exc
        # The database is unreachable or locked: a dependency is down, nothing was stored.
        raise Unavailable("the database is unavailable") from exc
    except psycopg.OperationalError as exc:
        # Raised by the driver itself, not through SQLAlchemy: a binary COPY on the connection
        # (found by probing: a deadlock in one, racing a merge, was answered INTERNAL).
        if exc.sqlstate in RETRYABLE_SQLSTATES:
            raise TransactionConflict("the transaction lost a race; retry it") from exc
        raise Unavailable("the database is unavailable") from exc


class Database:
    """One service's database: a read engine and a write engine (the same pool on PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.writer = make_engine(url, immediate=True)
        # On PostgreSQL the same pool, each read transaction at REPEATABLE READ: one snapshot for
        # all its statements (found by probing: a FindChild read a child's shield before a merge
        # committed and its records after, and showed a shielded child's address unshielded).
        # A transaction that only reads never fails for it.
        self.reader = (
            make_engine(url)
            if is_sqlite(url)
            else self.writer.execution_options(isolation_level="REPEATABLE READ")
        )
        self._probe_engine: Engine | None = None  # `problem`'s, made when first asked
        self._reads: ThreadPoolExecutor | None = None  # `read`'s threads, made when first asked
        self._writes: ThreadPoolExecutor | None = None  # `write`'s
        # SQLite's writers take turns at its one write lock (`write_turns`).
        self.turns = WriteTurns(SQLITE_BUSY_SECONDS) if is_sqlite(url) else None

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One transaction: commit on success, roll back on any error."""
        if write and self.turns is not None:
            with self.turns.turn(kind=current_kind()), database_errors(), self.writer.begin() as conn:
                yield conn
            return
        engine = self.writer if write else self.reader
        with database_errors(), engine.begin() as conn:
            yield conn

    def run_sync(self, fn: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run `fn` in one transaction in the calling thread."""
        with self.transaction(write=write) as conn:
            return fn(conn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in one write transaction in a worker thread of the writes' own: a person's
        write never waits for a thread behind a flood of feeds' batches, which run in the event
        loop's shared threads (found by probing)."""
        if self._writes is None:
            self._writes = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="db-write")
        return await self._in(self._writes, fn, write=True)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in one read transaction in a worker thread of the reads' own: reads never wait
        for a thread behind writes (found by probing: one council's twenty streams held every
        shared worker thread, and practitioners' reads failed UNAVAILABLE behind them)."""
        if self._reads is None:
            self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="db-read")
        return await self._in(self._reads, fn, write=False)

    async def _in(self, threads: ThreadPoolExecutor, fn: Callable[[Connection], T], *, write: bool) -> T:
        context = contextvars.copy_context()  # as `asyncio.to_thread`: the request's log context
        call = functools.partial(context.run, self.run_sync, fn, write=write)
        return await asyncio.get_running_loop().run_in_executor(threads, call)

    def forget_freed(self, *, vacuum: bool = False) -> None:
        """On SQLite, rid the files of what was deleted or overwritten: the write-ahead log, which
        keeps the old versions of the pages until it is reused, is checkpointed and truncated
        (with `vacuum`, the database is rebuilt first). Nothing to do on PostgreSQL, whose old row
        versions go with VACUUM (`docs/operations.md`)."""
        if not is_sqlite(self.url):
            return
        raw = self.writer.raw_connection()  # outside any transaction, as VACUUM must be
        try:
            if vacuum:
                raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def problem(self) -> str | None:
        """Why the database cannot be used now, or None when it answers (a health check's, run in
        a worker thread). An SQLite file must still be where the service opened it: one deleted
        or moved under a running service would take its writes to a file no one will find."""
        parsed = make_url(self.url)
        database = parsed.database
        on_disk = database and database != ":memory:" and "uri" not in parsed.query
        if is_sqlite(self.url) and on_disk and not Path(str(database)).is_file():
            return "the SQLite database file is no longer there"
        try:
            with self._probe().connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            return failure_line(exc)
        return None

    def _probe(self) -> Engine:
        # A connection of its own each time, outside the service's pool: a busy service whose pool
        # is all in use still answers (found by re-probing: 16 streams at once took every pooled
        # connection, and a database that answered was reported down).
        if self._probe_engine is None:
            args = {"timeout": 3} if is_sqlite(self.url) else {"connect_timeout": 3}
            self._probe_engine = create_engine(
                self.url, poolclass=NullPool, connect_args=args, hide_parameters=HIDE_PARAMETERS
            )
        return self._probe_engine

    def dispose(self) -> None:
        """Close every pooled connection."""
        for threads in (self._reads, self._writes):
            if threads is not None:
                threads.shutdown(wait=False)
        self._reads = self._writes = None  # a read or write after this makes its threads again
        if self._probe_engine is not None:
            self._probe_engine.dispose()
        self.writer.dispose()
        if self.reader.pool is not self.writer.pool:
            self.reader.dispose()


def dialect_of(conn: Connection) -> str:
    """The backend a connection talks to: "sqlite" or "postgresql"."""
    return str(conn.dialect.name)
