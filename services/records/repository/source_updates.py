"""New content for source records already held: a changed record's content and keys replaced,
an unchanged record's newer `as_of`. On PostgreSQL one statement of each kind for a batch, the
rows locked in id order (one UPDATE a record cost a feed sent again with changes more than its
new records did, `docs/benchmarks.md`); on SQLite one statement a record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, DateTime, Integer, LargeBinary, Text, bindparam, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from contactpoint.platform.db import dialect_of
from services.records.linkage.blocking import SCHEME as KEY_SCHEME
from services.records.repository.sealing import vault_of
from services.records.repository.source_keys import delete_keys, insert_keys
from services.records.repository.sources import NewSource, seal_services, sealed
from services.records.repository.writes import pack_hashes
from services.records.tables import source_records

_REPLACED = (
    update(source_records)
    .where(source_records.c.id == bindparam("sid"))
    .values(
        record=bindparam("v_record"),
        features=bindparam("v_features"),
        sealed_with=bindparam("v_key"),
        sensitive_services=bindparam("v_services"),
        blocking=bindparam("v_blocking"),
        key_scheme=KEY_SCHEME,
        content_hash=bindparam("v_hash"),
        as_of=bindparam("v_as_of"),
        withdrawn=False,
        withdrawn_at=None,
        updated_at=bindparam("v_now"),
    )
)


# PostgreSQL: every record in one statement, its rows locked in id order as the statement per
# record did (one UPDATE each cost a feed sent again with changes more than its new records did).
_REPLACED_ARRAYS = {  # each array of _REPLACED_EACH, from the parameter of _REPLACED it carries
    "ids": "sid",
    "records": "v_record",
    "features": "v_features",
    "keys": "v_key",
    "services": "v_services",
    "blockings": "v_blocking",
    "hashes": "v_hash",
    "as_ofs": "v_as_of",
}
_REPLACED_EACH = text(
    "UPDATE source_records s SET record = d.record, features = d.features, sealed_with = d.sealed_with,"
    " sensitive_services = d.services, blocking = d.blocking, key_scheme = :scheme,"
    " content_hash = d.content_hash, as_of = d.as_of, withdrawn = false, withdrawn_at = NULL,"
    " updated_at = :now FROM ("
    " SELECT x.id, t.record, t.features, t.sealed_with, t.services, t.blocking, t.content_hash, t.as_of"
    " FROM unnest(:ids, :records, :features, :keys, :services, :blockings, :hashes, :as_ofs)"
    " AS t(id, record, features, sealed_with, services, blocking, content_hash, as_of)"
    " JOIN source_records x ON x.id = t.id ORDER BY x.id FOR UPDATE OF x"
    ") AS d WHERE s.id = d.id"
).bindparams(
    bindparam("ids", type_=ARRAY(Text)),
    bindparam("records", type_=ARRAY(LargeBinary)),
    bindparam("features", type_=ARRAY(LargeBinary)),
    bindparam("keys", type_=ARRAY(Integer)),
    bindparam("services", type_=ARRAY(LargeBinary)),
    bindparam("blockings", type_=ARRAY(LargeBinary)),
    bindparam("hashes", type_=ARRAY(Text)),
    bindparam("as_ofs", type_=ARRAY(DateTime(timezone=True))),
    scheme=KEY_SCHEME,
)


def replace_sources(conn: Connection, rows: Sequence[NewSource], *, now: dt.datetime) -> None:
    """Source records' new content (each stays with its child), their keys replaced: one
    statement of each kind for them all (one of each a record made a feed sent again with changes
    cost several times what new records do: `docs/benchmarks.md`)."""
    if not rows:
        return
    delete_keys(conn, [row.id for row in rows])
    vault = vault_of(conn)
    key = vault.newest  # one key for the whole batch, whatever a reload does meanwhile
    params = []
    for row in rows:
        record, features, sealed_with = sealed(vault, row, key)
        params.append(
            {
                "sid": row.id,
                "v_record": record,
                "v_features": features,
                "v_key": sealed_with,
                "v_services": seal_services(vault, row.id, row.sensitive_services, key),
                "v_blocking": pack_hashes(row.blocking_hashes),
                "v_hash": row.content_hash,
                "v_as_of": row.as_of,
                "v_now": now,
            }
        )
    if dialect_of(conn) == "postgresql":
        params.sort(key=lambda p: str(p["sid"]))
        columns = {name: [p[param] for p in params] for name, param in _REPLACED_ARRAYS.items()}
        conn.execute(_REPLACED_EACH, {**columns, "now": now})
    else:
        conn.execute(_REPLACED, params)
    insert_keys(conn, rows)


_AS_OF = (
    update(source_records).where(source_records.c.id == bindparam("sid")).values(as_of=bindparam("v_as_of"))
)


# PostgreSQL: one statement for them all, the rows locked in id order.
_AS_OF_EACH = text(
    "UPDATE source_records s SET as_of = d.as_of FROM ("
    " SELECT x.id, t.as_of FROM unnest(:sids, :as_ofs) AS t(id, as_of)"
    " JOIN source_records x ON x.id = t.id ORDER BY x.id FOR UPDATE OF x"
    ") AS d WHERE s.id = d.id"
).bindparams(bindparam("sids", type_=ARRAY(Text)), bindparam("as_ofs", type_=ARRAY(DateTime(timezone=True))))


def set_as_of(conn: Connection, newer: Sequence[tuple[str, dt.datetime]]) -> None:
    """Newer `as_of`s for unchanged records, (source id, as_of) each, in one statement."""
    if not newer:
        return
    if dialect_of(conn) == "postgresql":
        ordered = sorted(newer)
        conn.execute(_AS_OF_EACH, {"sids": [i for i, _ in ordered], "as_ofs": [a for _, a in ordered]})
    else:
        conn.execute(_AS_OF, [{"sid": source_id, "v_as_of": as_of} for source_id, as_of in newer])
