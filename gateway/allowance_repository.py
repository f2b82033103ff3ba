"""The only place the gateway's SQL lives: each person's rate and daily reads."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from contactpoint.platform.db import dialect_of
from gateway.tables import daily_reads, limit_trips, rates


def _insert_ignoring_duplicates(conn: Connection, table: object, **values: object) -> None:
    if dialect_of(conn) == "postgresql":
        conn.execute(pg_insert(table).values(**values).on_conflict_do_nothing())  # type: ignore[arg-type]
    else:
        conn.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())  # type: ignore[arg-type]


def lock_person(conn: Connection, subject: str) -> float:
    """Lock the person's allowance for this transaction (every replica's reads of one person go one
    at a time) and return their rate's theoretical arrival time (0 for someone new).

    On PostgreSQL the row is locked FOR UPDATE; on SQLite the transaction already holds the
    database's write lock (BEGIN IMMEDIATE)."""
    _insert_ignoring_duplicates(conn, rates, subject=subject, tat=0.0)
    return float(
        conn.execute(select(rates.c.tat).where(rates.c.subject == subject).with_for_update()).scalar_one()
    )


def set_tat(conn: Connection, subject: str, tat: float) -> None:
    """Store the person's new theoretical arrival time."""
    conn.execute(update(rates).where(rates.c.subject == subject).values(tat=tat))


def last_trip(conn: Connection, subject: str) -> float | None:
    """When the person last went over the daily limit (any day still kept), if they did."""
    return conn.execute(
        select(func.max(limit_trips.c.tripped_at)).where(limit_trips.c.subject == subject)
    ).scalar_one_or_none()


def add_trip(conn: Connection, subject: str, day: str, at: float) -> None:
    """Record that the person went over the limit at `at`."""
    _insert_ignoring_duplicates(conn, limit_trips, subject=subject, day=day, tripped_at=at)


def read_at(conn: Connection, subject: str, day: str, item: str) -> float | None:
    """When the person last counted `item` on `day`, if they did."""
    return conn.execute(
        select(daily_reads.c.read_at).where(
            daily_reads.c.subject == subject, daily_reads.c.day == day, daily_reads.c.item == item
        )
    ).scalar_one_or_none()


def count_since(conn: Connection, subject: str, day: str, since: float) -> int:
    """How many distinct items the person counted on `day` after `since`."""
    return int(
        conn.execute(
            select(func.count()).where(
                daily_reads.c.subject == subject, daily_reads.c.day == day, daily_reads.c.read_at > since
            )
        ).scalar_one()
    )


def count_read(conn: Connection, subject: str, day: str, item: str, at: float, *, known: bool) -> None:
    """Count `item` for the person on `day` at `at` (`known`: a row for it exists already)."""
    if known:
        conn.execute(
            update(daily_reads)
            .where(daily_reads.c.subject == subject, daily_reads.c.day == day, daily_reads.c.item == item)
            .values(read_at=at)
        )
    else:
        conn.execute(insert(daily_reads).values(subject=subject, day=day, item=item, read_at=at))


def forget_before(conn: Connection, *, reads_before: str, trips_before: str) -> int:
    """Drop the daily reads of days before `reads_before` and the trips of days before
    `trips_before`; how many reads were dropped."""
    dropped = conn.execute(delete(daily_reads).where(daily_reads.c.day < reads_before)).rowcount
    conn.execute(delete(limit_trips).where(limit_trips.c.day < trips_before))
    return int(dropped or 0)
