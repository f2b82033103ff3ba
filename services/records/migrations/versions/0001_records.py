"""children, source records, match keys, submissions

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "children",
        sa.Column("contactpoint_id", sa.String(12), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shielded", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "source_records",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("source_system", sa.String(64), nullable=False),
        sa.Column("source_record_id", sa.String(128), nullable=False),
        sa.Column(
            "contactpoint_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False
        ),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True)),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "organisation", "source_system", "source_record_id", name="uq_source_records_key"
        ),
    )
    op.create_index("ix_source_records_contactpoint_id", "source_records", ["contactpoint_id"])
    op.create_index(
        "ix_source_records_system_record", "source_records", ["source_system", "source_record_id"]
    )
    op.create_table(
        "match_keys",
        sa.Column("source_id", sa.String(32), sa.ForeignKey("source_records.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column(
            "contactpoint_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False
        ),
        sa.Column("family_key", sa.String(128), nullable=False),
        sa.Column("given_keys", sa.String(512), nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("postcode_key", sa.String(8), nullable=False),
        sa.Column("gender", sa.Integer, nullable=False),
    )
    op.create_index("ix_match_keys_contactpoint_id", "match_keys", ["contactpoint_id"])
    op.create_index("ix_match_keys_dob_family", "match_keys", ["date_of_birth", "family_key"])
    op.create_index("ix_match_keys_dob_postcode", "match_keys", ["date_of_birth", "postcode_key"])
    op.create_table(
        "submissions",
        sa.Column("organisation", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column(
            "contactpoint_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False
        ),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_submissions_created_at", "submissions", ["created_at"])


def downgrade() -> None:
    op.drop_table("submissions")
    op.drop_table("match_keys")
    op.drop_table("source_records")
    op.drop_table("children")
