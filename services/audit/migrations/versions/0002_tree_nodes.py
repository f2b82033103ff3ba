"""tree_nodes: the hash of every complete interior subtree, so that proofs read O(log n) rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from contactpoint.platform import merkle

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Leaves read, and nodes written, at a time while filling the table for a log that exists.
CHUNK = 10_000
LEAF_HASHES = sa.text(
    "SELECT leaf_hash FROM leaves WHERE leaf_index >= :s AND leaf_index < :e ORDER BY leaf_index"
)


def upgrade() -> None:
    nodes = op.create_table(
        "tree_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("node_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    # Every node of the log as it stands, from its leaf hashes in order (one pass, O(n)).
    conn = op.get_bind()
    peaks: merkle.Peaks = []
    start = 0
    while True:
        window = {"s": start, "e": start + CHUNK}
        hashes = [bytes(h) for h in conn.execute(LEAF_HASHES, window).scalars()]
        if not hashes:
            break
        rows = []
        for digest in hashes:
            peaks, completed = merkle.append_with_nodes(peaks, digest)
            rows.extend({"level": lv, "node_index": i, "hash": h} for lv, i, h in completed)
        if rows:
            op.bulk_insert(nodes, rows)
        start += len(hashes)


def downgrade() -> None:
    op.drop_table("tree_nodes")
