"""Merges of two children: what was moved, so that a merge can be undone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from services.records.repository.rows import MergeRow
from services.records.tables import merges


@dataclass(frozen=True, slots=True)
class NewMerge:
    """A merge about to happen."""

    merge_id: str
    survivor_id: str
    retired_id: str
    moved_sources: Sequence[str]
    survivor_shielded: bool
    retired_shielded: bool
    manager: str
    organisation: str
    reason: str
    survivor_updated_at: dt.datetime
    retired_updated_at: dt.datetime
    survivor_fingerprint: str | None
    retired_fingerprint: str | None
    held_at_merge: Mapping[str, str]


def insert_merge(conn: Connection, merge: NewMerge, *, now: dt.datetime) -> None:
    """Record a merge."""
    conn.execute(
        insert(merges).values(
            merge_id=merge.merge_id,
            survivor_id=merge.survivor_id,
            retired_id=merge.retired_id,
            moved_sources=list(merge.moved_sources),
            survivor_shielded=merge.survivor_shielded,
            retired_shielded=merge.retired_shielded,
            merged_by=merge.manager,
            merged_by_organisation=merge.organisation,
            reason=merge.reason,
            created_at=now,
            survivor_updated_at=merge.survivor_updated_at,
            retired_updated_at=merge.retired_updated_at,
            survivor_fingerprint=merge.survivor_fingerprint,
            retired_fingerprint=merge.retired_fingerprint,
            held_at_merge=dict(merge.held_at_merge),
        )
    )


def live_merge_of(conn: Connection, retired_id: str) -> MergeRow | None:
    """The merge (not undone) that retired `retired_id`, if any."""
    return _latest_merge_of(conn, retired_id, live=True)


def latest_merge_of(conn: Connection, retired_id: str) -> MergeRow | None:
    """The latest merge that retired `retired_id`, undone or not (an unmerge's retry)."""
    return _latest_merge_of(conn, retired_id, live=False)


def _latest_merge_of(conn: Connection, retired_id: str, *, live: bool) -> MergeRow | None:
    query = select(merges).where(merges.c.retired_id == retired_id)
    if live:
        query = query.where(merges.c.undone_at.is_(None))
    row = conn.execute(query.order_by(merges.c.created_at.desc()).limit(1)).first()
    return MergeRow.of(row) if row is not None else None


def live_merges_into(conn: Connection, survivor_id: str) -> list[MergeRow]:
    """The merges (not undone) of other children into this one, oldest first (`in_order`)."""
    query = select(merges).where(merges.c.survivor_id == survivor_id, merges.c.undone_at.is_(None))
    return sorted((MergeRow.of(row) for row in conn.execute(query).all()), key=in_order)


def in_order(merge: MergeRow) -> tuple[dt.datetime, bool, str]:
    """Merges into one child in the order they were made: by time, and at one instant the merge
    whose survivor was not yet shielded first (a merge remembers the survivor's shield as the
    merges before it left it, and a shield only grows by merging; found by probing: two merges
    at one instant were ordered by their random ids)."""
    return merge.created_at, merge.survivor_shielded, merge.merge_id


def record_origins(conn: Connection, holders: Collection[str]) -> dict[tuple[str, str], str]:
    """For each of `holders`, the source records live merges moved to it (directly, or through a
    child merged into it), by (holder, source id): the child each was first filed under. A merge
    still lists a record an unmerge of a merge inside it moved back out since, so each record is
    followed through the latest live merge that lists it (found by probing: a record moved back
    and merged again was taken for the first survivor's)."""
    if not holders:
        return {}
    query = select(merges.c.survivor_id).where(
        merges.c.survivor_id.in_(sorted(holders)), merges.c.undone_at.is_(None)
    )
    merged_into = sorted({survivor for (survivor,) in conn.execute(query).all()})  # most: none
    return {
        (holder, source_id): child
        for holder in merged_into
        for source_id, child in _moved_into(conn, holder).items()
    }


def _moved_into(conn: Connection, child: str) -> dict[str, str]:
    # The records live merges moved into `child`, each to the child it was first filed under.
    query = (
        select(merges.c.retired_id, merges.c.moved_sources)
        .where(merges.c.survivor_id == child, merges.c.undone_at.is_(None))
        .order_by(merges.c.created_at.desc(), merges.c.merge_id.desc())
    )
    found: dict[str, str] = {}
    for retired, moved in conn.execute(query).all():
        inner = _moved_into(conn, retired)
        for source_id in moved or ():
            found.setdefault(source_id, inner.get(source_id, retired))
    return found


def undo_merge(conn: Connection, merge_id: str, *, manager: str, reason: str, now: dt.datetime) -> None:
    """Mark a merge undone."""
    conn.execute(
        update(merges)
        .where(merges.c.merge_id == merge_id)
        .values(undone_at=now, undone_by=manager, undo_reason=reason)
    )


def set_shields_at_merge(
    conn: Connection, merge_id: str, *, survivor: bool | None = None, retired: bool | None = None
) -> None:
    """Correct what a merge remembers of its children's shields (None leaves one as it is)."""
    values = {
        name: value
        for name, value in (("survivor_shielded", survivor), ("retired_shielded", retired))
        if value is not None
    }
    if values:
        conn.execute(update(merges).where(merges.c.merge_id == merge_id).values(values))


def set_shielding_of_live_merges(conn: Connection, survivors: Collection[str], *, shielded: bool) -> None:
    """A data manager's shield decision on a merged child stands for every child merged into it:
    undoing one of those merges leaves both children shielded so (or not)."""
    if survivors:
        conn.execute(
            update(merges)
            .where(merges.c.survivor_id.in_(sorted(survivors)), merges.c.undone_at.is_(None))
            .values(survivor_shielded=shielded, retired_shielded=shielded)
        )
