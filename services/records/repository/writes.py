"""What every records write shares: bulk inserts, and turning a lost race on a unique key into a
retry."""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
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
    TextClause,
    any_,
    bindparam,
    insert,
    text,
    update,
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


def update_rows(
    conn: Connection,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    same: Mapping[str, Any] | None = None,
) -> None:
    """Update many rows found by `key`: each of `rows` is a key and then the values of `columns`
    in order; every row also takes the values in `same`. On PostgreSQL in one statement joined to
    `unnest` of one array a column, the rows locked in key order as a statement per row sent in
    that order would lock them (two transactions updating the same rows never deadlock): an
    executemany of a batch's hundred UPDATEs cost the records service's Python more than the server
    spent on them. On SQLite one statement a row."""
    same = dict(same or {})
    unknown = [name for name in (key, *columns, *same) if name not in table.c]
    if unknown:  # only the table's own column names are ever put into a statement's text
        raise KeyError(f"{table.name} has no column {unknown[0]!r}")
    if not rows:
        return
    ordered = sorted(rows, key=lambda row: row[0])
    if dialect_of(conn) != "postgresql":
        statement = (
            update(table)
            .where(table.c[key] == bindparam("u_key"))
            .values({**{c: bindparam(f"u_{c}") for c in columns}, **same})
        )
        conn.execute(
            statement,
            [dict(zip(("u_key", *(f"u_{c}" for c in columns)), row, strict=True)) for row in ordered],
        )
        return
    params: dict[str, Any] = {f"a{i}": [row[i] for row in ordered] for i in range(len(columns) + 1)}
    params.update({f"s_{c}": value for c, value in same.items()})
    conn.execute(_update_each(table, key, tuple(columns), tuple(same)), params)


@lru_cache(maxsize=64)
def _update_each(table: Table, key: str, columns: tuple[str, ...], same: tuple[str, ...]) -> TextClause:
    names = (key, *columns)
    types = {name: table.c[name].type for name in (*names, *same)}
    sets = ", ".join([*(f"{c} = d.{c}" for c in columns), *(f"{c} = :s_{c}" for c in same)])
    arrays = ", ".join(f":a{i}" for i in range(len(names)))
    picked = ", ".join(f"t.{c}" for c in columns)
    # Identifiers are the table's own column names (`update_rows` checked); every value is bound.
    sql = (
        f"UPDATE {table.name} AS c SET {sets} FROM ("  # noqa: S608
        f" SELECT x.{key}, {picked} FROM unnest({arrays}) AS t({', '.join(names)})"
        f" JOIN {table.name} x ON x.{key} = t.{key} ORDER BY x.{key} FOR UPDATE OF x"
        f") AS d WHERE c.{key} = d.{key}"
    )
    return text(sql).bindparams(
        *(bindparam(f"a{i}", type_=ARRAY(types[name])) for i, name in enumerate(names)),
        *(bindparam(f"s_{c}", type_=types[c]) for c in same),
    )


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
