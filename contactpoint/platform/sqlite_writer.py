"""SQLite's side of `Statements`: one thread of the process's own, with one connection of its own,
that runs every hot-path write one after another.

The connection is the engine's own DBAPI connection (`Engine.raw_connection`, so it has the
pragmas every connection of the `Database` gets: WAL, foreign keys, a busy timeout), used straight
through `sqlite3` rather than through SQLAlchemy's `Connection`: on the gateway's allowance, one
read's transaction cost 0.48 to 0.63 ms of CPU through SQLAlchemy and 0.22 ms straight
(docs/benchmarks.md, "Per-person limits"). Statements are SQLAlchemy `text()` clauses, whose
`:name` parameters sqlite3 takes as they are.

Only this thread ever uses the connection, and a hop abandoned half-way (its request cancelled)
still ends before the next one, the rollback that follows it included. Every transaction takes the
write lock up front (BEGIN IMMEDIATE), as every writer of the `Database` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, TextClause

from contactpoint.platform.errors import Unavailable
from contactpoint.platform.write_turns import Kind, WriteTurns

T = TypeVar("T")


@contextlib.contextmanager
def sqlite_errors() -> Iterator[None]:
    """sqlite3's failures as the platform's: the database locked or unreadable is a dependency
    down (Unavailable), as `Database` maps them."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise Unavailable("the database is unavailable") from exc


class Result:
    """What one statement returned: its rows (read as attributes) and how many it changed."""

    _types: dict[tuple[str, ...], Any] = {}

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    def one(self) -> Any:
        """The statement's single row."""
        rows = self._cursor.fetchall()
        if len(rows) != 1:
            raise RuntimeError(f"the statement returned {len(rows)} rows, not one")
        names = tuple(column[0] for column in self._cursor.description)
        row_type = self._types.get(names)
        if row_type is None:
            row_type = self._types[names] = namedtuple("Row", names, rename=True)
        return row_type(*rows[0])

    def close(self) -> None:
        """Done with its rows."""
        self._cursor.close()


class Steps:
    """Statements inside the writer's current transaction (in its thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, statement: TextClause, params: Mapping[str, object]) -> Result:
        """Run `statement` with `params`."""
        return Result(self._conn.execute(statement.text, dict(params)))


class SQLiteWriter:
    """The thread and its connection (see the module's doc). Belongs to one event loop."""

    def __init__(self, engine: Engine, turns: WriteTurns | None = None) -> None:
        self._engine = engine
        # The database's turns at its write lock (`write_turns`), shared with its other writers.
        self._turns = turns
        self._holding = False  # whether the thread holds a turn (between `begin` and its end)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._raw: Any = None  # the pool's proxy, opened in the thread on first use
        # Transactions (several hops each) one at a time.
        self.turn = asyncio.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._raw is None:
            self._raw = self._engine.raw_connection()
        conn: sqlite3.Connection = self._raw.driver_connection
        return conn

    def _in_transaction(self, fn: Callable[[Steps], T]) -> T:
        self.begin()
        try:
            with sqlite_errors():
                result = fn(self.steps())
        except BaseException:
            self.rollback()
            raise
        self.commit()
        return result

    async def transaction(self, fn: Callable[[Steps], T]) -> T:
        """`fn` in one write transaction, in one hop to the writer's thread, in turn with the
        writer's other transactions."""
        async with self.turn:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_transaction, fn)

    def begin(self) -> None:
        """In the thread: open a transaction that later hops continue (see `Statements`), once
        the database's other writers have had their turn (a person's write: never a feed's)."""
        self._end()  # one a cancelled caller left open ends here, rolled back
        if self._turns is not None:
            self._turns.take(kind=Kind.PERSON)
            self._holding = True
        try:
            with sqlite_errors():
                self._connection().execute("BEGIN IMMEDIATE")
        except BaseException:
            self._end()
            raise

    def commit(self) -> None:
        """In the thread: commit the open transaction."""
        try:
            with sqlite_errors():
                self._connection().commit()
        finally:
            self._end()

    def rollback(self) -> None:
        """In the thread: roll the open transaction back (nothing of it is kept)."""
        self._end()

    def _end(self) -> None:
        # Roll back what is still open (nothing after a commit) and give the turn back.
        if self._raw is not None:
            conn = self._connection()
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
        if self._holding and self._turns is not None:
            self._holding = False
            self._turns.give_back()

    async def hop(self, fn: Callable[[], T]) -> T:
        """`fn` in the writer's thread (a step of an open transaction)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def steps(self) -> Steps:
        """In the thread: statements on the open transaction."""
        return Steps(self._connection())

    def close(self) -> None:
        """Give the connection back and end the thread."""

        def release() -> None:
            self._end()
            if self._raw is not None:
                self._raw.close()
                self._raw = None

        with contextlib.suppress(RuntimeError):  # already shut down
            self._thread.submit(release).result()
        self._thread.shutdown(wait=True)
