"""rates.recent: the person's reads allowed in the last minute (their times, oldest first), so that
at most the rate's number fall in any minute (GCRA allowed nearly twice that)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("recent", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.drop_column("recent")
