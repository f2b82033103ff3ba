"""leaves, signed tree heads, tree state

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leaves",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("leaf_data", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("contactpoint_id", sa.String(12), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_leaves_contactpoint_id", "leaves", ["contactpoint_id", "leaf_index"])
    op.create_index("ix_leaves_actor", "leaves", ["actor", "leaf_index"])
    op.create_table(
        "tree_heads",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("checkpoint", sa.Text, nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    state = op.create_table(
        "tree_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("peaks", sa.Text, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "peaks": "[]"}])


def downgrade() -> None:
    op.drop_table("tree_state")
    op.drop_table("tree_heads")
    op.drop_table("leaves")
