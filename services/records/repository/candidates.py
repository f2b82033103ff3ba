"""Candidate retrieval for matching: blocking-key lookups, and the locks that serialise two
transactions ingesting the same child at the same moment."""

from __future__ import annotations

import zlib
from collections.abc import Collection

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER, TEXT

from contactpoint.platform.db import dialect_of
from services.records.repository.rows import CandidateRow, SourceKey
from services.records.repository.writes import one_of
from services.records.tables import ACTIVE, blocking_keys, children, source_records

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


_CHANGED = text(
    "SELECT count(*), count(*) FILTER (WHERE seen.key IS NULL) FROM blocking_keys b"
    " LEFT JOIN unnest(:seen_keys, :seen_sources) AS seen(key, source_id)"
    " ON seen.key = b.key AND seen.source_id = b.source_id WHERE b.key = ANY(:keys)"
).bindparams(
    bindparam("keys", type_=ARRAY(BIGINT)),
    bindparam("seen_keys", type_=ARRAY(BIGINT)),
    bindparam("seen_sources", type_=ARRAY(TEXT)),
)


def hits_changed(conn: Connection, hashes: Collection[int], seen: frozenset[tuple[int, str]]) -> bool:
    """Whether `key_hits(hashes)` would now differ from `seen`: exactly, but answered by the
    server in one row (as many rows now, none of them unseen), not by sending every hit again."""
    if dialect_of(conn) != "postgresql":
        return key_hits(conn, hashes) != seen
    keys, sources = (list(c) for c in zip(*seen, strict=True)) if seen else ([], [])
    now, unseen = conn.execute(
        _CHANGED, {"keys": sorted(hashes), "seen_keys": keys, "seen_sources": sources}
    ).one()
    return bool(unseen or now != len(seen))


def candidates_of(conn: Connection, source_ids: Collection[str]) -> dict[str, CandidateRow]:
    """The source records among `source_ids` that are active and belong to an active child, by
    id: each read once, by primary key.

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
        )
        .join(children, children.c.contactpoint_id == source_records.c.contactpoint_id)
        .where(one_of(conn, source_records.c.id, source_ids), children.c.status == ACTIVE)
    )
    return {
        r.id: CandidateRow(
            source_id=r.id,
            contactpoint_id=r.contactpoint_id,
            source=SourceKey(r.organisation, r.source_system, r.source_record_id),
            features=r.features,
            shielded=bool(r.shielded or r.provisional_shield),
        )
        for r in conn.execute(query).all()
    }


def blocked_pairs(conn: Connection, *, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` pairs of active source records that share a blocking key (features JSON of
    each): what EM learns m from."""
    a, b = blocking_keys.alias("a"), blocking_keys.alias("b")
    sa, sb = source_records.alias("sa"), source_records.alias("sb")
    query = (
        select(sa.c.features, sb.c.features)
        .select_from(a)
        .join(b, (a.c.key == b.c.key) & (a.c.source_id < b.c.source_id))
        .join(sa, sa.c.id == a.c.source_id)
        .join(sb, sb.c.id == b.c.source_id)
        .distinct()
        .limit(limit)
    )
    return [(str(x), str(y)) for x, y in conn.execute(query).all()]


def sample_features(conn: Connection, *, limit: int) -> list[str]:
    """Features of up to `limit` active source records (for name frequencies and random pairs)."""
    query = select(source_records.c.features).where(source_records.c.withdrawn.is_(False)).limit(limit)
    return [str(r.features) for r in conn.execute(query).all()]
