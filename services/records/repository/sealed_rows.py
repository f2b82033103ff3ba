"""The sealed columns as a whole: the data keys' check values, rows still held in the clear from
before sealing, rows sealed with an older key (to re-seal after a rotation), and how many rows
each key seals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, select, type_coerce, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import NullType

from contactpoint.platform.db import dialect_of
from contactpoint.platform.vault import Vault
from services.records.linkage.blocking import SCHEME as KEY_SCHEME
from services.records.repository.remembered_services import open_services, seal_services
from services.records.repository.rows import aware
from services.records.repository.sealing import MODEL_CONTEXT, names_context, source_context, vault_of
from services.records.repository.source_keys import delete_keys
from services.records.tables import (
    data_keys,
    key_changes,
    match_keys,
    match_models,
    source_records,
)

# What each key's check value seals (or, for the index key, hashes).
CHECK_CONTEXT = b"data_keys:check"
CHECK_PLAIN = b"contactpoint records data key check"
INDEX_KEY_ID = 0


def checks(conn: Connection) -> dict[int, bytes]:
    """The check value of every data key this database has seen, by id (0: the index key)."""
    return {int(r.key_id): bytes(r.check_value) for r in conn.execute(select(data_keys)).all()}


def add_check(conn: Connection, key_id: int, check_value: bytes, *, now: dt.datetime) -> None:
    """Remember a key's check value (a replica that got there first wins; both are valid)."""
    values = {"key_id": key_id, "check_value": check_value, "created_at": now}
    statement = (pg_insert if dialect_of(conn) == "postgresql" else sqlite_insert)(data_keys).values(values)
    conn.execute(statement.on_conflict_do_nothing(index_elements=["key_id"]))


def check_registered_at(conn: Connection, key_id: int) -> dt.datetime | None:
    """When a replica first registered seal key `key_id` (its first use), if any has."""
    row = conn.execute(select(data_keys.c.created_at).where(data_keys.c.key_id == key_id)).first()
    return aware(row.created_at) if row is not None else None


def forget_clear_hashes(conn: Connection, source_ids: Sequence[str]) -> None:
    """Delete the unkeyed blocking hashes filed for records held from before sealing, without
    logging them as changes (the log would keep them), then drop the change log itself: a batch
    whose mark is gone reads its keys again, which is always correct."""
    if not source_ids:
        return
    delete_keys(conn, source_ids, log_changes=False)
    conn.execute(key_changes.delete())


def forget_check(conn: Connection, key_id: int) -> None:
    """A retired seal key's check value goes with it."""
    conn.execute(data_keys.delete().where(data_keys.c.key_id == key_id))


_SEALED_TABLES: tuple[Table, ...] = (source_records, match_keys, match_models)


def rows_by_key(conn: Connection) -> dict[int | None, int]:
    """How many rows each seal key seals, over every sealed table (None: rows in the clear)."""
    counts: dict[int | None, int] = {}
    for table in _SEALED_TABLES:
        query = select(table.c.sealed_with, func.count()).group_by(table.c.sealed_with)
        for key_id, n in conn.execute(query).all():
            counts[key_id] = counts.get(key_id, 0) + int(n)
    return counts


# --- rows held from before sealing ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClearSource:
    """A source record stored before sealing existed (its columns as they were stored)."""

    id: str
    contactpoint_id: str
    record: bytes
    features: str
    withdrawn: bool


def _raw(value: object) -> bytes:
    """A column value as stored, text or bytes (SQLite keeps the text a migration copied over)."""
    if isinstance(value, str):
        return value.encode()
    assert isinstance(value, bytes | memoryview)
    return bytes(value)


def clear_sources(conn: Connection, *, limit: int) -> list[ClearSource]:
    """Up to `limit` source records still in the clear."""
    query = (
        select(
            source_records.c.id,
            source_records.c.contactpoint_id,
            source_records.c.record,
            type_coerce(source_records.c.features, NullType()).label("features"),
            source_records.c.withdrawn,
        )
        .where(source_records.c.sealed_with.is_(None))
        .order_by(source_records.c.id)
        .limit(limit)
    )
    if dialect_of(conn) == "postgresql":
        # Replicas starting together each take rows no other is converting (SQLite has one writer).
        query = query.with_for_update(skip_locked=True, of=source_records)
    return [
        ClearSource(r.id, r.contactpoint_id, bytes(r.record), _raw(r.features).decode(), bool(r.withdrawn))
        for r in conn.execute(query).all()
    ]


def clear_count(conn: Connection) -> int:
    """How many source records are still held in the clear."""
    query = select(func.count()).select_from(source_records).where(source_records.c.sealed_with.is_(None))
    return int(conn.execute(query).scalar_one())


