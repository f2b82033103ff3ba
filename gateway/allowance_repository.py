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

    One statement: an upsert that leaves the row as it is but locks it (ON CONFLICT DO UPDATE
    takes the row lock on PostgreSQL; on SQLite the transaction already holds the database's write
    lock, BEGIN IMMEDIATE)."""
    make = pg_insert if dialect_of(conn) == "postgresql" else sqlite_insert
    stmt = make(rates).values(subject=subject, tat=0.0)
    stmt = stmt.on_conflict_do_update(index_elements=[rates.c.subject], set_={"tat": rates.c.tat})
    return float(conn.execute(stmt.returning(rates.c.tat)).scalar_one())


def set_tat(conn: Connection, subject: str, tat: float) -> None:
    """Store the person's new theoretical arrival time."""
    conn.execute(update(rates).where(rates.c.subject == subject).values(tat=tat))


@dataclass(frozen=True)
class DayState:
    """What one read needs to know of the person's day, read in one statement: their latest trip
    over the limit, when they last counted this item, and how many items they counted since the
    trip (or all day)."""

    trip: float | None
    item_read_at: float | None
    counted: int


def day_state(conn: Connection, subject: str, day: str, item: str) -> DayState:
    """The person's day, as far as one read of `item` is concerned."""
    trip = (
        select(func.max(limit_trips.c.tripped_at)).where(limit_trips.c.subject == subject).scalar_subquery()
    )
    item_read_at = (
        select(daily_reads.c.read_at)
        .where(daily_reads.c.subject == subject, daily_reads.c.day == day, daily_reads.c.item == item)
        .scalar_subquery()
    )
    counted = (
        select(func.count())
        .select_from(daily_reads)
        .where(
            daily_reads.c.subject == subject,
            daily_reads.c.day == day,
            daily_reads.c.read_at > func.coalesce(trip, -1.0e18),
        )
        .scalar_subquery()
    )
    row = conn.execute(
        select(trip.label("trip"), item_read_at.label("item_read_at"), counted.label("counted"))
    ).one()
    return DayState(
        float(row.trip) if row.trip is not None else None,
        float(row.item_read_at) if row.item_read_at is not None else None,
        int(row.counted),
    )


def add_trip(conn: Connection, subject: str, day: str, at: float) -> None:
    """Record that the person went over the limit at `at`."""
    _insert_ignoring_duplicates(conn, limit_trips, subject=subject, day=day, tripped_at=at)


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
