"""archived children keep only the month they were archived in, and purged ones only the year
they were purged in: the day an archived child was archived (and the day it was purged, six years
on) was its 18th or 25th birthday or the anniversary of its death, stored in the clear beside its
lifelong id and kept after the purge (found by probing a stolen database). The lifecycle works the
exact date out again from the child's sealed records while it holds any.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE children SET"
            " archived_at = date_trunc('month', archived_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',"
            " updated_at = date_trunc('month', archived_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            " WHERE status = 'archived' AND archived_at IS NOT NULL"
        )
        op.execute(
            "UPDATE children SET"
            " purged_at = date_trunc('year', purged_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',"
            " updated_at = date_trunc('year', purged_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',"
            " archived_at = NULL WHERE status = 'purged' AND purged_at IS NOT NULL"
        )
        return
    # SQLAlchemy stores an SQLite DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC).
    op.execute(
        "UPDATE children SET archived_at = strftime('%Y-%m-01 00:00:00.000000', archived_at),"
        " updated_at = strftime('%Y-%m-01 00:00:00.000000', archived_at)"
        " WHERE status = 'archived' AND archived_at IS NOT NULL"
    )
    op.execute(
        "UPDATE children SET purged_at = strftime('%Y-01-01 00:00:00.000000', purged_at),"
        " updated_at = strftime('%Y-01-01 00:00:00.000000', purged_at), archived_at = NULL"
        " WHERE status = 'purged' AND purged_at IS NOT NULL"
    )


def downgrade() -> None:
    pass  # the days are not kept anywhere to put back
