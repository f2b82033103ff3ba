"""pending_logouts: Logouts answered while identity could not be reached, kept until identity has
revoked the token (a gateway restarted meanwhile carries on)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_logouts",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("logged_out_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_logouts")
