"""The only place the gateway's SQL lives: each person's rate and daily reads."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Trip:
    """A person going over the daily limit, and whether identity confirmed their suspension."""

    tripped_at: float
    suspended: bool


def last_trip(conn: Connection, subject: str, day: str) -> Trip | None:
    """The person's latest trip over the limit on `day`, if any."""
    row = conn.execute(
        select(limit_trips.c.tripped_at, limit_trips.c.suspended)
        .where(limit_trips.c.subject == subject, limit_trips.c.day == day)
        .order_by(limit_trips.c.tripped_at.desc())
        .limit(1)
    ).first()
    return Trip(float(row.tripped_at), bool(row.suspended)) if row else None


def add_trip(conn: Connection, subject: str, day: str, at: float) -> None:
    """Record that the person went over the limit at `at` (not yet suspended)."""
    _insert_ignoring_duplicates(conn, limit_trips, subject=subject, day=day, tripped_at=at, suspended=False)


def mark_suspended(conn: Connection, subject: str, day: str, at: float) -> None:
    """Record that identity confirmed the suspension of the trip at `at`."""
    conn.execute(
        update(limit_trips)
        .where(limit_trips.c.subject == subject, limit_trips.c.day == day, limit_trips.c.tripped_at == at)
        .values(suspended=True)
    )


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


def forget_before(conn: Connection, day: str) -> int:
    """Drop the daily reads and trips of days before `day`; how many reads were dropped."""
    dropped = conn.execute(delete(daily_reads).where(daily_reads.c.day < day)).rowcount
    conn.execute(delete(limit_trips).where(limit_trips.c.day < day))
    return int(dropped or 0)
