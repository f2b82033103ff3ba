"""rates: the person's latest trip over the daily limit, read with their rate on every read

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("tripped_at", sa.Float))
    op.execute(
        "UPDATE rates SET tripped_at = "
        "(SELECT max(tripped_at) FROM limit_trips WHERE limit_trips.subject = rates.subject)"
    )
    # A trip whose person has no rates row yet (none can, but a trip is never to be lost).
    op.execute(
        "INSERT INTO rates (subject, tat, tripped_at) "
        "SELECT subject, 0.0, max(tripped_at) FROM limit_trips "
        "WHERE subject NOT IN (SELECT subject FROM rates) GROUP BY subject"
    )


def downgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.drop_column("tripped_at")
