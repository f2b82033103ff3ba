"""`Statements`: one statement from the event loop, on SQLite and PostgreSQL alike; failures map
as the Database's do, and a connection that failed is never used again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.statements import Executes, Statements

CREATE = text("CREATE TABLE counters (name VARCHAR(10) PRIMARY KEY, n INTEGER NOT NULL)")
BUMP = text(
    "INSERT INTO counters (name, n) VALUES (:name, 1) "
    "ON CONFLICT (name) DO UPDATE SET n = counters.n + 1 RETURNING name, n"
)
BROKEN = text("SELECT n FROM no_such_table WHERE name = :name")


def test_one_statement_commits_and_reads_back(database_url: str) -> None:
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))

    async def run() -> list[int]:
        store = Statements(db, pool_size=3)
        try:
            rows = await asyncio.gather(*(store.one(BUMP, {"name": "a"}) for _ in range(12)))
            return sorted(row.n for row in rows)
        finally:
            await store.close()

    try:
        # Twelve concurrent statements over a pool of three: each committed on its own, none lost.
        assert asyncio.run(run()) == list(range(1, 13))
        assert db.run_sync(lambda c: c.execute(text("SELECT n FROM counters")).scalar()) == 12
    finally:
        db.dispose()


def test_a_failed_statement_leaves_the_pool_healthy(database_url: str) -> None:
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))

    async def run() -> int:
        store = Statements(db, pool_size=1)
        try:
            with pytest.raises(Exception):  # noqa: B017 (SQLite says Unavailable, PostgreSQL UndefinedTable)
                await store.one(BROKEN, {"name": "a"})
            # The only slot's connection failed mid-statement; the next statement still runs.
            return int((await store.one(BUMP, {"name": "a"})).n)
        finally:
            await store.close()

    try:
        assert asyncio.run(run()) == 1
    finally:
        db.dispose()


def test_an_unreachable_postgresql_is_unavailable() -> None:
    # Nothing listens on port 9 (discard) here: the connection is refused at once.
    db = Database("postgresql+psycopg://nobody@127.0.0.1:9/none")

    async def run() -> None:
        store = Statements(db)
        try:
            await store.one(BUMP, {"name": "a"})
        finally:
            await store.close()

    try:
        with pytest.raises(Unavailable):
            asyncio.run(run())
    finally:
        db.dispose()


def test_a_transaction_commits_together_or_not_at_all(database_url: str) -> None:
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))

    async def run() -> None:
        store = Statements(db)
        try:
            async with store.transaction() as tx:
                await tx.one(BUMP, {"name": "a"})
                await tx.execute(BUMP, {"name": "b"})
            with pytest.raises(ZeroDivisionError):
                async with store.transaction() as tx:
                    await tx.one(BUMP, {"name": "a"})
                    raise ZeroDivisionError
            # The pool still works after a transaction that raised.
            assert (await store.one(BUMP, {"name": "b"})).n == 2
        finally:
            await store.close()

    try:
        asyncio.run(run())
        rows = db.run_sync(lambda c: c.execute(text("SELECT name, n FROM counters ORDER BY name")).all())
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 2)]
    finally:
        db.dispose()


def test_many_concurrent_transactions_do_not_starve_the_worker_threads(database_url: str) -> None:
    # More transactions at once than the default executor has threads: on SQLite, had each waited
    # for the write lock in a thread of its own, the one holding the lock would find no thread for
    # its next statement.
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))

    async def bump_twice(store: Statements) -> None:
        async with store.transaction() as tx:
            await tx.one(BUMP, {"name": "a"})
            await tx.execute(BUMP, {"name": "a"})

    async def run() -> None:
        store = Statements(db)
        try:
            await asyncio.wait_for(asyncio.gather(*(bump_twice(store) for _ in range(24))), timeout=20)
        finally:
            await store.close()

    try:
        asyncio.run(run())
        assert db.run_sync(lambda c: c.execute(text("SELECT n FROM counters")).scalar()) == 48
    finally:
        db.dispose()


def test_write_runs_several_statements_in_one_transaction(database_url: str) -> None:
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))
    update = text("UPDATE counters SET n = n + 10 WHERE name = :name")

    def bump_and_update(conn: Executes) -> tuple[int, int]:
        bumped = conn.execute(BUMP, {"name": "a"}).one()
        return int(bumped.n), int(conn.execute(update, {"name": "a"}).rowcount)

    def bump_then_fail(conn: Executes) -> None:
        conn.execute(BUMP, {"name": "a"}).close()
        raise ZeroDivisionError

    async def run() -> tuple[int, int]:
        store = Statements(db)
        try:
            first = await store.write(bump_and_update)
            with pytest.raises(ZeroDivisionError):
                await store.write(bump_then_fail)
            return first
        finally:
            await store.close()

    try:
        assert asyncio.run(run()) == (1, 1)
        # The failed write kept nothing.
        assert db.run_sync(lambda c: c.execute(text("SELECT n FROM counters")).scalar()) == 11
    finally:
        db.dispose()


def test_a_transaction_cancelled_half_way_keeps_nothing_and_blocks_nothing(database_url: str) -> None:
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))

    async def run() -> int:
        store = Statements(db)
        started = asyncio.Event()

        async def abandoned() -> None:
            async with store.transaction() as tx:
                await tx.one(BUMP, {"name": "a"})
                started.set()
                await asyncio.sleep(30)

        try:
            task = asyncio.ensure_future(abandoned())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The next statement is not left waiting for the abandoned transaction.
            row = await asyncio.wait_for(store.one(BUMP, {"name": "a"}), timeout=10)
            return int(row.n)
        finally:
            await store.close()

    try:
        assert asyncio.run(run()) == 1
    finally:
        db.dispose()


def test_pooled_connections_the_server_ended_are_not_used(database_url: str) -> None:
    # A PostgreSQL restarted (or its backends ended) leaves every pooled connection dead; the next
    # statements must open new ones, not fail UNAVAILABLE with the database back (found by
    # probing: after a restart each pooled connection failed the first request to use it).
    db = Database(database_url)
    db.run_sync(lambda c: c.execute(CREATE))
    if db.url.startswith("sqlite"):
        db.dispose()
        return  # no server, no pooled connection of the Statements' own

    async def run() -> list[int]:
        store = Statements(db, pool_size=3)
        try:
            await asyncio.gather(*(store.one(BUMP, {"name": "a"}) for _ in range(3)))
            ended = db.run_sync(
                lambda c: c.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            )
            assert ended is not None and ended >= 3
            await asyncio.sleep(0.3)  # the backends' goodbyes reach the idle connections
            rows = await asyncio.gather(*(store.one(BUMP, {"name": "a"}) for _ in range(3)))
            return sorted(row.n for row in rows)
        finally:
            await store.close()

    try:
        assert asyncio.run(run()) == [4, 5, 6]
    finally:
        db.dispose()
