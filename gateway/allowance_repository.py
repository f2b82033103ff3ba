"""The only place the gateway's SQL lives: each person's rate and daily reads."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from contactpoint.platform.db import dialect_of
from contactpoint.platform.ids import RANDOM
from gateway.tables import daily_reads, limit_trips


def _insert_ignoring_duplicates(conn: Connection, table: object, **values: object) -> None:
    if dialect_of(conn) == "postgresql":
        conn.execute(pg_insert(table).values(**values).on_conflict_do_nothing())  # type: ignore[arg-type]
    else:
        conn.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())  # type: ignore[arg-type]


# Prebuilt once: these run on every read, and building SQLAlchemy constructs per call cost more CPU
# than the database work (bench/gateway_limits.py). The SQL is the same on PostgreSQL and SQLite.
_LOCK = text(
    "INSERT INTO rates (subject, tat) VALUES (:s, 0.0) "
    "ON CONFLICT (subject) DO UPDATE SET tat = rates.tat RETURNING tat"
)
# GCRA in the upsert itself: the row is locked, the read allowed (and `tat` moved on) or not, in
# one statement. start = max(tat, now); the read is allowed when start + interval is within the
# window, and then `grant_id` is set to this call's own random id (RETURNING shows only the new
# row, so that id is how the caller learns whether its read was the one allowed).
_TAKE_RATE = text(
    "INSERT INTO rates (subject, tat, grant_id) VALUES (:s, :now + :interval, :grant) "
    "ON CONFLICT (subject) DO UPDATE SET "
    "grant_id = CASE "
    "WHEN (CASE WHEN rates.tat > :now THEN rates.tat ELSE :now END) + :interval <= :now + :window "
    "THEN :grant ELSE rates.grant_id END, "
    "tat = CASE "
    "WHEN (CASE WHEN rates.tat > :now THEN rates.tat ELSE :now END) + :interval <= :now + :window "
    "THEN (CASE WHEN rates.tat > :now THEN rates.tat ELSE :now END) + :interval ELSE rates.tat END "
    "RETURNING tat, grant_id"
)
_DAY_STATE = text(
    "SELECT (SELECT max(tripped_at) FROM limit_trips WHERE subject = :s) AS trip, "
    "(SELECT read_at FROM daily_reads WHERE subject = :s AND day = :d AND item = :i) AS item_read_at, "
    "(SELECT count(*) FROM daily_reads WHERE subject = :s AND day = :d AND read_at > "
    "coalesce((SELECT max(tripped_at) FROM limit_trips WHERE subject = :s), -1.0e18)) AS counted"
)
_INSERT_READ = text("INSERT INTO daily_reads (subject, day, item, read_at) VALUES (:s, :d, :i, :t)")
_UPDATE_READ = text("UPDATE daily_reads SET read_at = :t WHERE subject = :s AND day = :d AND item = :i")


def lock_person(conn: Connection, subject: str) -> float:
    """Lock the person's allowance for this transaction (every replica's reads of one person go one
    at a time) and return their rate's theoretical arrival time (0 for someone new).

    One statement: an upsert that leaves the row as it is but locks it (ON CONFLICT DO UPDATE
    takes the row lock on PostgreSQL; on SQLite the transaction already holds the database's write
    lock, BEGIN IMMEDIATE)."""
    return float(conn.execute(_LOCK, {"s": subject}).scalar_one())


def take_rate(
    conn: Connection, subject: str, *, now: float, interval: float, window: float
) -> tuple[bool, float]:
    """Spend one read of the person's rate if it fits (GCRA), locking their row for the
    transaction: (allowed, the theoretical arrival time now stored)."""
    grant = RANDOM.hex_id()
    params = {"s": subject, "now": now, "interval": interval, "window": window, "grant": grant}
    row = conn.execute(_TAKE_RATE, params).one()
    return row.grant_id == grant, float(row.tat)


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
    row = conn.execute(_DAY_STATE, {"s": subject, "d": day, "i": item}).one()
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
    conn.execute(_UPDATE_READ if known else _INSERT_READ, {"s": subject, "d": day, "i": item, "t": at})


def forget_before(conn: Connection, *, reads_before: str, trips_before: str) -> int:
    """Drop the daily reads of days before `reads_before` and the trips of days before
    `trips_before`; how many reads were dropped."""
    dropped = conn.execute(delete(daily_reads).where(daily_reads.c.day < reads_before)).rowcount
    conn.execute(delete(limit_trips).where(limit_trips.c.day < trips_before))
    return int(dropped or 0)
