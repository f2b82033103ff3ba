"""Source records whose blocking keys an older version of `linkage.blocking` made, and filing
them again under the current one (`services.records.key_scheme`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, LargeBinary, Text, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from contactpoint.platform.db import dialect_of
from services.records.linkage.blocking import SCHEME
from services.records.repository import key_changes
from services.records.repository.sealing import source_context, vault_of
from services.records.repository.source_keys import delete_blocking
from services.records.repository.writes import insert_rows, pack_hashes
from services.records.tables import blocking_keys, source_records


@dataclass(frozen=True, slots=True)
class StaleSource:
    """A source record keyed by an older scheme: its features (opened), the packed hashes filed
    for it, and whether it is withdrawn (then it is filed under no key)."""

    id: str
    features: str
    blocking: bytes
    withdrawn: bool


def stale_sources(conn: Connection, *, after: str, limit: int) -> list[StaleSource]:
    """Up to `limit` source records keyed by an older scheme, in id order from after `after` (a
    newer scheme's rows, written by a newer release, are left alone). On
    PostgreSQL they stay locked until commit, and rows another replica holds are skipped."""
    query = (
        select(
            source_records.c.id,
            source_records.c.features,
            source_records.c.blocking,
            source_records.c.withdrawn,
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
            vault.open_text(r.features, source_context(r.id, "features")),
            bytes(r.blocking),
            bool(r.withdrawn),
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
    .values(blocking=bindparam("packed"), key_scheme=SCHEME)
)
# PostgreSQL: the whole batch in one statement.
_REFILED_ALL = text(
    "UPDATE source_records s SET blocking = d.packed, key_scheme = :scheme"
    " FROM unnest(:ids, :packed) AS d(id, packed) WHERE s.id = d.id"
).bindparams(bindparam("ids", type_=ARRAY(Text)), bindparam("packed", type_=ARRAY(LargeBinary)))


def refile(conn: Connection, rows: Sequence[tuple[StaleSource, list[int]]]) -> None:
    """File each stale record under its new key hashes instead of its old ones (both logged as
    key changes), and note it as keyed by the current scheme."""
    if not rows:
        return
    # The new pairs are deleted too, should any be held already (a key row nothing else names),
    # so that filing again can never fail on a duplicate.
    delete_blocking(
        conn,
        [(stale.id, stale.blocking) for stale, _ in rows] + [(stale.id, pack_hashes(h)) for stale, h in rows],
    )
    new = [(h, stale.id) for stale, hashes in rows for h in hashes]
    insert_rows(conn, blocking_keys, ("key", "source_id"), new)
    key_changes.note(conn, [h for h, _ in new])
    packed = [(stale.id, pack_hashes(hashes)) for stale, hashes in rows]
    if dialect_of(conn) == "postgresql":
        ids, blocks = zip(*packed, strict=True)
        conn.execute(_REFILED_ALL, {"scheme": SCHEME, "ids": list(ids), "packed": list(blocks)})
    else:
        conn.execute(_REFILED, [{"sid": sid, "packed": block} for sid, block in packed])
