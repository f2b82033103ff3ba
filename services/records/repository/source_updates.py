"""New content for source records already held: a changed record's content and keys replaced,
an unchanged record's newer `as_of`. One statement of each kind for a batch (`writes.update_rows`:
one UPDATE a record cost a feed sent again more than it needed, `docs/benchmarks.md`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection

from services.records.linkage.blocking import SCHEME as KEY_SCHEME
from services.records.repository.remembered_services import seal_services
from services.records.repository.sealing import vault_of
from services.records.repository.source_keys import delete_keys, insert_keys
from services.records.repository.sources import NewSource, sealed
from services.records.repository.writes import pack_hashes, update_rows
from services.records.tables import source_records

# What a record's new content replaces, after its id.
_REPLACED = ("record", "features", "sealed_with", "sensitive_services", "blocking", "content_hash", "as_of")


def replace_sources(conn: Connection, rows: Sequence[NewSource], *, now: dt.datetime) -> None:
    """Source records' new content (each stays with its child), their keys replaced: one
    statement of each kind for them all (one of each a record made a feed sent again with changes
    cost several times what new records do: `docs/benchmarks.md`)."""
    if not rows:
        return
    delete_keys(conn, [row.id for row in rows])
    vault = vault_of(conn)
    key = vault.newest  # one key for the whole batch, whatever a reload does meanwhile
    replaced = [
        (
            row.id,
            *sealed(vault, row, key),
            seal_services(vault, row.id, row.sensitive_services, key),
            pack_hashes(row.blocking_hashes),
            row.content_hash,
            row.as_of,
        )
        for row in rows
    ]
    same = {"key_scheme": KEY_SCHEME, "withdrawn": False, "withdrawn_at": None, "updated_at": now}
    update_rows(conn, source_records, "id", _REPLACED, replaced, same=same)
    insert_keys(conn, rows)


def set_as_of(conn: Connection, newer: Sequence[tuple[str, dt.datetime]]) -> None:
    """Newer `as_of`s for unchanged records, (source id, as_of) each, in one statement."""
    update_rows(conn, source_records, "id", ("as_of",), newer)
