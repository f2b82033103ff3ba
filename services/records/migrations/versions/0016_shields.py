"""the organisations that shielded a child: only they lift the shield while they hold the child.
Shields set before name none, and any organisation holding the child lifts them, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shields",
        sa.Column(
            "contactpoint_id",
            sa.String(12),
            sa.ForeignKey("children.contactpoint_id"),
            primary_key=True,
        ),
        sa.Column("organisation", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shields")
