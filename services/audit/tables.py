"""The audit service's tables (SQLAlchemy Core). The Alembic history in migrations/ creates them."""

from __future__ import annotations

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
)

metadata = MetaData()

# One row per event, never updated or deleted. leaf_data is exactly what was hashed; the other
# columns are copies for filtering, checked against leaf_data by `audit verify`.
leaves = Table(
    "leaves",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
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
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("checkpoint", Text, nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
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
    Column("hash", LargeBinary(32), nullable=False),
)
