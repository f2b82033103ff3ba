"""Candidate retrieval for matching: blocking-key lookups, and the locks that serialise two
transactions ingesting the same child at the same moment."""

from __future__ import annotations

import zlib
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER

from contactpoint.platform.db import dialect_of
from services.records.repository import key_changes
from services.records.repository.rows import CandidateRow, SourceKey
from services.records.repository.sealing import source_context, vault_of
from services.records.repository.writes import one_of
from services.records.tables import ACTIVE, ARCHIVED, blocking_keys, children, source_records

# Locks are taken on one of LOCK_BUCKETS hashes of each name, under our own class id: a batch of
# any size takes at most LOCK_BUCKETS locks (PostgreSQL's shared lock table is small), and two
# transactions that share a name always share its bucket. A collision only serialises more.
LOCK_CLASS = 0x4350  # "CP"
LOCK_BUCKETS = 256
_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(:lock_class, k)) FROM unnest(:keys) WITH ORDINALITY AS t(k, n)"
).bindparams(bindparam("keys", type_=ARRAY(INTEGER)))


def lock_bucket(name: str) -> int:
    """The lock bucket of a name (a blocking key, a source key, a request id)."""
    return zlib.crc32(name.encode()) % LOCK_BUCKETS


def serialise_on(conn: Connection, names: Collection[str]) -> None:
    """Hold a transaction-scoped lock for each name until commit, so that two transactions that
    share a blocking key (the same child from two councils at once) run one after the other and
    the second sees the first's child. Taken in one sorted order, so they never deadlock. SQLite
    needs nothing: its writers already hold the one database lock (BEGIN IMMEDIATE)."""
    if not names or dialect_of(conn) != "postgresql":
        return
    conn.execute(_LOCK_KEYS, {"lock_class": LOCK_CLASS, "keys": sorted({lock_bucket(n) for n in names})})


def key_hits(conn: Connection, hashes: Collection[int]) -> frozenset[tuple[int, str]]:
    """Which source records are filed under any of the key hashes: (hash, source id) pairs, from
    an index-only scan of the blocking keys' primary key."""
    if not hashes:
        return frozenset()
    query = select(blocking_keys.c.key, blocking_keys.c.source_id).where(
        one_of(conn, blocking_keys.c.key, hashes)
    )
    return frozenset(map(tuple, conn.execute(query).all()))  # plain tuples: they sort in C


@dataclass(frozen=True)
class Hits:
    """`key_hits`, and where the key-change log stood when they were read (PostgreSQL)."""

    pairs: frozenset[tuple[int, str]]
    mark: tuple[int, ...] | None = None


# The hits and each shard's change number in one statement, so in one snapshot: a change the
# hits do not show is numbered after the mark.
_HITS_AND_MARK = text(
    "SELECT key, source_id, NULL AS mark FROM blocking_keys WHERE key = ANY(:keys)"
    " UNION ALL SELECT NULL, NULL, (SELECT array_agg(generation ORDER BY shard) FROM key_change_shards)"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


def read_hits(conn: Connection, hashes: Collection[int]) -> Hits:
    """`key_hits`, with the mark `hits_changed` starts from."""
    if dialect_of(conn) != "postgresql" or not hashes:
        return Hits(key_hits(conn, hashes))
    pairs: list[tuple[int, str]] = []
    mark: tuple[int, ...] | None = None
    # Tuples unpacked, not rows' attributes: a batch at 1,000,000 children reads ~8,000 of them.
    for key, source_id, generations in conn.execute(_HITS_AND_MARK, {"keys": sorted(hashes)}):
        if key is not None:
            pairs.append((key, source_id))
        elif generations is not None:
            mark = tuple(generations)
    return Hits(frozenset(pairs), mark)


def hits_changed(conn: Connection, hashes: Collection[int], seen: Hits) -> bool:
    """Whether `key_hits(hashes)` would now differ from `seen`. Exact: from the changes logged
    since `seen` was read (a few rows, usually none), or else by reading every key again."""
    if seen.mark is not None:
        changed = key_changes.changed_since(conn, seen.mark, hashes)
        if changed is not None:
            return changed
    return key_hits(conn, hashes) != seen.pairs


def candidates_of(conn: Connection, source_ids: Collection[str]) -> dict[str, CandidateRow]:
    """The source records among `source_ids` that are active and belong to an active or archived
    child (one child has one id for life: a record of an archived child joins it), by id: each
    read once, by primary key.

    Two index lookups (this and `key_hits`), not one join, so the cost follows the number of
    candidates, not the size of the registry, and each record's features cross the wire once
    however many of its keys matched."""
    if not source_ids:
        return {}
    query = (
        select(
            source_records.c.id,
            source_records.c.contactpoint_id,
            source_records.c.organisation,
            source_records.c.source_system,
            source_records.c.source_record_id,
            source_records.c.features,
            children.c.shielded,
            children.c.provisional_shield,
            children.c.status,
            children.c.archive_on,
        )
        .join(children, children.c.contactpoint_id == source_records.c.contactpoint_id)
        .where(one_of(conn, source_records.c.id, source_ids), children.c.status.in_((ACTIVE, ARCHIVED)))
    )
    vault = vault_of(conn)
    rows = conn.execute(query)  # unpacked, not rows' attributes: thousands a batch at scale
    return {
        source_id: CandidateRow(
            source_id=source_id,
            contactpoint_id=child,
            source=SourceKey(org, system, record_id),
            features=vault.open_text(features, source_context(source_id, "features")),
            shielded=bool(shielded or provisional),
            shielded_itself=bool(shielded),
            archived=status == ARCHIVED,
            archive_on=None if status == ARCHIVED else month,
        )
        for source_id, child, org, system, record_id, features, shielded, provisional, status, month in rows
    }


def source_ids_of(conn: Connection, contactpoint_ids: Collection[str]) -> dict[str, set[str]]:
    """The ids of each child's source records (withdrawn or not), by child: which of a record's
    weak-key hits belong to a child its strong keys already found (`linkage.cascade`). Through the
    child index, and without reading or opening any features."""
    if not contactpoint_ids:
        return {}
    query = select(source_records.c.contactpoint_id, source_records.c.id).where(
        one_of(conn, source_records.c.contactpoint_id, contactpoint_ids)
    )
    out: dict[str, set[str]] = {}
    for child, source_id in conn.execute(query).all():
        out.setdefault(child, set()).add(source_id)
    return out
