"""other_children: the children an event concerns besides its contactpoint_id, one row each, so
that ListEvents and the subject-access report find the event under each of them

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Events stored before other_contactpoint_ids existed name no other child: nothing to fill.
    op.create_table(
        "other_children",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("contactpoint_id", sa.String(12), primary_key=True),
    )
    op.create_index("ix_other_children_contactpoint_id", "other_children", ["contactpoint_id", "leaf_index"])


def downgrade() -> None:
    op.drop_index("ix_other_children_contactpoint_id", table_name="other_children")
    op.drop_table("other_children")
