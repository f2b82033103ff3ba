"""The only place the witness's SQL lives."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from services.witness.tables import log_keys, logs


@dataclass(frozen=True)
class Witnessed:
    """The newest checkpoint cosigned for one log."""

    origin: str
    public_key: bytes
    tree_size: int
    root_hash: bytes
    checkpoint: str
    log_signature: bytes
    cosigned_at: int
    cosignature: bytes


def _witnessed(row: object) -> Witnessed:
    m = row._mapping  # type: ignore[attr-defined]
    return Witnessed(
        str(m["origin"]),
        bytes(m["public_key"]),
        int(m["tree_size"]),
        bytes(m["root_hash"]),
        str(m["checkpoint"]),
        bytes(m["log_signature"]),
        int(m["cosigned_at"]),
        bytes(m["cosignature"]),
    )


def newest(conn: Connection, origin: str, *, lock: bool = False) -> Witnessed | None:
    """The log's newest cosigned checkpoint (locked for this transaction with `lock`)."""
    query = select(logs).where(logs.c.origin == origin)
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    return _witnessed(row) if row is not None else None


def save(conn: Connection, witnessed: Witnessed, *, first: bool) -> None:
    """Store the log's newest cosigned checkpoint (its first, or one replacing the last)."""
    values = {
        "public_key": witnessed.public_key,
        "tree_size": witnessed.tree_size,
        "root_hash": witnessed.root_hash,
        "checkpoint": witnessed.checkpoint,
        "log_signature": witnessed.log_signature,
        "cosigned_at": witnessed.cosigned_at,
        "cosignature": witnessed.cosignature,
    }
    if first:
        conn.execute(insert(logs).values(origin=witnessed.origin, **values))
    else:
        conn.execute(update(logs).where(logs.c.origin == witnessed.origin).values(**values))


def add_key(conn: Connection, origin: str, public_key: bytes, *, from_size: int, at: int) -> None:
    """Record a key the log signs with from `from_size` on."""
    conn.execute(
        insert(log_keys).values(origin=origin, public_key=public_key, from_size=from_size, added_at=at)
    )


def keys(conn: Connection, origin: str) -> list[bytes]:
    """Every key the log has signed with, oldest first."""
    query = select(log_keys.c.public_key).where(log_keys.c.origin == origin).order_by(log_keys.c.from_size)
    return [bytes(k) for k in conn.execute(query).scalars()]
