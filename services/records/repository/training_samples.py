"""What re-estimating the match model reads (`services.records.training`): a sample of records, and
pairs of records that share a blocking key. Both cost what they read, not the registry's size."""

from __future__ import annotations

import random
from collections.abc import Iterator

from sqlalchemy import Connection, select, tuple_

from services.records.repository.sealing import source_context, vault_of
from services.records.repository.writes import one_of
from services.records.tables import blocking_keys, source_records

# Blocking-key rows read a statement, and records' features opened a statement.
CHUNK = 10_000
_LOWEST = -(2**63)


def _keys_from(conn: Connection, start: int, stop: int | None) -> Iterator[tuple[int, str]]:
    # (key, source id) in index order, from `start` up to (not including) `stop`, a chunk at a time.
    after: tuple[int, str] | None = None
    while True:
        query = select(blocking_keys.c.key, blocking_keys.c.source_id)
        if after is None:
            query = query.where(blocking_keys.c.key >= start)
        else:
            query = query.where(tuple_(blocking_keys.c.key, blocking_keys.c.source_id) > tuple_(*after))
        if stop is not None:
            query = query.where(blocking_keys.c.key < stop)
        rows = conn.execute(query.order_by(blocking_keys.c.key, blocking_keys.c.source_id).limit(CHUNK)).all()
        yield from ((key, source_id) for key, source_id in rows)
        if len(rows) < CHUNK:
            return
        after = (rows[-1][0], rows[-1][1])


def _buckets(rows: Iterator[tuple[int, str]]) -> Iterator[list[str]]:
    # The source ids filed under each key, key by key (rows come in key order).
    current: int | None = None
    ids: list[str] = []
    for key, source_id in rows:
        if key != current:
            if len(ids) > 1:
                yield ids
            current, ids = key, []
        ids.append(source_id)
    if len(ids) > 1:
        yield ids


def blocked_pair_ids(conn: Connection, *, limit: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to `limit` distinct pairs of source ids filed under one blocking key. The keys are keyed
    hashes, so their index order is a random one: the pairs are those of the keys from a point
    chosen by `seed` on (then from the lowest key up to it), read along the primary key's index.
    Before, one statement joined the whole table to itself and sorted every pair (20.8 s for
    20,000 pairs at 1,000,000 children, and minutes for the command's default of 200,000)."""
    if limit <= 0:
        return []
    start = random.Random(seed).randrange(_LOWEST, 2**63)
    pairs: dict[tuple[str, str], None] = {}
    for first, stop in ((start, None), (_LOWEST, start)):
        for ids in _buckets(_keys_from(conn, first, stop)):
            for i, a in enumerate(ids):
                for b in ids[i + 1 :]:
                    pairs[(a, b) if a < b else (b, a)] = None
                    if len(pairs) >= limit:
                        return list(pairs)
    return list(pairs)


def blocked_pairs(conn: Connection, *, limit: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to `limit` pairs of active source records that share a blocking key (features JSON of
    each): what EM learns m from."""
    ids = blocked_pair_ids(conn, limit=limit, seed=seed)
    wanted = sorted({sid for pair in ids for sid in pair})
    vault = vault_of(conn)
    features: dict[str, str] = {}
    for i in range(0, len(wanted), CHUNK):
        query = select(source_records.c.id, source_records.c.features).where(
            one_of(conn, source_records.c.id, wanted[i : i + CHUNK])
        )
        for source_id, sealed in conn.execute(query).all():
            features[source_id] = vault.open_text(sealed, source_context(source_id, "features"))
    return [(features[a], features[b]) for a, b in ids if a in features and b in features]


def sample_features(conn: Connection, *, limit: int) -> list[str]:
    """Features of up to `limit` active source records (for name frequencies and random pairs)."""
    query = (
        select(source_records.c.id, source_records.c.features)
        .where(source_records.c.withdrawn.is_(False))
        .limit(limit)
    )
    vault = vault_of(conn)
    return [vault.open_text(r.features, source_context(r.id, "features")) for r in conn.execute(query).all()]
