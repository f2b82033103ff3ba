"""indexes for the lifecycle's, merges', start-up's and review queue's lookups, so that their
cost follows what they find, not the registry's size (found by reading every statement's plan on
a registry of 1,000,000 children):

- `children.merged_into` (only the rows that have one): the children merged into a child were
  found by reading every merged child (`merged_family`, which ingestion asks when a record fits
  two children a data manager kept apart), or every child (`retired_into`, each purge batch);
- `(status, archive_on, contactpoint_id)` instead of `(status, archive_on)`: archiving walks the
  children due in that order, a batch at a time, and every batch read and sorted the whole month
  of children due before it (archive dates are the first of a month: about 60,000 children each,
  nationally);
- `source_records.key_scheme`: every start of the service asks whether any record is keyed by an
  older scheme, and the answer read the whole table (half a second at 1,000,000 children, before
  the service could serve). Nearly every row holds the current scheme, so the index is small
  and a new row goes to its last page;
- the review queue: `(status, created_at, task_id)` instead of `(status, created_at)`, and the
  tasks a data manager holds in that order (only the rows held), so that handing out the next task
  walks the queue in order and stops at the first, instead of sorting every open task.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_MERGED = sa.text("merged_into IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_children_merged_into",
        "children",
        ["merged_into"],
        postgresql_where=_MERGED,
        sqlite_where=_MERGED,
    )
    op.drop_index("ix_children_status_archive_on", table_name="children")
    op.create_index(
        "ix_children_status_archive_on_id", "children", ["status", "archive_on", "contactpoint_id"]
    )
    op.create_index("ix_source_records_key_scheme", "source_records", ["key_scheme"])
    op.drop_index("ix_review_tasks_status_created", table_name="review_tasks")
    op.create_index("ix_review_tasks_status_created_id", "review_tasks", ["status", "created_at", "task_id"])
    held = sa.text("held_by IS NOT NULL")
    op.create_index(
        "ix_review_tasks_held_by",
        "review_tasks",
        ["held_by", "status", "created_at", "task_id"],
        postgresql_where=held,
        sqlite_where=held,
    )


def downgrade() -> None:
    op.drop_index("ix_review_tasks_held_by", table_name="review_tasks")
    op.drop_index("ix_review_tasks_status_created_id", table_name="review_tasks")
    op.create_index("ix_review_tasks_status_created", "review_tasks", ["status", "created_at"])
    op.drop_index("ix_source_records_key_scheme", table_name="source_records")
    op.drop_index("ix_children_status_archive_on_id", table_name="children")
    op.create_index("ix_children_status_archive_on", "children", ["status", "archive_on"])
    op.drop_index("ix_children_merged_into", table_name="children")
