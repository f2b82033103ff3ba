"""a log of blocking-key changes, numbered per shard, so that a batch can see what changed under
its keys since it read them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SHARDS = 16


def upgrade() -> None:
    shards = op.create_table(
        "key_change_shards",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(shards, [{"shard": s, "generation": 0} for s in range(SHARDS)])
    op.create_table(
        "key_changes",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("key_changes")
    op.drop_table("key_change_shards")
