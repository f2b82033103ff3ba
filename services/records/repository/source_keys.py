"""The keys that make a source record findable: its blocking keys (what matching looks up) and
its name keys (what FindChild looks up), filed and dropped together with the record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import BigInteger, Connection, Text, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from contactpoint.platform.db import dialect_of
from contactpoint.platform.vault import Vault
from contactpoint.platform.workers import pickled_by_fields
from services.records.repository import key_changes
from services.records.repository.sealing import names_context, vault_of
from services.records.repository.writes import insert_rows, unpack_hashes
from services.records.tables import blocking_keys, match_keys, source_records


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class MatchKeyRow:
    """One name of a source record, as FindChild looks for it."""

    position: int
    family_key: str
    given_keys: str
    date_of_birth: dt.date
    postcode_key: str
    gender: int


class FiledKeys(Protocol):
    """What `insert_keys` files for one source record."""

    @property
    def id(self) -> str: ...
    @property
    def contactpoint_id(self) -> str: ...
    @property
    def blocking_hashes(self) -> Sequence[int]: ...
    @property
    def names(self) -> Sequence[MatchKeyRow]: ...


_NAME_COLUMNS = (
    "source_id",
    "contactpoint_id",
    "position",
    "dob_hash",
    "family_hash",
    "postcode_hash",
    "gender",
    "names",
    "sealed_with",
)


def dob_hash(vault: Vault, date_of_birth: dt.date) -> int:
    """How FindChild looks up a date of birth."""
    return vault.hash64(b"find-dob:" + date_of_birth.isoformat().encode())


def family_hash(vault: Vault, date_of_birth: dt.date, family_key: str) -> int:
    """How FindChild looks up a family name's key with a date of birth."""
    return vault.hash64(f"find-family:{date_of_birth.isoformat()}:{family_key}".encode())


def postcode_hash(vault: Vault, date_of_birth: dt.date, postcode_key: str) -> int:
    """How FindChild looks up a postcode's key with a date of birth."""
    return vault.hash64(f"find-postcode:{date_of_birth.isoformat()}:{postcode_key}".encode())


def seal_names(vault: Vault, source_id: str, name: MatchKeyRow, key: int) -> bytes:
    """The names FindChild compares, sealed with seal key `key` (opened in `search`)."""
    plain = f"{name.family_key}\x1f{name.given_keys}".encode()
    return vault.seal(plain, names_context(source_id, name.position), key_id=key)


def insert_keys(conn: Connection, rows: Sequence[FiledKeys]) -> None:
    """Blocking and name keys of new or replaced source records: a dozen rows per record. The
    blocking keys arrive keyed (`writes.key_hash`); the name keys are keyed and sealed here."""
    keys = [(h, r.id) for r in rows for h in r.blocking_hashes]
    insert_rows(conn, blocking_keys, ("key", "source_id"), keys)
    key_changes.note(conn, [h for h, _ in keys])
    insert_names(conn, [(r.id, r.contactpoint_id, n) for r in rows for n in r.names])


def insert_names(conn: Connection, names: Sequence[tuple[str, str, MatchKeyRow]]) -> None:
    """FindChild's name rows, each given as (source record id, its child's id, the row): keyed
    and sealed here, with one seal key for them all whatever a reload does meanwhile."""
    vault = vault_of(conn)
    key = vault.newest
    insert_rows(
        conn,
        match_keys,
        _NAME_COLUMNS,
        [
            (
                source_id,
                contactpoint_id,
                n.position,
                dob_hash(vault, n.date_of_birth),
                family_hash(vault, n.date_of_birth, n.family_key),
                postcode_hash(vault, n.date_of_birth, n.postcode_key),
                n.gender,
                seal_names(vault, source_id, n, key),
                key,
            )
            for source_id, contactpoint_id, n in names
        ],
    )


_DELETE_BLOCKING = delete(blocking_keys).where(
    blocking_keys.c.key == bindparam("k"), blocking_keys.c.source_id == bindparam("s")
)
# PostgreSQL: every pair in one statement, as two arrays (one DELETE per key row was 60% of the
# time of filing a registry's records again under new keys).
_DELETE_BLOCKING_PAIRS = text(
    "DELETE FROM blocking_keys b USING unnest(:keys, :ids) AS d(key, source_id)"
    " WHERE b.key = d.key AND b.source_id = d.source_id"
).bindparams(bindparam("keys", type_=ARRAY(BigInteger)), bindparam("ids", type_=ARRAY(Text)))


def delete_keys(conn: Connection, source_ids: Collection[str], *, log_changes: bool = True) -> None:
    """Drop source records' blocking keys (by the hashes kept with each record) and name keys;
    the dropped hashes are logged as changes unless `log_changes` is false."""
    if not source_ids:
        return
    ids = sorted(source_ids)
    held = conn.execute(
        select(source_records.c.id, source_records.c.blocking).where(source_records.c.id.in_(ids))
    ).all()
    delete_blocking(conn, [(r.id, bytes(r.blocking)) for r in held], log_changes=log_changes)
    conn.execute(delete(match_keys).where(match_keys.c.source_id.in_(ids)))


def delete_blocking(conn: Connection, held: Sequence[tuple[str, bytes]], *, log_changes: bool = True) -> None:
    """Drop the blocking keys filed for source records, given as (id, the packed hashes kept with
    it); the dropped hashes are logged as changes unless `log_changes` is false."""
    pairs = [(h, source_id) for source_id, packed in held for h in unpack_hashes(packed)]
    if pairs:
        if dialect_of(conn) == "postgresql":
            keys, ids = zip(*pairs, strict=True)
            conn.execute(_DELETE_BLOCKING_PAIRS, {"keys": list(keys), "ids": list(ids)})
        else:
            conn.execute(_DELETE_BLOCKING, [{"k": h, "s": source_id} for h, source_id in pairs])
        if log_changes:
            key_changes.note(conn, [h for h, _ in pairs])
