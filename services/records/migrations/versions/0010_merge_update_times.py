"""a merge remembers when each child's record last changed before it, and a keyed fingerprint of
the record as it was, so that an unmerge that gives a child back exactly as it was gives it back
its `update_time` too. Merges made before hold neither, and their unmerge dates both children to
the unmerge as before.

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
        batch.add_column(sa.Column("survivor_fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("retired_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.drop_column("retired_fingerprint")
        batch.drop_column("survivor_fingerprint")
        batch.drop_column("retired_updated_at")
        batch.drop_column("survivor_updated_at")
