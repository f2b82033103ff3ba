"""rates: the token of the person's last allowed read (GCRA decided in the upsert itself)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("grant_id", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.drop_column("grant_id")
