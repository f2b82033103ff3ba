"""the services a source record ever told of as sensitive, remembered (sealed) beside it: a flag
is no longer lost when the record that set it drops the involvement or is withdrawn, while another
source still shows the service unflagged (found by probing). Records stored before hold none.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("sensitive_services", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_records") as batch:
        batch.drop_column("sensitive_services")
