"""The audit service's tables (SQLAlchemy Core). The Alembic history in migrations/ creates them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class StoredBytes(TypeDecorator[bytes]):
    """LargeBinary, read back as bytes whatever SQLite holds: an entry edited in place by hand
    (`replace()` on a blob gives text) reads as the bytes it now holds, so `audit verify` reports
    it altered instead of stopping on a str (found by probing: a traceback, no entry named)."""

    impl = LargeBinary
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, int | float):
            return str(value).encode()
        return bytes(value)  # bytes, memoryview


# One row per event, never updated or deleted. leaf_data is exactly what was hashed; the other
# columns are copies for filtering, checked against leaf_data by `audit verify`.
leaves = Table(
    "leaves",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_data", StoredBytes, nullable=False),
    Column("leaf_hash", StoredBytes(32), nullable=False),
    Column("contactpoint_id", String(12), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
)
Index("ix_leaves_contactpoint_id", leaves.c.contactpoint_id, leaves.c.leaf_index)
Index("ix_leaves_actor", leaves.c.actor, leaves.c.leaf_index)

# The other children an event names (other_contactpoint_ids), one row each: copies of its leaf data
# kept so that filtering by a child finds the event under each of them. Never updated or deleted;
# `audit verify` checks the rows against leaf_data.
other_children = Table(
    "other_children",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("contactpoint_id", String(12), primary_key=True),
)
Index("ix_other_children_contactpoint_id", other_children.c.contactpoint_id, other_children.c.leaf_index)

# A signed tree head after every append.
tree_heads = Table(
    "tree_heads",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", StoredBytes(32), nullable=False),
    Column("checkpoint", Text, nullable=False),
    Column("signature", StoredBytes(64), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
)

# One row: the tree's size and peaks, locked by each append so appends are serialised.
tree_state = Table(
    "tree_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("peaks", Text, nullable=False),
)

# The hash of every complete interior subtree: (level, node_index) covers leaves
# [node_index·2^level, (node_index+1)·2^level). Written with the leaves that complete it, never
# updated; proofs read O(log n) of them instead of every leaf hash (level 0 is `leaves.leaf_hash`).
tree_nodes = Table(
    "tree_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("node_index", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", StoredBytes(32), nullable=False),
)
