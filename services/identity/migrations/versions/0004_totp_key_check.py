"""a key check for the TOTP key: a constant sealed with it, written by whichever first opens the
key for this database, so that a different key (a command run with another key file) is refused
before it seals anything.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "totp_key_check",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sealed", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("totp_key_check")
