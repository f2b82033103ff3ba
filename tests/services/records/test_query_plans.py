"""Statements whose cost must follow what they find, not the registry's size, look rows up by an
index on the whole of what they are given.

A lookup that uses only part of a key still answers correctly, so no behavioural test sees it; it
reads every row sharing the part given. The idempotency lookup once left the source system out,
and at 1,000,000 children read all of an organisation's answers for every batch: a stream ran at
a third of its speed (`docs/benchmarks.md`). These tests read each statement's plan on both
engines, over enough rows that PostgreSQL plans as it would for a registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Select, event, insert

from contactpoint.platform.db import Database, dialect_of
from services.records.repository import children as children_repo
from services.records.repository import lifecycle as lifecycle_repo
from services.records.repository import rekeying, sealed_rows, training_samples
from services.records.repository import review as review_repo
from services.records.repository import submissions as submission_repo
from services.records.tables import blocking_keys
from tests.services.records.conftest import make_record
from tests.services.records.test_ingestion import submit

NOW = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)


def _plan(conn: Connection, query: Select[Any]) -> str:
    # The plan as one text, the IN lists rendered as SQLite runs them.
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if dialect_of(conn) == "postgresql":
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
    else:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).all()
    return "\n".join(" ".join(str(part) for part in row) for row in rows)


def test_the_idempotency_lookup_uses_the_whole_primary_key(db: Database) -> None:
    # One organisation's answers from two systems, as a registry holds them (PostgreSQL plans by
    # its statistics: over a table it knows nothing of, any plan will do).
    now = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    with db.transaction() as conn:
        children_repo.insert_children(conn, [("CP0000000001", False, None)], now=now)
        submission_repo.insert_submissions(
            conn,
            [
                submission_repo.NewSubmission("council-a", system, f"req-{n}", "h", "CP0000000001", "LINKED")
                for system in ("case-system", "school-system")
                for n in range(3000)
            ],
            now=now,
        )
        if dialect_of(conn) == "postgresql":
            conn.exec_driver_sql("ANALYZE submissions")
    requests = {("case-system", "req-1"), ("case-system", "req-2"), ("school-system", "req-1")}
    with db.transaction() as conn:
        plan = _plan(conn, submission_repo.lookup(conn, organisation="council-a", requests=requests))
        postgresql = dialect_of(conn) == "postgresql"
    if postgresql:
        conditions = [line for line in plan.splitlines() if "Index Cond" in line]
        assert conditions, plan
        columns = ("organisation", "source_system", "request_id")
        assert all(column in conditions[0] for column in columns), plan
    else:
        assert "organisation=? AND source_system=? AND request_id=?" in plan, plan


@contextmanager
def _statements(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    # Every statement the block runs on `conn`, with its parameters, to be explained after.
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", record)


def _explained(conn: Connection, statement: str, parameters: Any) -> str:
    prefix = "EXPLAIN" if dialect_of(conn) == "postgresql" else "EXPLAIN QUERY PLAN"
    rows = conn.exec_driver_sql(f"{prefix} {statement}", parameters).all()
    return "\n".join(" ".join(str(part) for part in row) for row in rows)


def _registry(db: Database) -> None:
    # 3,000 active children due for archiving on the first of six months, and 300 merged into
    # ten survivors, as the lifecycle finds them; analysed, so PostgreSQL plans by them.
    now = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    with db.transaction() as conn:
        children_repo.insert_children(
            conn,
            [(f"CP{n:010d}", False, dt.date(2027, 1 + n % 6, 1)) for n in range(3000)],
            now=now,
        )
        for n in range(3000, 3300):
            children_repo.insert_children(conn, [(f"CP{n:010d}", False, None)], now=now)
            children_repo.retire(conn, f"CP{n:010d}", into=f"CP{n % 10:010d}", now=now)
        if dialect_of(conn) == "postgresql":
            conn.exec_driver_sql("ANALYZE children")


def test_merges_are_followed_through_the_merged_into_index(db: Database) -> None:
    _registry(db)
    with db.transaction() as conn, _statements(conn) as seen:
        family = children_repo.merged_family(conn, "CP0000000003")
        retired = lifecycle_repo.retired_into(conn, ["CP0000000003", "CP0000000004"])
    assert len(family) == 31 and len(retired) == 60
    with db.transaction() as conn:
        plans = [_explained(conn, statement, parameters) for statement, parameters in seen]
    assert len(plans) == 3  # two steps through the merges (the second finds none), one purge lookup
    for plan in plans:
        assert "ix_children_merged_into" in plan, plan


def test_archiving_walks_its_index_without_sorting(db: Database) -> None:
    _registry(db)
    with db.transaction() as conn, _statements(conn) as seen:
        first = lifecycle_repo.due_for_archiving(conn, today=dt.date(2027, 6, 1), limit=100)
        lifecycle_repo.due_for_archiving(conn, today=dt.date(2027, 6, 1), limit=100, after=first[-1])
    assert len(seen) == 2
    with db.transaction() as conn:
        for statement, parameters in seen:
            plan = _explained(conn, statement, parameters)
            assert "ix_children_status_archive_on_id" in plan, plan
            assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
        # A later batch starts where the one before ended, in the index: not a filter over
        # every child due before it.
        assert "Filter" not in plan, plan


def test_asking_at_start_up_whether_records_need_filing_again_reads_an_index(db: Database) -> None:
    with db.transaction() as conn, _statements(conn) as seen:
        assert rekeying.stale_count(conn) == 0
    with db.transaction() as conn:
        if dialect_of(conn) == "postgresql":
            # No records here to plan by: told not to scan the table, PostgreSQL shows whether an
            # index can answer (in a registry, where every row holds the current scheme, it does).
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        (statement, parameters), *_ = seen
        plan = _explained(conn, statement, parameters)
    assert "ix_source_records_key_scheme" in plan, plan


def test_training_reads_pairs_along_the_blocking_keys_index(db: Database) -> None:
    with db.transaction() as conn:
        rows = [{"key": n * 2**48, "source_id": f"r{n}{side}"} for n in range(-3000, 3000) for side in "ab"]
        conn.execute(insert(blocking_keys), rows)
        if dialect_of(conn) == "postgresql":
            conn.exec_driver_sql("ANALYZE blocking_keys")
    with db.transaction() as conn, _statements(conn) as seen:
        assert len(training_samples.blocked_pair_ids(conn, limit=50, seed=1)) == 50
    with db.transaction() as conn:
        (statement, parameters), *_ = seen
        plan = _explained(conn, statement, parameters)
    assert "blocking_keys_pkey" in plan or "sqlite_autoindex_blocking_keys" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def test_the_review_queue_is_walked_in_order_not_sorted(db: Database) -> None:
    _registry(db)
    tasks = [
        review_repo.NewTask(f"t{n:05d}", f"CP{n:010d}", f"CP{n + 1:010d}", 20.0, [], raised_at=NOW)
        for n in range(0, 2998, 2)
    ]
    with db.transaction() as conn:
        review_repo.insert_tasks(conn, tasks, now=NOW)
        review_repo.hold_task(conn, "t00000", manager="malik", until=NOW)
        if dialect_of(conn) == "postgresql":
            conn.exec_driver_sql("ANALYZE review_tasks")
    with db.transaction() as conn, _statements(conn) as seen:
        # Nobody's child is the organisation's here: both walks find nothing.
        assert review_repo.next_open_task(conn, organisation="council-a", manager="malik", now=NOW) is None
    # The manager's lock first on PostgreSQL (one manager's asks go one at a time), then two walks.
    seen = [(statement, parameters) for statement, parameters in seen if "pg_advisory" not in statement]
    assert len(seen) == 2
    with db.transaction() as conn:
        if dialect_of(conn) == "postgresql":
            # With no records here PostgreSQL would start from the organisation's (none) and sort
            # what it finds; told not to sort, it shows the walk a registry's queue takes.
            conn.exec_driver_sql("SET LOCAL enable_sort = off")
        plans = [_explained(conn, statement, parameters) for statement, parameters in seen]
    # The manager's own tasks first, then the free ones, each in queue order from an index.
    assert "ix_review_tasks_held_by" in plans[0], plans[0]
    assert "ix_review_tasks_status_created_id" in plans[1], plans[1]
    for plan in plans:
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def test_asking_at_start_up_which_keys_seal_the_data_steps_along_an_index(db: Database) -> None:
    # One step along each `sealed_with` index a key, each stopping at its first row: not a count
    # of every row (which read two whole indexes on every start: 133 ms warm at 1,000,000).
    submit(db, make_record("plans-1"))
    with db.transaction() as conn, _statements(conn) as seen:
        assert len(sealed_rows.key_ids_in_use(conn)) == 1
    indexed = [(st, p) for st, p in seen if "match_models" not in st]
    assert indexed
    with db.transaction() as conn:
        postgresql = dialect_of(conn) == "postgresql"
        if postgresql:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # plan as for a registry
        plans = [_explained(conn, statement, parameters) for statement, parameters in indexed]
    for plan in plans:
        assert "sealed_with" in plan, plan
        if postgresql:
            assert "Limit" in plan and "Index Only Scan using ix_" in plan, plan
        else:
            assert "SEARCH" in plan and "USING COVERING INDEX ix_" in plan, plan
    assert len(plans) == 4  # the key, then none after it, in each of the two tables
