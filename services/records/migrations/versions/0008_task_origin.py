"""a review task a merge carries to a survivor remembers, for each side, the child it named when
it was raised, and keeps when it was raised: undoing the merge gives the side back to that child
alone, rather than pairing the child put back with every child its survivor was paired with
(another organisation could be shown two unrelated children as a possible match). Tasks carried
before hold none, and are treated as before (the child put back gets a copy of each).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_tasks") as batch:
        batch.add_column(sa.Column("new_child_was", sa.String(12), nullable=True))
        batch.add_column(sa.Column("candidate_was", sa.String(12), nullable=True))
    # Which merges moved records to a child (a task's side is raised for the child its record
    # came from).
    op.create_index("ix_merges_survivor_id", "merges", ["survivor_id"])


def downgrade() -> None:
    op.drop_index("ix_merges_survivor_id", table_name="merges")
    with op.batch_alter_table("review_tasks") as batch:
        batch.drop_column("candidate_was")
        batch.drop_column("new_child_was")
