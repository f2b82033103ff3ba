"""Idempotency: the first answer to each request, so that a retry gets it again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, select

from services.records.repository.rows import SubmissionRow
from services.records.repository.writes import insert_rows, one_of
from services.records.tables import submissions


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """The first answer to a request."""

    organisation: str
    source_system: str
    request_id: str
    request_hash: str
    contactpoint_id: str
    outcome: str


def lookup(conn: Connection, *, organisation: str, requests: Collection[tuple[str, str]]) -> Select[Any]:
    """The query `submissions_of` runs. Every column of the primary key (organisation, source
    system, request id) is constrained: with the source system left out, PostgreSQL read all of
    the organisation's answers for each batch (56 ms a batch at 1,000,000 children, where the
    rest of the batch took about 250: `docs/benchmarks.md`)."""
    return select(submissions).where(
        submissions.c.organisation == organisation,
        one_of(conn, submissions.c.source_system, {system for system, _ in requests}),
        one_of(conn, submissions.c.request_id, {rid for _, rid in requests}),
    )


def submissions_of(
    conn: Connection, *, organisation: str, requests: Collection[tuple[str, str]]
) -> dict[tuple[str, str], SubmissionRow]:
    """The organisation's stored first answers to any of `requests` (source system, request id),
    by those."""
    if not requests:
        return {}
    rows = (
        SubmissionRow(r.source_system, r.request_id, r.request_hash, r.contactpoint_id, r.outcome)
        for r in conn.execute(lookup(conn, organisation=organisation, requests=requests)).all()
    )
    return {key: row for row in rows if (key := (row.source_system, row.request_id)) in requests}


_COLUMNS = (
    "organisation",
    "source_system",
    "request_id",
    "request_hash",
    "contactpoint_id",
    "outcome",
    "created_at",
)


def insert_submissions(conn: Connection, rows: Sequence[NewSubmission], *, now: dt.datetime) -> None:
    """Store first answers."""
    insert_rows(
        conn,
        submissions,
        _COLUMNS,
        [
            (r.organisation, r.source_system, r.request_id, r.request_hash, r.contactpoint_id, r.outcome, now)
            for r in rows
        ],
    )
