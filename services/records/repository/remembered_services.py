"""The services a source record remembers as sensitive (`sensitive_memory`), stored sealed with the
record's key beside it: sealed, opened, and read by record or by child."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, select

from contactpoint.platform.vault import Vault
from services.records.repository.sealing import source_context, vault_of
from services.records.sensitive_memory import FlaggedService
from services.records.tables import source_records


def seal_services(vault: Vault, source_id: str, services: Sequence[FlaggedService], key: int) -> bytes | None:
    """A record's remembered sensitive services sealed with its key (None when there are none)."""
    if not services:
        return None
    rows = [[s.name, s.organisation, list(s.start)] for s in services]
    plain = json.dumps(rows, ensure_ascii=False).encode()
    return vault.seal(plain, source_context(source_id, "sensitive_services"), key_id=key)


def open_services(vault: Vault, source_id: str, sealed: bytes | None) -> tuple[FlaggedService, ...]:
    """`seal_services` undone (a name alone, as first stored on 5 December, stands for itself)."""
    if sealed is None:
        return ()
    rows = json.loads(vault.open(bytes(sealed), source_context(source_id, "sensitive_services")))
    return tuple(
        FlaggedService(str(r)) if isinstance(r, str) else FlaggedService(str(r[0]), str(r[1]), tuple(r[2]))
        for r in rows
    )


def remembered_services(
    conn: Connection, source_ids: Collection[str]
) -> dict[str, tuple[FlaggedService, ...]]:
    """The services some source records remember as sensitive, by source record id (none: absent)."""
    if not source_ids:
        return {}
    query = select(source_records.c.id, source_records.c.sensitive_services).where(
        source_records.c.id.in_(sorted(source_ids)), source_records.c.sensitive_services.is_not(None)
    )
    vault = vault_of(conn)
    return {r.id: open_services(vault, r.id, r.sensitive_services) for r in conn.execute(query).all()}


def remembered_by_child(conn: Connection, contactpoint_id: str) -> tuple[FlaggedService, ...]:
    """The services any source record of a child (withdrawn ones included) remembers as sensitive."""
    query = select(source_records.c.id, source_records.c.sensitive_services).where(
        source_records.c.contactpoint_id == contactpoint_id, source_records.c.sensitive_services.is_not(None)
    )
    vault = vault_of(conn)
    rows = conn.execute(query).all()
    return tuple(n for r in rows for n in open_services(vault, r.id, r.sensitive_services))
