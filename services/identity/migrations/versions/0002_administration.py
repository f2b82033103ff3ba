"""administration: tokens issued before a reinstatement stay dead; room for encrypted TOTP secrets

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        # Tokens of this account issued before this moment never work again (set on suspension).
        batch.add_column(sa.Column("tokens_not_before", sa.DateTime(timezone=True)))
        # An AES-GCM envelope of the secret is longer than the secret itself.
        batch.alter_column("totp_secret", type_=sa.String(255), existing_type=sa.String(64))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("totp_secret", type_=sa.String(64), existing_type=sa.String(255))
        batch.drop_column("tokens_not_before")
