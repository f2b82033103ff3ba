"""Children archived before the keyed check of the day was kept (migration 0012): found through
their own small index, and given the check once their day is known (`services.records.old_archives`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from services.records.repository.lifecycle import archived_check
from services.records.repository.rows import utc
from services.records.tables import ARCHIVED, children


@dataclass(frozen=True)
class OldArchive:
    """An archived child with no check of its day: its id and the month it was archived in."""

    contactpoint_id: str
    month: dt.datetime


def unchecked(conn: Connection, *, after: str, limit: int) -> list[OldArchive]:
    """The next `limit` archived children with no check after id `after`, in id order, row-locked
    (others skipped: another replica is checking them)."""
    query = (
        select(children.c.contactpoint_id, children.c.archived_at)
        .where(
            children.c.status == ARCHIVED,
            children.c.archived_check.is_(None),
            children.c.contactpoint_id > after,
        )
        .order_by(children.c.contactpoint_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [OldArchive(r.contactpoint_id, utc(r.archived_at)) for r in conn.execute(query).all()]


def set_checks(conn: Connection, days: Mapping[str, dt.date]) -> None:
    """Keep the check of the day each child was archived on (id → that day), unless one was set
    meanwhile."""
    if days:
        conn.execute(
            update(children)
            .where(
                children.c.contactpoint_id == bindparam("cid"),
                children.c.status == ARCHIVED,
                children.c.archived_check.is_(None),
            )
            .values(archived_check=bindparam("check")),
            [{"cid": cid, "check": archived_check(conn, cid, day)} for cid, day in sorted(days.items())],
        )
