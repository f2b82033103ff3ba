"""a merge remembers the version of every source record its two children held (source id to
content hash), so that an unmerge can tell what either received while they were one child: a side
left unshielded beside a shielded one keeps a shield if it did (`unmerge_shields`). Merges made
before hold none, and their unmerge goes by when the records were received. And a source record
found so is marked (`kept_shielded`): whichever child holds it after later unmerges is shielded
too, until a data manager unshields that child.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.add_column(sa.Column("held_at_merge", sa.JSON(), nullable=True))
    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("kept_shielded", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("source_records") as batch:
        batch.drop_column("kept_shielded")
    with op.batch_alter_table("merges") as batch:
        batch.drop_column("held_at_merge")
