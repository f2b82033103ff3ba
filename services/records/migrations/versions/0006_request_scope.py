"""request ids scoped by source system: each feeding system of an organisation numbers its own
requests, so two systems' "batch-0001" are two requests (found by probing: the second was refused
as REQUEST_ID_REUSED). First answers stored before are kept under source system "", which no
request names: a retry of one is decided again, and is UNCHANGED.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD = ["organisation", "request_id"]
_NEW = ["organisation", "source_system", "request_id"]


def _table(name: str, key: list[str]) -> None:
    columns = [sa.Column("organisation", sa.String(64), nullable=False)]
    if "source_system" in key:
        columns.append(sa.Column("source_system", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        name,
        *columns,
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column(
            "contactpoint_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False
        ),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="submissions_pkey"),
    )


def _rebuild_on_sqlite(key: list[str]) -> None:
    # SQLite cannot change a primary key in place: a new table, the rows copied, the old dropped.
    _table("submissions_rebuilt", key)
    op.execute(
        "INSERT INTO submissions_rebuilt (organisation, request_id, request_hash, contactpoint_id, outcome,"
        " created_at) SELECT organisation, request_id, request_hash, contactpoint_id, outcome, created_at"
        " FROM submissions"
    )
    op.drop_index("ix_submissions_created_at", "submissions")
    op.drop_table("submissions")
    op.rename_table("submissions_rebuilt", "submissions")
    op.create_index("ix_submissions_created_at", "submissions", ["created_at"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column(
            "submissions", sa.Column("source_system", sa.String(64), nullable=False, server_default="")
        )
        op.drop_constraint("submissions_pkey", "submissions", type_="primary")
        op.create_primary_key("submissions_pkey", "submissions", _NEW)
    else:
        _rebuild_on_sqlite(_NEW)


def downgrade() -> None:
    # Only the first answer of each (organisation, request id) can stay.
    op.execute(
        "DELETE FROM submissions WHERE EXISTS (SELECT 1 FROM submissions AS s"
        " WHERE s.organisation = submissions.organisation AND s.request_id = submissions.request_id"
        " AND (s.created_at, s.source_system) < (submissions.created_at, submissions.source_system))"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("submissions_pkey", "submissions", type_="primary")
        op.drop_column("submissions", "source_system")
        op.create_primary_key("submissions_pkey", "submissions", _OLD)
    else:
        _rebuild_on_sqlite(_OLD)
