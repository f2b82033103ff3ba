"""What every records write shares: turning a lost race on a unique key into a retry."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import ColumnElement, Connection, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from services.records.model import ConcurrentChange


@contextmanager
def unique() -> Iterator[None]:
    """Two transactions raced to create the same row; the caller retries the whole transaction."""
    try:
        yield
    except (IntegrityError, psycopg.IntegrityError) as exc:
        raise ConcurrentChange("a concurrent transaction wrote the same key") from exc


def one_of(conn: Connection, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values`. On PostgreSQL it is `column = ANY(:array)`, one parameter: the batch
    queries send hundreds of values, and an IN list of that many parameters costs more to render
    and parse than to run."""
    ordered = sorted(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ordered, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(ordered)  # type: ignore[no-any-return]


def pack_hashes(hashes: Sequence[int]) -> bytes:
    """Key hashes as stored beside their record: 8 bytes each, big-endian."""
    return struct.pack(f">{len(hashes)}q", *hashes)


def unpack_hashes(packed: bytes) -> list[int]:
    """The hashes `pack_hashes` stored."""
    return list(struct.unpack(f">{len(packed) // 8}q", packed))


def key_hash(key: str) -> int:
    """A blocking key as it is stored and looked up: a signed 64-bit hash (stable everywhere)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
