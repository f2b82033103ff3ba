"""FindChild's query: name keys of active and archived children born on one day, looked up by
keyed hash and opened (nothing FindChild compares is stored in the clear)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from services.records.repository.sealing import names_context, vault_of
from services.records.repository.source_keys import dob_hash, family_hash, postcode_hash
from services.records.tables import ACTIVE, ARCHIVED, children, match_keys


@dataclass(frozen=True, slots=True)
class NameRow:
    """One name of an active or archived child, as FindChild compares it."""

    contactpoint_id: str
    family_key: str
    given_keys: str
    gender: int
    # Shown shielded (a data manager's shield, or a possible match's provisional one).
    shielded: bool = False
    # Archived: never shown, named only in the search's audit event.
    archived: bool = False


def names_born_on(
    conn: Connection,
    *,
    date_of_birth: dt.date,
    family_keys: Sequence[str] | None,
    postcode_key: str | None,
) -> list[NameRow]:
    """Name keys of active and archived children born on `date_of_birth`, narrowed by exact family
    name keys (any of them) and, when given, to children with a record at a postcode, each saying
    whether its child is shown shielded or archived (never shown: named in the search's audit
    event)."""
    vault = vault_of(conn)
    query = (
        select(
            match_keys.c.source_id,
            match_keys.c.position,
            match_keys.c.contactpoint_id,
            match_keys.c.names,
            match_keys.c.gender,
            children.c.shielded,
            children.c.provisional_shield,
            children.c.status,
        )
        .join(children, children.c.contactpoint_id == match_keys.c.contactpoint_id)
        .where(children.c.status.in_((ACTIVE, ARCHIVED)))
    )
    # Each narrowing hash has the date of birth in it: one indexed lookup, the narrowest there is.
    if family_keys is not None:
        hashes = sorted({family_hash(vault, date_of_birth, key) for key in family_keys})
        query = query.where(match_keys.c.family_hash.in_(hashes))
    if postcode_key is not None:
        # A child with a record at the postcode, its names from any of its records: the name and
        # the address a search gives may come from two records of one child (found by probing:
        # "McDonald" at the postcode only a newer record, misspelt "Mceonald", carried was
        # NOT_FOUND).
        at_postcode = select(match_keys.c.contactpoint_id).where(
            match_keys.c.postcode_hash == postcode_hash(vault, date_of_birth, postcode_key)
        )
        query = query.where(match_keys.c.contactpoint_id.in_(at_postcode))
    if family_keys is None:
        query = query.where(match_keys.c.dob_hash == dob_hash(vault, date_of_birth))
    rows: list[NameRow] = []
    for r in conn.execute(query).all():
        family, given = vault.open_text(r.names, names_context(r.source_id, r.position)).split("\x1f")
        shielded = bool(r.shielded) or bool(r.provisional_shield)
        rows.append(NameRow(r.contactpoint_id, family, given, r.gender, shielded, r.status == ARCHIVED))
    return rows
