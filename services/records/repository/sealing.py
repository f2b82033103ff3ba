"""The data keys a records database is sealed with: bound to its engines when the service starts,
so that every repository function seals and opens with them, and a connection without them fails
closed (DataKeyError) instead of reading or writing anything in the clear."""

from __future__ import annotations

import weakref

from sqlalchemy import Connection, Engine

from contactpoint.platform.db import Database
from contactpoint.platform.vault import DataKeyError, Vault

_BOUND: weakref.WeakKeyDictionary[Engine, Vault] = weakref.WeakKeyDictionary()


def bind(db: Database, vault: Vault) -> None:
    """Seal and open everything `db` stores with `vault`."""
    _BOUND[db.writer] = vault
    _BOUND[db.reader] = vault


def vault_of(conn: Connection) -> Vault:
    """The vault bound to the database `conn` belongs to."""
    vault = _BOUND.get(conn.engine)
    if vault is None:
        raise DataKeyError("no data keys are bound to this records database")
    return vault


def source_context(source_id: str, column: str) -> bytes:
    """What a source record's sealed column is bound to: its row and its column."""
    return f"source_records:{source_id}:{column}".encode()


def names_context(source_id: str, position: int) -> bytes:
    """What one sealed name row is bound to."""
    return f"match_keys:{source_id}:{position}".encode()


# What a sealed match model is bound to (its id is not known before it is inserted).
MODEL_CONTEXT = b"match_models:model"


def vault_for(db: Database) -> Vault:
    """The vault bound to `db`."""
    vault = _BOUND.get(db.writer)
    if vault is None:
        raise DataKeyError("no data keys are bound to this records database")
    return vault