def seal_source(conn: Connection, row: ClearSource, *, blocking: bytes) -> bool:
    """Seal one source record held in the clear, with its re-keyed blocking hashes; False when
    another replica sealed it first."""
    vault = vault_of(conn)
    key = vault.newest
    result = conn.execute(
        update(source_records)
        .where(source_records.c.id == row.id, source_records.c.sealed_with.is_(None))
        .values(
            record=vault.seal(row.record, source_context(row.id, "record"), key_id=key),
            features=vault.seal(row.features.encode(), source_context(row.id, "features"), key_id=key),
            blocking=blocking,
            key_scheme=KEY_SCHEME,
            sealed_with=key,
        )
    )
    return bool(result.rowcount)


def seal_clear_models(conn: Connection) -> int:
    """Seal every match model held in the clear; how many."""
    vault = vault_of(conn)
    query = select(match_models.c.id, type_coerce(match_models.c.model, NullType()).label("model")).where(
        match_models.c.sealed_with.is_(None)
    )
    rows = conn.execute(query).all()
    key = vault.newest
    for r in rows:
        conn.execute(
            update(match_models)
            .where(match_models.c.id == r.id, match_models.c.sealed_with.is_(None))
            .values(model=vault.seal(_raw(r.model), MODEL_CONTEXT, key_id=key), sealed_with=key)
        )
    return len(rows)


# --- re-sealing under the newest key -------------------------------------------------------------


def reseal_batch(conn: Connection, vault: Vault, *, limit: int) -> int:
    """Re-seal up to `limit` rows of each sealed table that an older key sealed; how many were.
    Each update is conditional on the sealed bytes it read, so a row rewritten meanwhile (by
    ingestion, on any replica) is left as that write left it."""
    newest = vault.newest
    done = 0
    query = (
        select(
            source_records.c.id,
            source_records.c.record,
            source_records.c.features,
            source_records.c.sensitive_services,
        )
        .where(source_records.c.sealed_with < newest)
        .limit(limit)
    )
    for r in conn.execute(query).all():
        ctx_record, ctx_features = source_context(r.id, "record"), source_context(r.id, "features")
        services = open_services(vault, r.id, r.sensitive_services)
        done += conn.execute(
            update(source_records)
            .where(
                source_records.c.id == r.id,
                source_records.c.record == r.record,
                source_records.c.features == r.features,
                source_records.c.sensitive_services.is_not_distinct_from(r.sensitive_services),
            )
            .values(
                record=vault.seal(vault.open(r.record, ctx_record), ctx_record, key_id=newest),
                features=vault.seal(vault.open(r.features, ctx_features), ctx_features, key_id=newest),
                sensitive_services=seal_services(vault, r.id, services, newest),
                sealed_with=newest,
            )
        ).rowcount
    names = (
        select(match_keys.c.source_id, match_keys.c.position, match_keys.c.names)
        .where(match_keys.c.sealed_with < newest)
        .limit(limit)
    )
    for n in conn.execute(names).all():
        ctx = names_context(n.source_id, n.position)
        done += conn.execute(
            update(match_keys)
            .where(
                match_keys.c.source_id == n.source_id,
                match_keys.c.position == n.position,
                match_keys.c.names == n.names,
            )
            .values(names=vault.seal(vault.open(n.names, ctx), ctx, key_id=newest), sealed_with=newest)
        ).rowcount
    models = select(match_models.c.id, match_models.c.model).where(match_models.c.sealed_with < newest)
    for m in conn.execute(models).all():
        done += conn.execute(
            update(match_models)
            .where(match_models.c.id == m.id, match_models.c.model == m.model)
            .values(
                model=vault.seal(vault.open(m.model, MODEL_CONTEXT), MODEL_CONTEXT, key_id=newest),
                sealed_with=newest,
            )
        ).rowcount
    return done


def key_ids_in_use(conn: Connection) -> Sequence[int]:
    """The seal keys some row is sealed with, asked at every start-up (`data_keys.verify_keys`).

    Not `rows_by_key`, which counts every row: at 1,000,000 children that read the whole of two
    indexes before the service could serve (133 ms warm, about 25,000 pages each cold), and it
    grows with the registry. A registry holds rows of a handful of keys (the newest, and older
    ones while re-sealing), so each key is found by one step along the `sealed_with` index from
    the one before it (1.8 ms at 1,000,000). The match models, a few rows, have no such index."""
    found: set[int] = set()
    for table in _SEALED_TABLES:
        after: int | None = None
        while True:
            query = select(func.min(table.c.sealed_with))
            if after is not None:
                query = query.where(table.c.sealed_with > after)
            key_id = conn.execute(query).scalar()
            if key_id is None:
                break
            found.add(key_id)
            after = key_id
    return sorted(found)
