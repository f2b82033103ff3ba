"""what older releases kept of the day a child was archived, found by probing an upgrade:

- children archived before 0012 have no keyed check of that day; the service now makes it as it
  starts (`services.records.old_archives`: it needs the data keys, which a migration does not
  hold), and this index finds the children still without one, so that each start costs nothing
  once none is left;
- a review task that archiving ended (OBSOLETE) kept the time it ended, the day of the child's
  18th or 25th birthday or a year after its death, through the purge: only its month is kept now,
  as for tasks ended by archiving since 0011. (Tasks ended so when a child's every record was
  withdrawn lose their day too, for children archived or purged since: a time of no use then.)

On PostgreSQL the replaced values stay in dead row versions until the table is rewritten: see
docs/operations.md, "Upgrading".

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_UNCHECKED = sa.text("status = 'archived' AND archived_check IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_children_unchecked_archives",
        "children",
        ["contactpoint_id"],
        postgresql_where=_UNCHECKED,
        sqlite_where=_UNCHECKED,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE review_tasks SET"
            " resolved_at = date_trunc('month', resolved_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            " WHERE decision = 'OBSOLETE' AND resolved_at IS NOT NULL AND EXISTS (SELECT 1 FROM children c"
            " WHERE c.contactpoint_id IN (review_tasks.new_child, review_tasks.candidate)"
            " AND c.status IN ('archived', 'purged'))"
        )
        return
    # SQLAlchemy stores an SQLite DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC).
    op.execute(
        "UPDATE review_tasks SET resolved_at = strftime('%Y-%m-01 00:00:00.000000', resolved_at)"
        " WHERE decision = 'OBSOLETE' AND resolved_at IS NOT NULL AND EXISTS (SELECT 1 FROM children c"
        " WHERE c.contactpoint_id IN (review_tasks.new_child, review_tasks.candidate)"
        " AND c.status IN ('archived', 'purged'))"
    )


def downgrade() -> None:
    op.drop_index("ix_children_unchecked_archives", table_name="children")
