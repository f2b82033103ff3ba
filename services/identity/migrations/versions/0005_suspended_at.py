"""accounts.suspended_at: when an account was last suspended, kept when it is reinstated. The
gateway knows by it that its suspension for the daily limit took effect; the cut-off of an
account's tokens (tokens_not_before) also moves when its password changes, and must not pass for
a suspension (found by review).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True)))
    # Cut-offs from before are taken as suspensions, as the gateway took them until now: a person
    # suspended for the daily limit and reinstated is not suspended again by the upgrade.
    op.execute("UPDATE accounts SET suspended_at = tokens_not_before WHERE tokens_not_before IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("suspended_at")
