"""logs and log_keys: the newest cosigned checkpoint of each log, and the keys it has signed with

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("checkpoint", sa.Text, nullable=False),
        sa.Column("log_signature", sa.LargeBinary(64), nullable=False),
        sa.Column("cosigned_at", sa.BigInteger, nullable=False),
        sa.Column("cosignature", sa.LargeBinary(64), nullable=False),
    )
    op.create_table(
        "log_keys",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(32), primary_key=True),
        sa.Column("from_size", sa.BigInteger, nullable=False),
        sa.Column("added_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_keys")
    op.drop_table("logs")
