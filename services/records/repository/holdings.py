"""Which organisations hold which children: the active source records by organisation, as data
managers' scope (CONTRACT §4: they act only on children their organisation holds) and lifecycle
read them."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, func, select

from services.records.repository.sources import active_of
from services.records.tables import source_records


def children_with_several_records(conn: Connection, contactpoint_ids: Collection[str]) -> set[str]:
    """Those of some children that hold more than one active source record (nothing opened)."""
    if not contactpoint_ids:
        return set()
    query = (
        select(source_records.c.contactpoint_id)
        .where(*active_of(contactpoint_ids))
        .group_by(source_records.c.contactpoint_id)
        .having(func.count() > 1)
    )
    return {r.contactpoint_id for r in conn.execute(query).all()}


def held_by_organisation(conn: Connection, contactpoint_ids: Collection[str], organisation: str) -> set[str]:
    """Which of the children have an active source record from `organisation`."""
    if not contactpoint_ids:
        return set()
    query = select(source_records.c.contactpoint_id).where(
        source_records.c.contactpoint_id.in_(sorted(contactpoint_ids)),
        source_records.c.organisation == organisation,
        source_records.c.withdrawn.is_(False),
    )
    return {r.contactpoint_id for r in conn.execute(query).all()}


def organisation_holds_any(
    conn: Connection, source_ids: Collection[str], *, organisation: str, only_from: Collection[str]
) -> bool:
    """Whether any of these source records is an active one of `organisation`, held now by one of
    the children `only_from` (what an unmerge would put back: `move_sources`)."""
    if not source_ids:
        return False
    query = select(source_records.c.id).where(
        source_records.c.id.in_(sorted(source_ids)),
        source_records.c.contactpoint_id.in_(sorted(only_from)),
        source_records.c.organisation == organisation,
        source_records.c.withdrawn.is_(False),
    )
    return conn.execute(query.limit(1)).first() is not None


def source_organisations(conn: Connection, contactpoint_id: str) -> list[tuple[str, bool]]:
    """(organisation, withdrawn) of every source record of one child, none opened."""
    query = select(source_records.c.organisation, source_records.c.withdrawn).where(
        source_records.c.contactpoint_id == contactpoint_id
    )
    return [(str(r.organisation), bool(r.withdrawn)) for r in conn.execute(query).all()]


def records_from(
    conn: Connection, contactpoint_ids: Collection[str], organisation: str
) -> list[tuple[str, str, str]]:
    """(child, source system, source record id) of each active source record of `organisation`
    these children hold."""
    if not contactpoint_ids:
        return []
    query = select(
        source_records.c.contactpoint_id, source_records.c.source_system, source_records.c.source_record_id
    ).where(
        source_records.c.contactpoint_id.in_(sorted(contactpoint_ids)),
        source_records.c.organisation == organisation,
        source_records.c.withdrawn.is_(False),
    )
    rows = conn.execute(query)
    return [(str(r.contactpoint_id), str(r.source_system), str(r.source_record_id)) for r in rows]
