"""The batch statements whose cost must not grow with the registry look rows up by their whole key.

A lookup that constrains only part of a key still answers correctly, so no behavioural test sees
it; it scans every row sharing the part given. The idempotency lookup once left the source system
out, and at 1,000,000 children read all of an organisation's answers for every batch, about a
fifth of a stream's time (`docs/benchmarks.md`). These tests read each statement's plan."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Select

from contactpoint.platform.db import Database, dialect_of
from services.records.repository import children as children_repo
from services.records.repository import submissions as submission_repo


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
