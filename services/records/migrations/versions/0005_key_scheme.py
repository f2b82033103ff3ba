"""blocking keys versioned: each source record notes the version of the blocking-key scheme its
keys were made by (1 for every record stored before), and the service rebuilds the keys of older
versions on start-up (services/records/key_scheme.py)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("key_scheme", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("source_records") as batch:
        batch.drop_column("key_scheme")
