"""a keyed check of the day a child was archived (only its month is kept in the clear since 0011),
so that a changed record can be told to have moved the archive date later within the month (a
date of death corrected: the child is active again until then) or not (a child archived by a run
dated ahead stays archived). Children archived before keep no check, and stay archived within
their month.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE, not a batch: on SQLite a batch copies `children`, which every other table's
    # foreign keys name.
    op.add_column("children", sa.Column("archived_check", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE children DROP COLUMN archived_check")
