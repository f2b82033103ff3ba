"""The only place the gateway's SQL lives: each person's rate and daily reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, delete, text

from contactpoint.platform.ids import RANDOM
from contactpoint.platform.statements import Executes, Statements, Transaction
from gateway.tables import daily_reads, limit_trips

# Prebuilt once: these run on every read, and building SQLAlchemy constructs per call cost more CPU
# than the database work (bench/gateway_limits.py). The SQL is the same on PostgreSQL and SQLite,
# but for `_TAKE_RATE_AND_ITEM` (PostgreSQL's data-modifying WITH).
_LOCK = text(
    "INSERT INTO rates (subject, tat) VALUES (:s, 0.0) "
    "ON CONFLICT (subject) DO UPDATE SET tat = rates.tat RETURNING tat"
)
# PostgreSQL: the sliding minute in the upsert itself (`allowance.sliding`): the row is locked, the
# read allowed or not, in one statement. `recent` holds the times of the reads allowed in the last
# minute; the read is allowed while fewer than `:n` of them are after `:since` (a minute before
# it), and then those and its own time are kept and `grant_id` set to this call's own random id
# (RETURNING shows only the new row, so that id is how the caller learns whether its read was the
# one allowed).
_IN_THE_MINUTE = "FROM unnest(string_to_array(rates.recent, ' ')::float8[]) AS t(v) WHERE t.v > :since"
_TAKE_RATE_SQL = (
    "INSERT INTO rates (subject, tat, grant_id, recent) VALUES (:s, 0.0, :grant, :now_text) "  # noqa: S608
    "ON CONFLICT (subject) DO UPDATE SET "
    f"grant_id = CASE WHEN (SELECT count(*) {_IN_THE_MINUTE}) < :n THEN :grant ELSE rates.grant_id END, "
    f"recent = CASE WHEN (SELECT count(*) {_IN_THE_MINUTE}) < :n "
    f"THEN concat_ws(' ', (SELECT string_agg(t.v::text, ' ' ORDER BY t.v) {_IN_THE_MINUTE}), :now_text) "
    "ELSE rates.recent END "
    "RETURNING tat, recent, grant_id, tripped_at"
)  # (composed of this module's constants only, never of input)
_TAKE_RATE = text(_TAKE_RATE_SQL)
# GCRA in the upsert itself, for rates above `allowance.EXACT_UP_TO`: start = max(tat, now); the
# read is allowed when start + interval is within the window (then `tat` moves on), in one
# statement, on either engine.
_GCRA_SQL = (
    "INSERT INTO rates (subject, tat, grant_id) VALUES (:s, :now + :interval, :grant) "
    "ON CONFLICT (subject) DO UPDATE SET "
    "grant_id = CASE "
    "WHEN (CASE WHEN rates.tat > :now THEN rates.tat ELSE :now END) + :interval <= :now + :window "
    "THEN :grant ELSE rates.grant_id END, "
    "tat = CASE "
    "WHEN (CASE WHEN rates.tat > :now THEN rates.tat ELSE :now END) + :interval <= :now + :window "
    "THEN (CASE WHEN rates.tat > :now THEN rates.tat ELSE :now END) + :interval ELSE rates.tat END "
    "RETURNING tat, recent, grant_id, tripped_at"
)
_GCRA = text(_GCRA_SQL)
# SQLite (one writer at a time: the transaction holds the database's write lock): the same decided
# in Python between these two.
# (One row always: NULLs for a person with none yet.)
_RATE_ROW = text(
    "SELECT r.tat, r.recent, r.grant_id, r.tripped_at FROM (SELECT 1) AS one "
    "LEFT JOIN rates AS r ON r.subject = :s"
)
_SET_RECENT = text(
    "INSERT INTO rates (subject, tat, grant_id, recent) VALUES (:s, 0.0, :grant, :recent) "
    "ON CONFLICT (subject) DO UPDATE SET grant_id = :grant, recent = :recent"
)
_ITEM_READ_AT_SQL = "SELECT read_at FROM daily_reads WHERE subject = :s AND day = :d AND item = :i"


# PostgreSQL: the rate and when the item was last counted, in one statement (one round trip). The
# item's row comes from the statement's snapshot, which may predate the lock; that is safe for
# the only use made of it, "already counted since the trip" (the trip itself is the locked row's
# latest, and a counted item's row is never removed on its day). A row not yet visible only sends
# the read the longer way, through `lock_person` and `day_state`.
# (Both are composed of this module's constants only, never of input.)
def _and_item(rate_sql: str) -> TextClause:
    return text(
        f"WITH r AS ({rate_sql}) "  # noqa: S608
        f"SELECT r.tat, r.recent, r.grant_id, r.tripped_at, ({_ITEM_READ_AT_SQL}) AS item_read_at FROM r"
    )


_TAKE_RATE_AND_ITEM = _and_item(_TAKE_RATE_SQL)
_GCRA_AND_ITEM = _and_item(_GCRA_SQL)
_DAY_STATE = text(
    "SELECT (SELECT tripped_at FROM rates WHERE subject = :s) AS trip, "  # noqa: S608
    f"({_ITEM_READ_AT_SQL}) AS item_read_at, "
    "(SELECT count(*) FROM daily_reads WHERE subject = :s AND day = :d AND read_at > "
    "coalesce((SELECT tripped_at FROM rates WHERE subject = :s), -1.0e18)) AS counted"
)
_INSERT_READ = text("INSERT INTO daily_reads (subject, day, item, read_at) VALUES (:s, :d, :i, :t)")
_UPDATE_READ = text("UPDATE daily_reads SET read_at = :t WHERE subject = :s AND day = :d AND item = :i")
_SET_COUNT = text("UPDATE rates SET count_day = :d, counted = :n WHERE subject = :s")
# A trip: nothing is counted since it.
_SET_TRIP = text("UPDATE rates SET tripped_at = :t, count_day = :d, counted = 0 WHERE subject = :s")
# PostgreSQL: a child's first read of the day counted in one statement, when it is under the limit
# and the person's latest trip is still the one the read was decided on. The UPDATE locks the
# person's row and, having waited for another replica's count, checks the limit again on the row
# as that count left it (READ COMMITTED's re-check), so two replicas never both spend the last of
# an allowance. No row: the read takes the counting transaction (`day_state` and the rest), which
# decides a trip. Two reads of one child by one person at the same moment may both count it: the
# count is then one above the truth until the transaction writes the exact count back, so an
# allowance can only end early by that, never late.
_COUNT_FIRST_READ = text(
    "WITH c AS (UPDATE rates SET "
    "counted = CASE WHEN count_day = :d THEN counted + 1 ELSE 1 END, count_day = :d "
    "WHERE subject = :s AND (count_day IS DISTINCT FROM :d OR counted < :limit) "
    "AND tripped_at IS NOT DISTINCT FROM :trip RETURNING subject), "
    "i AS (INSERT INTO daily_reads (subject, day, item, read_at) SELECT c.subject, :d, :i, :t FROM c "
    "ON CONFLICT (subject, day, item) DO UPDATE SET read_at = excluded.read_at RETURNING 1) "
    "SELECT (SELECT count(*) FROM i) AS counted"
)
# SQLite: the same in two statements, in one write transaction (one writer at a time there).
_COUNT_ON_ROW_SQLITE = text(
    "UPDATE rates SET counted = CASE WHEN count_day = :d THEN counted + 1 ELSE 1 END, count_day = :d "
    "WHERE subject = :s AND (count_day IS NOT :d OR counted < :limit) AND tripped_at IS :trip"
)
_UPSERT_READ = text(
    "INSERT INTO daily_reads (subject, day, item, read_at) VALUES (:s, :d, :i, :t) "
    "ON CONFLICT (subject, day, item) DO UPDATE SET read_at = excluded.read_at"
)
_INSERT_TRIP = text(
    "INSERT INTO limit_trips (subject, day, tripped_at) VALUES (:s, :d, :t) ON CONFLICT DO NOTHING"
)
# One row whether or not the item was counted (a scalar subquery).
_ITEM_READ_AT_OR_NONE = text(f"SELECT ({_ITEM_READ_AT_SQL}) AS read_at")


async def lock_person(tx: Transaction, subject: str) -> float:
    """Lock the person's allowance for this transaction (every replica's reads of one person go one
    at a time) and return their rate's theoretical arrival time (0 for someone new).

    One statement: an upsert that leaves the row as it is but locks it (ON CONFLICT DO UPDATE
    takes the row lock on PostgreSQL; on SQLite the transaction already holds the database's write
    lock, BEGIN IMMEDIATE)."""
    return float((await tx.one(_LOCK, {"s": subject})).tat)


@dataclass(frozen=True)
class RateTaken:
    """One read against the person's rate: whether it was allowed, the times of reads allowed now
    stored (`recent`, maybe older ones among them), the person's latest trip, and when the item
    was last counted on the day (None when unknown or never)."""

    allowed: bool
    tat: float
    recent: tuple[float, ...]
    trip: float | None
    item_read_at: float | None


def _times(recent: object) -> tuple[float, ...]:
    return tuple(float(t) for t in str(recent).split()) if recent else ()


def _take_rate_sqlite(conn: Executes, params: dict[str, object]) -> Any:
    """`_TAKE_RATE` on SQLite: the row (recent, grant_id, tripped_at) as the read left it."""
    row = conn.execute(_RATE_ROW, {"s": params["s"]}).one()
    since = float(params["since"])  # type: ignore[arg-type]
    kept = sorted(t for t in _times(row.recent) if t > since)
    if len(kept) >= int(params["n"]):  # type: ignore[call-overload]
        return row  # refused: nothing changes (a refused read spends nothing)
    recent = " ".join([*map(repr, kept), str(params["now_text"])])
    conn.execute(_SET_RECENT, {"s": params["s"], "grant": params["grant"], "recent": recent})
    return conn.execute(_RATE_ROW, {"s": params["s"]}).one()


def _optional(value: object) -> float | None:
    return float(value) if value is not None else None  # type: ignore[arg-type]


async def take_rate(
    store: Statements,
    subject: str,
    *,
    now: float,
    since: float,
    per_minute: int,
    gcra: tuple[float, float] | None = None,
    day: str,
    item: str | None,
) -> RateTaken:
    """Spend one read of the person's rate if fewer than `per_minute` reads were allowed after
    `since` (a minute before `now`), or with `gcra` (interval, window) by GCRA, and say when `item`
    was last counted on `day`. One statement on PostgreSQL (its own transaction, from the event
    loop); on SQLite a few, in one transaction."""
    grant = RANDOM.hex_id()
    params: dict[str, object] = {"s": subject, "grant": grant}
    if gcra is None:
        params.update({"now_text": repr(now), "since": since, "n": per_minute})
        alone, with_item = _TAKE_RATE, _TAKE_RATE_AND_ITEM
    else:
        params.update({"now": now, "interval": gcra[0], "window": gcra[1]})
        alone, with_item = _GCRA, _GCRA_AND_ITEM
    read_at: float | None = None
    if store.dialect == "postgresql":
        if item is None:
            row = await store.one(alone, params)
        else:
            row = await store.one(with_item, {**params, "d": day, "i": item})
            read_at = _optional(row.item_read_at)
    else:  # SQLite: one hop to a worker thread

        def both(conn: Executes) -> tuple[Any, Any]:
            taken = _take_rate_sqlite(conn, params) if gcra is None else conn.execute(_GCRA, params).one()
            if item is None:
                return taken, None
            return taken, conn.execute(_ITEM_READ_AT_OR_NONE, {"s": subject, "d": day, "i": item}).one()

        row, last = await store.write(both)
        read_at = _optional(last.read_at) if last is not None else None
    return RateTaken(
        row.grant_id == grant, float(row.tat or 0.0), _times(row.recent), _optional(row.tripped_at), read_at
    )


@dataclass(frozen=True)
class DayState:
    """What one read needs to know of the person's day, read in one statement: their latest trip
    over the limit, when they last counted this item, and how many items they counted since the
    trip (or all day)."""

    trip: float | None
    item_read_at: float | None
    counted: int


async def day_state(tx: Transaction, subject: str, day: str, item: str) -> DayState:
    """The person's day, as far as one read of `item` is concerned."""
    row = await tx.one(_DAY_STATE, {"s": subject, "d": day, "i": item})
    return DayState(_optional(row.trip), _optional(row.item_read_at), int(row.counted))


