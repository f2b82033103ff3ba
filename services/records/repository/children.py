"""Child rows: the registry's own facts about a child (id, lifecycle, shielding, merges)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

from sqlalchemy import Connection, exists, func, select, update

from services.records.repository.rows import ChildRow
from services.records.repository.writes import insert_rows, update_rows
from services.records.tables import ACTIVE, MERGED, children

# A child's id is never changed nor its row deleted, so a writer locks it FOR NO KEY UPDATE:
# writers still wait for each other and for share-lockers, but a row inserted elsewhere that names
# the child (a source record, a name key, a review task: their foreign keys take KEY SHARE) does
# not wait for them (found by re-probing: a merge carrying a task to a child a decision had
# locked, and the decision waiting for the merge's child, deadlocked).


def child(conn: Connection, contactpoint_id: str, *, lock: bool = False) -> ChildRow | None:
    """One child row; with `lock`, row-locked until the transaction ends (on PostgreSQL)."""
    query = select(children).where(children.c.contactpoint_id == contactpoint_id)
    if lock:
        query = query.with_for_update(key_share=True)
    row = conn.execute(query).first()
    return ChildRow.of(row) if row is not None else None


def children_by_id(
    conn: Connection, ids: Collection[str], *, share_lock: bool = False, update_lock: bool = False
) -> dict[str, ChildRow]:
    """Several child rows by id. With `share_lock` they cannot change (e.g. be merged away) until
    the transaction ends; with `update_lock` nobody else may lock them either (rows the caller
    will change), taken in id order as a merge takes its two."""
    if not ids:
        return {}
    query = select(children).where(children.c.contactpoint_id.in_(sorted(ids)))
    if update_lock:
        query = query.order_by(children.c.contactpoint_id).with_for_update(key_share=True)
    elif share_lock:
        query = query.with_for_update(read=True)
    return {row.contactpoint_id: ChildRow.of(row) for row in conn.execute(query).all()}


def count_active(conn: Connection) -> int:
    """How many children are active (neither archived, purged nor merged away): the registry's
    size the match model's prior is scaled to (`Model.for_registry`)."""
    query = select(func.count()).select_from(children).where(children.c.status == ACTIVE)
    return int(conn.execute(query).scalar_one())


def child_exists(conn: Connection, contactpoint_id: str) -> bool:
    """Whether a ContactPoint ID was ever issued (child rows are never deleted)."""
    return bool(conn.execute(select(exists().where(children.c.contactpoint_id == contactpoint_id))).scalar())


def due_month(archive_on: dt.date | None) -> dt.date | None:
    """An archive date as stored: the first day of its month. The exact date is a birthday (18 or
    25 years on), which would give away the child's date of birth; the lifecycle job takes the
    exact date from the sealed records when the month comes (`lifecycle.archive_batch`)."""
    return archive_on.replace(day=1) if archive_on is not None else None


def insert_children(
    conn: Connection,
    new: Iterable[tuple[str, bool, dt.date | None]],
    *,
    now: dt.datetime,
) -> None:
    """Store new active children: (contactpoint_id, provisional_shield, archive_on) each."""
    insert_rows(
        conn,
        children,
        (
            "contactpoint_id",
            "status",
            "shielded",
            "provisional_shield",
            "created_at",
            "updated_at",
            "archive_on",
        ),
        [
            (cid, ACTIVE, False, provisional, now, now, due_month(archive_on))
            for cid, provisional, archive_on in new
        ],
    )


def touch(conn: Connection, contactpoint_id: str, *, now: dt.datetime, archive_on: dt.date | None) -> None:
    """Record that a child's record changed, with its (re)computed archive date."""
    touch_many(conn, {contactpoint_id: archive_on}, now=now)


def touch_many(conn: Connection, archive_on: Mapping[str, dt.date | None], *, now: dt.datetime) -> None:
    """`touch` for several children at once: child id → its (re)computed archive date."""
    rows = [(cid, due_month(due)) for cid, due in archive_on.items()]
    update_rows(conn, children, "contactpoint_id", ("archive_on",), rows, same={"updated_at": now})


def restore_updated_at(conn: Connection, updated_at: Mapping[str, dt.datetime]) -> None:
    """Give children back the update times they had (an unmerge with nothing changed since)."""
    for contactpoint_id, when in sorted(updated_at.items()):
        conn.execute(
            update(children).where(children.c.contactpoint_id == contactpoint_id).values(updated_at=when)
        )


def set_shielding(
    conn: Connection,
    contactpoint_id: str,
    *,
    shielded: bool | None = None,
    provisional: bool | None = None,
    now: dt.datetime,
) -> None:
    """Change a child's shielding (None leaves a flag as it is)."""
    values: dict[str, object] = {"updated_at": now}
    if shielded is not None:
        values["shielded"] = shielded
    if provisional is not None:
        values["provisional_shield"] = provisional
    conn.execute(update(children).where(children.c.contactpoint_id == contactpoint_id).values(values))


def retire(conn: Connection, contactpoint_id: str, *, into: str, now: dt.datetime) -> None:
    """Mark a child merged into another: its id reads as `into` from now on."""
    conn.execute(
        update(children)
        .where(children.c.contactpoint_id == contactpoint_id)
        .values(status=MERGED, merged_into=into, provisional_shield=False, updated_at=now)
    )


def merged_family(conn: Connection, contactpoint_id: str) -> set[str]:
    """A child and every child merged into it, directly or through another merged child."""
    family, frontier = {contactpoint_id}, [contactpoint_id]
    while frontier:
        # By `merged_into` alone, so that both engines look it up in its index (given the status
        # too, SQLite walks every merged child instead); the status is checked here.
        query = select(children.c.contactpoint_id, children.c.status).where(
            children.c.merged_into.in_(sorted(frontier))
        )
        rows = conn.execute(query).all()
        frontier = [cid for cid, status in rows if status == MERGED and cid not in family]
        family.update(frontier)
    return family


def reinstate(conn: Connection, contactpoint_id: str, *, shielded: bool, now: dt.datetime) -> None:
    """Undo `retire`: the child is active again, shielded as it was before the merge."""
    conn.execute(
        update(children)
        .where(children.c.contactpoint_id == contactpoint_id)
        .values(status=ACTIVE, merged_into=None, shielded=shielded, updated_at=now)
    )
