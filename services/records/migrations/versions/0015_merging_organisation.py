"""a merge remembers the organisation of the data manager who made it: an unmerge is for an
organisation that holds a record of the child it puts back, or that made the merge (undoing its
own decision). Merges made before hold none; their maker is known by name only.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.add_column(sa.Column("merged_by_organisation", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.drop_column("merged_by_organisation")
