"""Source records kept shielded: those received while their child was one with a shielded child,
found so by an unmerge (`services.records.unmerge_shields`). The child holding such a record is
shown shielded until a data manager unshields it."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select, update

from services.records.repository.sources import active_of
from services.records.tables import source_records


def mark_kept_shielded(conn: Connection, source_ids: Collection[str]) -> None:
    """Mark source records as received while their child was one with a shielded child."""
    if source_ids:
        conn.execute(
            update(source_records)
            .where(source_records.c.id.in_(sorted(source_ids)))
            .values(kept_shielded=True)
        )


def holding_kept_shielded(conn: Connection, contactpoint_ids: Collection[str]) -> set[str]:
    """Those of some children that hold an active source record marked `kept_shielded`."""
    if not contactpoint_ids:
        return set()
    query = (
        select(source_records.c.contactpoint_id)
        .where(*active_of(contactpoint_ids), source_records.c.kept_shielded.is_(True))
        .distinct()
    )
    return {r.contactpoint_id for r in conn.execute(query).all()}


def clear_kept_shielded(conn: Connection, contactpoint_id: str) -> None:
    """A data manager unshielded the child: the marks of the records it holds go
    (`mark_kept_shielded`); a withdrawn one, which the data manager could not see, keeps its mark."""
    conn.execute(
        update(source_records)
        .where(*active_of([contactpoint_id]), source_records.c.kept_shielded.is_(True))
        .values(kept_shielded=False)
    )


def holders_of_marked(conn: Connection, source_ids: Collection[str]) -> set[str]:
    """The children holding any of these source records, active and marked `kept_shielded`."""
    if not source_ids:
        return set()
    query = select(source_records.c.contactpoint_id).where(
        source_records.c.id.in_(sorted(source_ids)),
        source_records.c.withdrawn.is_(False),
        source_records.c.kept_shielded.is_(True),
    )
    return {r.contactpoint_id for r in conn.execute(query).all()}
