"""What every records write shares: bulk inserts, and turning a lost race on a unique key into a
retry."""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    any_,
    bindparam,
    insert,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from contactpoint.platform.db import dialect_of
from contactpoint.platform.vault import keyed_hash64
from services.records.model import ConcurrentChange


@contextmanager
def unique() -> Iterator[None]:
    """Two transactions raced to create the same row; the caller retries the whole transaction."""
    try:
        yield
    except (IntegrityError, psycopg.IntegrityError) as exc:
        raise ConcurrentChange("a concurrent transaction wrote the same key") from exc


# PostgreSQL's binary COPY needs each column's type by name; the most specific class first.
_COPY_TYPES: tuple[tuple[type, str], ...] = (
    (BigInteger, "int8"),
    (Integer, "int4"),
    (Boolean, "bool"),
    (DateTime, "timestamptz"),
    (Date, "date"),
    (Float, "float8"),
    (LargeBinary, "bytea"),
    (JSON, "json"),
    (Text, "text"),
    (String, "varchar"),
)


def _copy_type(table: Table, column: str) -> str:
    kind = table.c[column].type
    return next(name for cls, name in _COPY_TYPES if isinstance(kind, cls))


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows (values in `columns` order) in one go. On PostgreSQL by binary COPY inside
    the transaction: an executemany of a few hundred rows spent more time building and sending
    statements than the server spent storing them. A duplicate key is a lost race (`unique`)."""
    if not rows:
        return
    if dialect_of(conn) != "postgresql":
        with unique():
            conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with unique(), raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([_copy_type(table, c) for c in columns])
        for row in rows:
            copy.write_row(row)


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


def key_hash(key: str, index_key: bytes) -> int:
    """A blocking key as it is stored and looked up: a keyed 64-bit hash under the data keys'
    index key, so the stored keys reveal nothing to whoever lacks it."""
    return keyed_hash64(key.encode(), index_key)
