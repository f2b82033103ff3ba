"""Source records whose features and keys an older release derived (an older `blocking.SCHEME`),
and filing them again as the current one derives them (`services.records.key_scheme`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, LargeBinary, Text, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from contactpoint.platform.db import dialect_of
from services.records.linkage.blocking import SCHEME
from services.records.repository import key_changes
from services.records.repository.sealing import source_context, vault_of
from services.records.repository.source_keys import MatchKeyRow, delete_blocking, insert_names
from services.records.repository.writes import insert_rows, pack_hashes
from services.records.tables import blocking_keys, match_keys, source_records


@dataclass(frozen=True, slots=True)
class StaleSource:
    """A source record filed by an older scheme: the record as stored (serialised, opened), its
    child, the packed hashes filed for it, whether it is withdrawn (then it is filed under no
    key), and the seal key its row is sealed with."""

    id: str
    contactpoint_id: str
    record: bytes
    blocking: bytes
    withdrawn: bool
    sealed_with: int


@dataclass(frozen=True, slots=True)
class Refiled:
    """A stale record as the current release derives it: its features (JSON), blocking key
    hashes (none when withdrawn) and FindChild's name rows (none when withdrawn)."""

    stale: StaleSource
    features: str
    hashes: list[int]
    names: list[MatchKeyRow]


def stale_sources(conn: Connection, *, after: str, limit: int) -> list[StaleSource]:
    """Up to `limit` source records filed by an older scheme, in id order from after `after` (a
    newer scheme's rows, written by a newer release, are left alone). On
    PostgreSQL they stay locked until commit, and rows another replica holds are skipped."""
    query = (
        select(
            source_records.c.id,
            source_records.c.contactpoint_id,
            source_records.c.record,
            source_records.c.blocking,
            source_records.c.withdrawn,
            source_records.c.sealed_with,
        )
        .where(source_records.c.key_scheme < SCHEME, source_records.c.id > after)
        .order_by(source_records.c.id)
        .limit(limit)
    )
    if dialect_of(conn) == "postgresql":
        query = query.with_for_update(skip_locked=True, of=source_records)
    vault = vault_of(conn)
    return [
        StaleSource(
            r.id,
            r.contactpoint_id,
            vault.open(r.record, source_context(r.id, "record")),
            bytes(r.blocking),
            bool(r.withdrawn),
            int(r.sealed_with),
        )
        for r in conn.execute(query).all()
    ]


def stale_count(conn: Connection) -> int:
    """How many source records are keyed by an older scheme."""
    query = select(func.count()).select_from(source_records).where(source_records.c.key_scheme < SCHEME)
    return int(conn.execute(query).scalar_one())


_REFILED = (
    update(source_records)
    .where(source_records.c.id == bindparam("sid"))
    .values(blocking=bindparam("packed"), features=bindparam("sealed"), key_scheme=SCHEME)
)
# PostgreSQL: the whole batch in one statement.
_REFILED_ALL = text(
    "UPDATE source_records s SET blocking = d.packed, features = d.sealed, key_scheme = :scheme"
    " FROM unnest(:ids, :packed, :sealed) AS d(id, packed, sealed) WHERE s.id = d.id"
).bindparams(
    bindparam("ids", type_=ARRAY(Text)),
    bindparam("packed", type_=ARRAY(LargeBinary)),
    bindparam("sealed", type_=ARRAY(LargeBinary)),
)


def refile(conn: Connection, rows: Sequence[Refiled]) -> None:
    """File each stale record as the current release derives it: its features replaced (sealed
    with its row's key), its new blocking key hashes instead of its old ones (both logged as key
    changes), its name rows replaced; and note it as filed by the current scheme."""
    if not rows:
        return
    # The new pairs are deleted too, should any be held already (a key row nothing else names),
    # so that filing again can never fail on a duplicate.
    delete_blocking(
        conn,
        [(r.stale.id, r.stale.blocking) for r in rows] + [(r.stale.id, pack_hashes(r.hashes)) for r in rows],
    )
    new = [(h, r.stale.id) for r in rows for h in r.hashes]
    insert_rows(conn, blocking_keys, ("key", "source_id"), new)
    key_changes.note(conn, [h for h, _ in new])
    ids = [r.stale.id for r in rows]
    conn.execute(delete(match_keys).where(match_keys.c.source_id.in_(ids)))
    insert_names(conn, [(r.stale.id, r.stale.contactpoint_id, n) for r in rows for n in r.names])
    vault = vault_of(conn)
    packed = [pack_hashes(r.hashes) for r in rows]
    sealed = [
        vault.seal(r.features.encode(), source_context(r.stale.id, "features"), key_id=r.stale.sealed_with)
        for r in rows
    ]
    if dialect_of(conn) == "postgresql":
        conn.execute(_REFILED_ALL, {"scheme": SCHEME, "ids": ids, "packed": packed, "sealed": sealed})
    else:
        conn.execute(
            _REFILED,
            [{"sid": sid, "packed": p, "sealed": f} for sid, p, f in zip(ids, packed, sealed, strict=True)],
        )
