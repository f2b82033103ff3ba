"""rates: the day's count of distinct items since the latest trip, so that a child's first read
of the day is counted by one statement

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("count_day", sa.String(10)))
        batch.add_column(sa.Column("counted", sa.Integer, nullable=False, server_default="0"))
    # Each person's latest day and what they counted on it since their latest trip, exactly as the
    # counting transaction computes it, so that no allowance grows by the upgrade.
    op.execute(
        "UPDATE rates SET count_day = (SELECT max(day) FROM daily_reads d WHERE d.subject = rates.subject)"
    )
    op.execute(
        "UPDATE rates SET counted = (SELECT count(*) FROM daily_reads d "
        "WHERE d.subject = rates.subject AND d.day = rates.count_day "
        "AND d.read_at > coalesce(rates.tripped_at, -1.0e18)) WHERE count_day IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.drop_column("counted")
        batch.drop_column("count_day")