async def add_trip(tx: Transaction, subject: str, day: str, at: float) -> None:
    """Record that the person went over the limit at `at` (their rates row is locked already)."""
    await tx.execute(_INSERT_TRIP, {"s": subject, "d": day, "t": at})
    await tx.execute(_SET_TRIP, {"s": subject, "d": day, "t": at})


async def count_read(
    tx: Transaction, subject: str, day: str, item: str, at: float, *, known: bool, counted: int
) -> None:
    """Count `item` for the person on `day` at `at` (`known`: a row for it exists already), which
    makes `counted` items since their latest trip that day (their rates row is locked already)."""
    await tx.execute(_UPDATE_READ if known else _INSERT_READ, {"s": subject, "d": day, "i": item, "t": at})
    await tx.execute(_SET_COUNT, {"s": subject, "d": day, "n": counted})


async def count_first_read(
    store: Statements, subject: str, *, day: str, item: str, at: float, trip: float | None, limit: int
) -> bool:
    """Count a child's first read of the day when it is under the limit and `trip` is still the
    person's latest (see `_COUNT_FIRST_READ`): one statement on PostgreSQL, one hop to the writer's
    thread on SQLite. False when that cannot decide it (over the limit, a new trip) and the
    counting transaction must."""
    params = {"s": subject, "d": day, "i": item, "t": at, "trip": trip, "limit": limit}
    if store.dialect == "postgresql":
        return int((await store.one(_COUNT_FIRST_READ, params)).counted) == 1

    def count(conn: Executes) -> bool:
        if conn.execute(_COUNT_ON_ROW_SQLITE, params).rowcount != 1:
            return False
        conn.execute(_UPSERT_READ, params)
        return True

    return await store.write(count)


def forget_before(conn: Connection, *, reads_before: str, trips_before: str) -> int:
    """Drop the daily reads of days before `reads_before` and the trips of days before
    `trips_before`; how many reads were dropped."""
    dropped = conn.execute(delete(daily_reads).where(daily_reads.c.day < reads_before)).rowcount
    conn.execute(delete(limit_trips).where(limit_trips.c.day < trips_before))
    return int(dropped or 0)
