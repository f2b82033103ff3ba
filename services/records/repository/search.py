"""FindChild's query: name keys of active children born on one day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select

from services.records.tables import ACTIVE, children, match_keys


@dataclass(frozen=True, slots=True)
class NameRow:
    """One name of an active child, as FindChild compares it."""

    contactpoint_id: str
    family_key: str
    given_keys: str
    postcode_key: str
    gender: int


def names_born_on(
    conn: Connection,
    *,
    date_of_birth: dt.date,
    family_key: str | None,
    postcode_key: str | None,
    exclude_shielded: bool,
) -> list[NameRow]:
    """Name keys of active children born on `date_of_birth`, narrowed by an exact family name key
    and postcode key when given. With `exclude_shielded`, children shown shielded are left out."""
    query = (
        select(
            match_keys.c.contactpoint_id,
            match_keys.c.family_key,
            match_keys.c.given_keys,
            match_keys.c.postcode_key,
            match_keys.c.gender,
        )
        .join(children, children.c.contactpoint_id == match_keys.c.contactpoint_id)
        .where(match_keys.c.date_of_birth == date_of_birth, children.c.status == ACTIVE)
    )
    if family_key is not None:
        query = query.where(match_keys.c.family_key == family_key)
    if postcode_key is not None:
        query = query.where(match_keys.c.postcode_key == postcode_key)
    if exclude_shielded:
        query = query.where(children.c.shielded.is_(False), children.c.provisional_shield.is_(False))
    return [
        NameRow(r.contactpoint_id, r.family_key, r.given_keys, r.postcode_key, r.gender)
        for r in conn.execute(query).all()
    ]
