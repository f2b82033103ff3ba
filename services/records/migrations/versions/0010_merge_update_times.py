"""a merge remembers when each child's record last changed before it, so that undoing a merge
nothing has changed since gives both children back exactly as they were, `update_time` included.
Merges made before hold none, and their unmerge dates both children to the unmerge as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.add_column(sa.Column("survivor_updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retired_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.drop_column("retired_updated_at")
        batch.drop_column("survivor_updated_at")
