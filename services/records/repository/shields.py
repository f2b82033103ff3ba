"""Which organisations shielded a child (`services.records.shielding`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import Connection, delete, insert, select

from services.records.tables import children, shields


def add(conn: Connection, contactpoint_ids: Collection[str], organisation: str, *, now: dt.datetime) -> None:
    """Remember that `organisation` shielded these children (each once; the first time kept). The
    caller holds the row lock of the child they are merged into (the end of their merge chain),
    which every change to their shields takes first, so no other transaction adds the same row
    meanwhile."""
    if not contactpoint_ids:
        return
    query = select(shields.c.contactpoint_id).where(
        shields.c.contactpoint_id.in_(sorted(contactpoint_ids)), shields.c.organisation == organisation
    )
    known = {r.contactpoint_id for r in conn.execute(query)}
    new = [
        {"contactpoint_id": cid, "organisation": organisation, "created_at": now}
        for cid in sorted(set(contactpoint_ids) - known)
    ]
    if new:
        conn.execute(insert(shields), new)


def stand_on_shielded(
    conn: Connection, contactpoint_ids: Collection[str], organisations: Collection[str], *, now: dt.datetime
) -> None:
    """Remember that these organisations shielded each of these children that is shielded now."""
    query = select(children.c.contactpoint_id).where(
        children.c.contactpoint_id.in_(sorted(contactpoint_ids)), children.c.shielded.is_(True)
    )
    shielded = [r.contactpoint_id for r in conn.execute(query)] if contactpoint_ids else []
    for organisation in sorted(organisations):
        add(conn, shielded, organisation, now=now)


def withdraw(conn: Connection, contactpoint_ids: Collection[str], organisation: str) -> None:
    """`organisation` lifted its own shield on these children; others' stand."""
    if contactpoint_ids:
        conn.execute(
            delete(shields).where(
                shields.c.contactpoint_id.in_(sorted(contactpoint_ids)),
                shields.c.organisation == organisation,
            )
        )


def organisations(conn: Connection, contactpoint_ids: Collection[str]) -> set[str]:
    """The organisations that shielded any of these children."""
    if not contactpoint_ids:
        return set()
    query = select(shields.c.organisation).where(shields.c.contactpoint_id.in_(sorted(contactpoint_ids)))
    return {r.organisation for r in conn.execute(query)}


def clear(conn: Connection, contactpoint_ids: Collection[str]) -> None:
    """The children's shields were lifted: no organisation's shield stands on them."""
    if contactpoint_ids:
        conn.execute(delete(shields).where(shields.c.contactpoint_id.in_(sorted(contactpoint_ids))))
