"""Source records: stored sealed, read back as typed rows, replaced, withdrawn, moved and deleted
(their keys in `source_keys`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Text,
    and_,
    bindparam,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from contactpoint.platform.db import dialect_of
from contactpoint.platform.vault import Vault
from services.records.linkage.blocking import SCHEME as KEY_SCHEME
from services.records.repository.remembered_services import seal_services
from services.records.repository.rows import SourceKey, SourceRow
from services.records.repository.sealing import source_context, vault_of
from services.records.repository.source_keys import MatchKeyRow, delete_keys, insert_keys
from services.records.repository.writes import insert_rows, one_of, pack_hashes
from services.records.sensitive_memory import FlaggedService
from services.records.tables import match_keys, source_records


@dataclass(frozen=True, slots=True)
class NewSource:
    """A source record to store, with its keys and how matching placed it."""

    id: str
    key: SourceKey
    contactpoint_id: str
    record: bytes
    features: str
    content_hash: str
    as_of: dt.datetime | None
    match_outcome: str
    match_score: float | None
    match_reasons: Sequence[str]
    blocking_hashes: Sequence[int]  # the blocking keys as stored (repository.writes.key_hash)
    names: Sequence[MatchKeyRow]
    # The services it remembers as sensitive (`sensitive_memory`), stored sealed beside it.
    sensitive_services: Sequence[FlaggedService] = ()


# --- source records -----------------------------------------------------------------------------


# What a SourceRow holds, and no more: not the match reasons (JSON, parsed on every read) or keys.
_ROW = (
    *(source_records.c[name] for name in SourceRow.__dataclass_fields__ if name != "key"),
    *(source_records.c[name] for name in SourceKey.__dataclass_fields__),
)


def sources_by_key(conn: Connection, keys: Collection[SourceKey]) -> dict[SourceKey, SourceRow]:
    """Stored source records by their names (withdrawn ones included): on PostgreSQL one query
    for the whole batch, joined to its names unnested (a probe of the unique key each)."""
    vault = vault_of(conn)
    return {row.key: row for row in (SourceRow.of(r, vault) for r in _by_key(conn, keys, _ROW))}


def children_of_records(conn: Connection, keys: Collection[SourceKey]) -> dict[SourceKey, str]:
    """The child each named source record is filed under now (withdrawn ones included)."""
    c = source_records.c
    columns = (c.organisation, c.source_system, c.source_record_id, c.contactpoint_id)
    return {
        SourceKey(r.organisation, r.source_system, r.source_record_id): r.contactpoint_id
        for r in _by_key(conn, keys, columns)
    }


def _by_key(conn: Connection, keys: Collection[SourceKey], columns: Sequence[Any]) -> list[Row[Any]]:
    if not keys:
        return []
    if dialect_of(conn) == "postgresql":
        ordered = sorted(keys, key=lambda k: (k.organisation, k.source_system, k.source_record_id))
        names = (
            text(
                "SELECT * FROM unnest(:organisations, :systems, :ids)"
                " AS n(organisation, source_system, source_record_id)"
            )
            .bindparams(
                bindparam("organisations", [k.organisation for k in ordered], type_=ARRAY(Text)),
                bindparam("systems", [k.source_system for k in ordered], type_=ARRAY(Text)),
                bindparam("ids", [k.source_record_id for k in ordered], type_=ARRAY(Text)),
            )
            .columns(organisation=Text, source_system=Text, source_record_id=Text)
            .subquery("n")
        )
        query = select(*columns).join(
            names,
            (source_records.c.organisation == names.c.organisation)
            & (source_records.c.source_system == names.c.source_system)
            & (source_records.c.source_record_id == names.c.source_record_id),
        )
        return list(conn.execute(query).all())
    by_system: dict[tuple[str, str], set[str]] = {}
    for k in keys:
        by_system.setdefault((k.organisation, k.source_system), set()).add(k.source_record_id)
    rows: list[Row[Any]] = []
    # SQLite: one query per system (a batch is one organisation's, from a few systems).
    for (organisation, system), ids in sorted(by_system.items()):
        query = select(*columns).where(
            source_records.c.organisation == organisation,
            source_records.c.source_system == system,
            one_of(conn, source_records.c.source_record_id, ids),
        )
        rows += conn.execute(query).all()
    return rows


_SOURCE_COLUMNS = (
    "id",
    "organisation",
    "source_system",
    "source_record_id",
    "contactpoint_id",
    "record",
    "features",
    "sealed_with",
    "blocking",
    "key_scheme",
    "content_hash",
    "as_of",
    "withdrawn",
    "match_outcome",
    "match_score",
    "match_reasons",
    "created_at",
    "updated_at",
    "sensitive_services",
)


def sealed(vault: Vault, r: NewSource, key: int) -> tuple[bytes, bytes, int]:
    """A record and its features sealed with one key, and that key (the row's `sealed_with`)."""
    return (
        vault.seal(r.record, source_context(r.id, "record"), key_id=key),
        vault.seal(r.features.encode(), source_context(r.id, "features"), key_id=key),
        key,
    )


def insert_sources(conn: Connection, rows: Sequence[NewSource], *, now: dt.datetime) -> None:
    """Store new source records (sealed) with their blocking and name keys."""
    vault = vault_of(conn)
    key = vault.newest
    insert_rows(
        conn,
        source_records,
        _SOURCE_COLUMNS,
        [
            (
                r.id,
                r.key.organisation,
                r.key.source_system,
                r.key.source_record_id,
                r.contactpoint_id,
                *sealed(vault, r, key),
                pack_hashes(r.blocking_hashes),
                KEY_SCHEME,
                r.content_hash,
                r.as_of,
                False,
                r.match_outcome,
                r.match_score,
                list(r.match_reasons),
                now,
                now,
                seal_services(vault, r.id, r.sensitive_services, key),
            )
            for r in rows
        ],
    )
    insert_keys(conn, rows)


def withdraw(conn: Connection, source_id: str, *, now: dt.datetime) -> None:
    """Withdraw one source record: it no longer takes part in its child or in matching."""
    delete_keys(conn, [source_id])
    conn.execute(
        update(source_records)
        .where(source_records.c.id == source_id)
        .values(withdrawn=True, withdrawn_at=now, updated_at=now, blocking=pack_hashes([]))
    )


def _sources_of(conn: Connection, contactpoint_ids: Collection[str], *, withdrawn: bool) -> list[SourceRow]:
    if not contactpoint_ids:
        return []
    query = select(*_ROW).where(
        one_of(conn, source_records.c.contactpoint_id, contactpoint_ids),
        source_records.c.withdrawn.is_(withdrawn),
    )
    vault = vault_of(conn)
    return [SourceRow.of(r, vault) for r in conn.execute(query).all()]


def active_sources(conn: Connection, contactpoint_ids: Collection[str]) -> list[SourceRow]:
    """The not-withdrawn source records of some children (in no particular order)."""
    return _sources_of(conn, contactpoint_ids, withdrawn=False)


def active_of(contactpoint_ids: Collection[str]) -> tuple[ColumnElement[bool], ...]:
    # The conditions for the active (not withdrawn) source records of some children.
    return (
        source_records.c.contactpoint_id.in_(sorted(contactpoint_ids)),
        source_records.c.withdrawn.is_(False),
    )


def versions_held(
    conn: Connection,
    contactpoint_ids: Collection[str],
    *,
    received_since: dt.datetime | None = None,
    withdrawn_too: bool = False,
) -> dict[str, str]:
    """The content hash of each active source record of some children (`withdrawn_too`: and of
    each withdrawn one), by source id (nothing opened); with `received_since`, only those whose
    version was received, or withdrawn, then or after (a record moved between children keeps its
    time)."""
    if not contactpoint_ids:
        return {}
    held = source_records.c.contactpoint_id.in_(sorted(contactpoint_ids))
    query = select(source_records.c.id, source_records.c.content_hash).where(
        held if withdrawn_too else and_(*active_of(contactpoint_ids))
    )
    if received_since is not None:
        query = query.where(source_records.c.updated_at >= received_since)
    return {r.id: r.content_hash for r in conn.execute(query).all()}


def withdrawn_sources(conn: Connection, contactpoint_ids: Collection[str]) -> list[SourceRow]:
    """The withdrawn source records of some children (in no particular order)."""
    return _sources_of(conn, contactpoint_ids, withdrawn=True)


def all_sources(conn: Connection, contactpoint_id: str) -> list[SourceRow]:
    """Every source record of one child, withdrawn ones included."""
    query = select(*_ROW).where(source_records.c.contactpoint_id == contactpoint_id)
    vault = vault_of(conn)
    return [SourceRow.of(r, vault) for r in conn.execute(query).all()]


def move_sources(
    conn: Connection,
    source_ids: Collection[str],
    *,
    to: str,
    only_from: Collection[str] | None = None,
) -> None:
    """Move source records (and their name keys) to another child; with `only_from`, only those
    now held by one of those children. Each keeps its time: a record moved is not a record newly
    received (found by review: moved with the time of the move, the retired child's records became
    the merged child's newest, its address and name the merged child's, whichever was sent
    last; and an unmerge gave the child put back its records in another order)."""
    if not source_ids:
        return
    ids = sorted(source_ids)
    if only_from is not None:
        held = select(source_records.c.id).where(
            source_records.c.id.in_(ids), source_records.c.contactpoint_id.in_(sorted(only_from))
        )
        ids = sorted(r.id for r in conn.execute(held))
        if not ids:
            return
    conn.execute(update(source_records).where(source_records.c.id.in_(ids)).values(contactpoint_id=to))
    conn.execute(update(match_keys).where(match_keys.c.source_id.in_(ids)).values(contactpoint_id=to))


def delete_sources_of(conn: Connection, contactpoint_ids: Collection[str]) -> int:
    """Delete every source record (and key) of some children: their personal data is gone."""
    if not contactpoint_ids:
        return 0
    ids = sorted(contactpoint_ids)
    source_ids = [
        r.id
        for r in conn.execute(select(source_records.c.id).where(source_records.c.contactpoint_id.in_(ids)))
    ]
    delete_keys(conn, source_ids)
    conn.execute(delete(source_records).where(source_records.c.contactpoint_id.in_(ids)))
    return len(source_ids)
