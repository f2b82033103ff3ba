"""a purged child's shields are forgotten: which organisations shielded it, and when, went with
its records (found by review: the purge kept them).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM shields WHERE contactpoint_id IN"
        " (SELECT contactpoint_id FROM children WHERE status = 'purged')"
    )


def downgrade() -> None:
    pass  # what was forgotten stays forgotten
