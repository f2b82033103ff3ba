"""allowance: per-person rate and daily distinct reads, shared by gateway replicas

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
        "rates",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("tat", sa.Float, nullable=False),
    )
    op.create_table(
        "daily_reads",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("item", sa.String(80), primary_key=True),
        sa.Column("read_at", sa.Float, nullable=False),
    )
    op.create_index("ix_daily_reads_day", "daily_reads", ["day"])
    op.create_table(
        "limit_trips",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("tripped_at", sa.Float, primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("limit_trips")
    op.drop_table("daily_reads")
    op.drop_table("rates")
