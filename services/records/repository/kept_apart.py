"""Kept-apart pairs: two children a data manager said are different, remembered for ever, so that
no later record or merge joins them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import Connection, exists, insert, or_, select

from services.records.repository.writes import unique
from services.records.tables import kept_apart


def keep_apart(conn: Connection, a: str, b: str, *, manager: str, reason: str, now: dt.datetime) -> None:
    """Remember for ever that two children are different (idempotent)."""
    first, second = sorted((a, b))
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
