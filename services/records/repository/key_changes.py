"""The log of blocking-key changes (PostgreSQL): what lets a batch that read its candidates before
taking its key locks check, under the locks, whether any of its keys changed meanwhile, at the
cost of the changes made since rather than of reading all its keys again.

Every insert or delete of blocking keys notes the key hashes it touched; a transaction's notes
are written as one change, numbered in its shard, as the last statement before it commits (a
SQLAlchemy commit event, so no write path can forget it, and the shard's counter row is held
only from there to the commit: a writer holding it waits on nothing else, so it cannot take part
in a deadlock). The row lock keeps one shard's numbers in commit order. A reader takes each
shard's number in the same statement (the same snapshot) as its key hits, and later reads the
changes numbered after it. A writer that filed a record under one of its keys held that key's
lock, so once the reader holds the same lock that writer has committed, and its change is in
the log (exact: the hashes themselves, not a digest of them). Deletions (a withdrawal, a purge)
take no key locks; they cannot make a second child, and are caught if committed by then."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, and_, delete, event, or_, select, text
from sqlalchemy.engine import Engine

from contactpoint.platform.db import dialect_of
from services.records.repository.writes import pack_hashes, unpack_hashes
from services.records.tables import key_change_shards, key_changes

SHARDS = 16  # as seeded by migration 0003
# Changes kept per shard: a batch takes well under a second from reading its keys to locking them;
# one whose mark is older than the log reads all its keys again instead.
RETAINED = 256

_NOTE = text(
    "WITH shard AS (UPDATE key_change_shards SET generation = generation + 1"
    " WHERE shard = txid_current() % :shards RETURNING shard, generation)"
    " INSERT INTO key_changes (shard, generation, hashes) SELECT shard, generation, :hashes FROM shard"
    " RETURNING shard, generation"
)


_PENDING = "contactpoint.records.key_changes"  # in Connection.info until commit or rollback


def note(conn: Connection, hashes: Collection[int]) -> None:
    """Log that the blocking keys `hashes` were written or deleted in this transaction (written
    just before it commits). Nothing on SQLite, whose one writer at a time needs no such check."""
    if not hashes or dialect_of(conn) != "postgresql":
        return
    conn.info.setdefault(_PENDING, set()).update(hashes)


@event.listens_for(Engine, "commit")
def _write_before_commit(conn: Connection) -> None:
    pending = conn.info.pop(_PENDING, None)
    if not pending:
        return
    packed = pack_hashes(sorted(pending))
    shard, generation = conn.execute(_NOTE, {"shards": SHARDS, "hashes": packed}).one()
    if generation % 64 == 0:
        conn.execute(
            delete(key_changes).where(
                key_changes.c.shard == shard, key_changes.c.generation <= generation - RETAINED
            )
        )


@event.listens_for(Engine, "rollback")
def _forget(conn: Connection) -> None:
    conn.info.pop(_PENDING, None)


def changed_since(conn: Connection, mark: Sequence[int], hashes: Collection[int]) -> bool | None:
    """Whether any of `hashes` was written or deleted after `mark` (each shard's number, as
    `candidates.read_hits` took it); None when the log no longer reaches back that far."""
    if len(mark) != SHARDS:
        return None
    now = dict(conn.execute(select(key_change_shards.c.shard, key_change_shards.c.generation)).all())
    newer = [
        (shard, seen, now.get(shard, seen)) for shard, seen in enumerate(mark) if now.get(shard, seen) > seen
    ]
    if not newer:
        return False
    rows = conn.execute(
        select(key_changes.c.shard, key_changes.c.hashes).where(
            or_(
                *(
                    and_(
                        key_changes.c.shard == shard,
                        key_changes.c.generation > seen,
                        key_changes.c.generation <= latest,
                    )
                    for shard, seen, latest in newer
                )
            )
        )
    ).all()
    if len(rows) != sum(latest - seen for _, seen, latest in newer):
        return None  # some were pruned
    wanted = set(hashes)
    return any(not wanted.isdisjoint(unpack_hashes(bytes(packed))) for _, packed in rows)
