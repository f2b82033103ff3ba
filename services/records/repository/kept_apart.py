"""Kept-apart pairs: two children a data manager said are different, remembered for ever, so that
no later record or merge joins them."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Collection, Iterable

from sqlalchemy import Connection, bindparam, exists, insert, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, INTEGER

from contactpoint.platform.db import dialect_of
from services.records.repository.writes import unique
from services.records.tables import kept_apart

# A pair's decision and a task raised for the same pair go one at a time: advisory locks under a
# class id of their own (beside the blocking keys' and the data managers'), one a pair, hashed.
PAIR_LOCK_CLASS = 0x4B41  # "KA"
_LOCK_PAIRS = text(
    "SELECT count(pg_advisory_xact_lock(:lock_class, k)) FROM unnest(:keys) WITH ORDINALITY AS t(k, n)"
).bindparams(bindparam("keys", type_=ARRAY(INTEGER)))


def _pair_key(a: str, b: str) -> int:
    first, second = sorted((a, b))
    return zlib.crc32(f"{first}:{second}".encode()) - (1 << 31)  # a signed 32-bit integer


def lock_pairs(conn: Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Hold a lock on each pair of children until commit, so that a data manager keeping two
    children apart and a record raising a task for the same two run one after the other: the
    task's check then sees the decision, or the decision closes the task (found by probing: a
    record arriving as the pair was kept apart proposed it again). Taken in one sorted order, so
    two holders of several never deadlock on them. SQLite needs nothing: its writers already
    hold the one database lock."""
    keys = sorted({_pair_key(a, b) for a, b in pairs if a != b})
    if keys and dialect_of(conn) == "postgresql":
        conn.execute(_LOCK_PAIRS, {"lock_class": PAIR_LOCK_CLASS, "keys": keys})


def keep_apart(conn: Connection, a: str, b: str, *, manager: str, reason: str, now: dt.datetime) -> None:
    """Remember for ever that two children are different (idempotent)."""
    first, second = sorted((a, b))
    lock_pairs(conn, [(first, second)])
    if are_kept_apart(conn, first, second):
        return
    with unique():
        conn.execute(
            insert(kept_apart).values(
                child_a=first, child_b=second, decided_by=manager, reason=reason, created_at=now
            )
        )


def are_kept_apart(conn: Connection, a: str, b: str) -> bool:
    """Whether a data manager said these two are different children."""
    first, second = sorted((a, b))
    query = select(exists().where(kept_apart.c.child_a == first, kept_apart.c.child_b == second))
    return bool(conn.execute(query).scalar())


def kept_apart_from(conn: Connection, ids: Collection[str]) -> dict[str, set[str]]:
    """For each of `ids`, the children it is kept apart from."""
    out: dict[str, set[str]] = {i: set() for i in ids}
    if not ids:
        return out
    wanted = sorted(ids)
    query = select(kept_apart.c.child_a, kept_apart.c.child_b).where(
        or_(kept_apart.c.child_a.in_(wanted), kept_apart.c.child_b.in_(wanted))
    )
    for a, b in conn.execute(query).all():
        if a in out:
            out[a].add(b)
        if b in out:
            out[b].add(a)
    return out
