"""GetChildRecord's fast path: the child's row and its active source records in one statement,
awaited on the event loop (`Statements`: no worker thread, no SQLAlchemy transaction around it),
then composed exactly as `children.get_child` composes it. A retired id (merged away) is rare and
takes the general path, which follows the merge.

One statement reads one snapshot, so the child and its sources agree as they would in the one
transaction of the general path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, LargeBinary, text

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.errors import FieldViolation, InvalidArgument, NotFound
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.statements import Statements
from contactpoint.platform.vault import Vault
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.children import composed_from
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository.remembered_services import open_services
from services.records.repository.rows import ChildRow, aware, utc
from services.records.repository.sealing import source_context
from services.records.sensitive_memory import FlaggedService
from services.records.tables import MERGED
from services.records.values import today_in_england

CHILD_WITH_SOURCES = text(
    "SELECT c.contactpoint_id, c.status, c.shielded, c.provisional_shield, c.created_at, "
    "c.updated_at, c.archive_on, c.archived_at, c.purged_at, c.merged_into, "
    "s.id AS source_id, s.record, s.as_of, s.updated_at AS source_updated_at, "
    "s.withdrawn AS source_withdrawn, s.sensitive_services "
    "FROM children c LEFT JOIN source_records s "
    "ON s.contactpoint_id = c.contactpoint_id "
    "AND (s.withdrawn = :withdrawn OR s.sensitive_services IS NOT NULL) "
    "WHERE c.contactpoint_id = :contactpoint_id"
).columns(
    # Typed, so that SQLite's text comes back as the same values PostgreSQL gives.
    shielded=Boolean,
    provisional_shield=Boolean,
    created_at=DateTime(timezone=True),
    updated_at=DateTime(timezone=True),
    archive_on=Date,
    archived_at=DateTime(timezone=True),
    purged_at=DateTime(timezone=True),
    record=LargeBinary,
    as_of=DateTime(timezone=True),
    source_updated_at=DateTime(timezone=True),
    source_withdrawn=Boolean,
    sensitive_services=LargeBinary,
)


class Merged(Exception):
    """The id was retired by a merge: read it the general way, which follows the merge."""


def _order(r: Any) -> tuple[dt.datetime, dt.datetime, str]:
    """`SourceRow.order` of a joined row: by `as_of` (or when received), then when stored."""
    stored = utc(r.source_updated_at)
    return (aware(r.as_of) or stored, stored, str(r.source_id))


def _sources(rows: Sequence[Any], vault: Vault) -> list[pb.SourceRecord]:
    """The active source records of the joined rows, opened, oldest first (as `children.in_order`
    orders them)."""
    held = [r for r in rows if r.source_id is not None and not r.source_withdrawn]
    held.sort(key=_order)
    out = []
    for r in held:
        record = pb.SourceRecord()
        record.ParseFromString(vault.open(r.record, source_context(r.source_id, "record")))
        out.append(record)
    return out


def _remembered(rows: Sequence[Any], vault: Vault) -> tuple[FlaggedService, ...]:
    """The services the joined rows (withdrawn ones too) remember as sensitive."""
    return tuple(
        service
        for r in rows
        if r.source_id is not None
        for service in open_services(vault, r.source_id, r.sensitive_services)
    )


async def get_child(
    store: Statements,
    vault: Vault,
    *,
    contactpoint_id: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> child_pb2.Child:
    """One child's full record, as `children.get_child` reads it; `Merged` for a retired id."""
    problem = contactpoint_id_problem(contactpoint_id)
    if problem:
        raise InvalidArgument([FieldViolation("contactpoint_id", problem)])
    rows = await store.all(CHILD_WITH_SOURCES, {"contactpoint_id": contactpoint_id, "withdrawn": False})
    if not rows:
        raise NotFound("no child has this ContactPoint ID")
    row = ChildRow.of(rows[0])  # the child's columns keep their names in the statement
    if row.status == MERGED:
        raise Merged(contactpoint_id)
    child = composed_from(
        row,
        _sources(rows, vault),
        limits=limits,
        today=today or today_in_england(),
        remembered_sensitive=_remembered(rows, vault),
    )
    if child is None:
        raise NotFound("no child has this ContactPoint ID")
    return child
