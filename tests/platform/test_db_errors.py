"""A database error as the platform sees it. Its message, as it reaches a trace or an operator:
never the values the failed statement was given (found by probing: an SQL error's message, with
its statement, reached the trace collector; with parameters shown, a sealed record or an audit
event's text would have). What PostgreSQL itself says of a value (a unique key's DETAIL) is left
out of traces by `tracing.ExceptionTypesOnly` and of logs by `logging`. A lost race is a
TransactionConflict however it is raised; a read transaction sees one snapshot."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from contactpoint.platform.db import Database, TransactionConflict, database_errors, make_engine
from contactpoint.platform.errors import Unavailable


def test_a_failed_statement_names_none_of_its_values(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(DBAPIError) as failed, engine.begin() as conn:
            conn.execute(text("INSERT INTO no_such_table (v) VALUES (:v)"), {"v": "Quillanor"})
        assert "Quillanor" not in str(failed.value)
        assert "hidden due to hide_parameters" in str(failed.value)
    finally:
        engine.dispose()


def test_a_lost_race_raised_by_the_driver_itself_is_a_transaction_conflict() -> None:
    # A binary COPY runs on the driver's connection, so its errors are psycopg's own, not
    # SQLAlchemy's (found by probing: a deadlock in one, racing a merge, was answered INTERNAL).
    for lost in (psycopg.errors.DeadlockDetected(), psycopg.errors.SerializationFailure()):
        with pytest.raises(TransactionConflict), database_errors():
            raise lost
    with pytest.raises(Unavailable), database_errors():
        raise psycopg.errors.AdminShutdown()


def test_a_read_transaction_sees_one_snapshot(database_url: str) -> None:
    # What a read reads in several statements is never half before and half after another
    # transaction's commit (found by probing: a FindChild read a child's shield before a merge
    # committed and its records after). SQLite's reads see one snapshot anyway.
    db = Database(database_url)
    try:
        with db.transaction() as conn:
            conn.execute(text("CREATE TABLE snapshot_probe (v integer)"))
            conn.execute(text("INSERT INTO snapshot_probe VALUES (1)"))
        with db.transaction(write=False) as reader:
            first = reader.execute(text("SELECT v FROM snapshot_probe")).scalar_one()
            committed = threading.Thread(
                target=db.run_sync, args=(lambda c: c.execute(text("UPDATE snapshot_probe SET v = 2")),)
            )
            committed.start()
            committed.join(10)
            assert not committed.is_alive()
            assert reader.execute(text("SELECT v FROM snapshot_probe")).scalar_one() == first == 1
        assert db.run_sync(lambda c: c.execute(text("SELECT v FROM snapshot_probe")).scalar_one()) == 2
    finally:
        db.dispose()
