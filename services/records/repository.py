"""The only place records' SQL lives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.records.model import ConcurrentChange
from services.records.tables import ACTIVE, children, match_keys, source_records, submissions


@contextmanager
def _unique() -> Iterator[None]:
    # Two transactions raced to create the same row; the caller retries the whole transaction.
    try:
        yield
    except IntegrityError as exc:
        raise ConcurrentChange("a concurrent transaction wrote the same key") from exc


# --- idempotency --------------------------------------------------------------------------------


def submission(conn: Connection, *, organisation: str, request_id: str) -> RowMapping | None:
    """The stored first answer to a request, if any."""
    query = select(submissions).where(
        submissions.c.organisation == organisation, submissions.c.request_id == request_id
    )
    return conn.execute(query).mappings().first()


def insert_submission(conn: Connection, **values: Any) -> None:
    """Store the first answer to a request."""
    with _unique():
        conn.execute(insert(submissions).values(**values))


# --- children -----------------------------------------------------------------------------------


def child(conn: Connection, contactpoint_id: str) -> RowMapping | None:
    """One child row."""
    query = select(children).where(children.c.contactpoint_id == contactpoint_id)
    return conn.execute(query).mappings().first()


def child_exists(conn: Connection, contactpoint_id: str) -> bool:
    """Whether a ContactPoint ID was ever issued (child rows are never deleted)."""
    return bool(conn.execute(select(exists().where(children.c.contactpoint_id == contactpoint_id))).scalar())


def insert_child(conn: Connection, **values: Any) -> None:
    """Store a new child."""
    with _unique():
        conn.execute(insert(children).values(**values))


def touch_child(conn: Connection, contactpoint_id: str, *, now: dt.datetime) -> None:
    """Record that a child's record changed."""
    conn.execute(update(children).where(children.c.contactpoint_id == contactpoint_id).values(updated_at=now))


# --- source records -----------------------------------------------------------------------------


def source_for_update(
    conn: Connection, *, organisation: str, source_system: str, source_record_id: str
) -> RowMapping | None:
    """One organisation's source record, row-locked until the transaction ends (on PostgreSQL)."""
    query = (
        select(source_records)
        .where(
            source_records.c.organisation == organisation,
            source_records.c.source_system == source_system,
            source_records.c.source_record_id == source_record_id,
        )
        .with_for_update()
    )
    return conn.execute(query).mappings().first()


def held_by_another_organisation(
    conn: Connection, *, organisation: str, source_system: str, source_record_id: str
) -> bool:
    """Whether some other organisation holds a source record with these ids."""
    query = select(
        exists().where(
            source_records.c.source_system == source_system,
            source_records.c.source_record_id == source_record_id,
            source_records.c.organisation != organisation,
        )
    )
    return bool(conn.execute(query).scalar())


def insert_source(conn: Connection, **values: Any) -> None:
    """Store a new source record."""
    with _unique():
        conn.execute(insert(source_records).values(**values))


def update_source(conn: Connection, source_id: str, **values: Any) -> None:
    """Change a source record."""
    conn.execute(update(source_records).where(source_records.c.id == source_id).values(**values))


def active_sources(conn: Connection, contactpoint_id: str) -> list[RowMapping]:
    """A child's source records that have not been withdrawn (in no particular order)."""
    query = select(source_records).where(
        source_records.c.contactpoint_id == contactpoint_id, source_records.c.withdrawn.is_(False)
    )
    return list(conn.execute(query).mappings())


# --- match keys ---------------------------------------------------------------------------------


def replace_match_keys(conn: Connection, source_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Replace one source record's match keys."""
    delete_match_keys(conn, source_id)
    if rows:
        conn.execute(insert(match_keys), list(rows))


def delete_match_keys(conn: Connection, source_id: str) -> None:
    """Drop one source record's match keys (it no longer takes part in searches)."""
    conn.execute(delete(match_keys).where(match_keys.c.source_id == source_id))


def match_candidates(
    conn: Connection,
    *,
    date_of_birth: dt.date,
    family_key: str | None,
    postcode_key: str | None,
    exclude_shielded: bool,
) -> list[RowMapping]:
    """Match keys of active children born on `date_of_birth`, narrowed by an exact family name
    key and postcode key when given."""
    query = (
        select(
            match_keys.c.contactpoint_id,
            match_keys.c.family_key,
            match_keys.c.given_keys,
            match_keys.c.postcode_key,
            match_keys.c.gender,
        )
        .join(children, children.c.contactpoint_id == match_keys.c.contactpoint_id)
        .where(match_keys.c.date_of_birth == date_of_birth, children.c.status == ACTIVE)
    )
    if family_key is not None:
        query = query.where(match_keys.c.family_key == family_key)
    if postcode_key is not None:
        query = query.where(match_keys.c.postcode_key == postcode_key)
    if exclude_shielded:
        query = query.where(children.c.shielded.is_(False))
    return list(conn.execute(query).mappings())
