"""Records' tables (SQLAlchemy Core). The Alembic history in migrations/ creates them.

A child is composed from the source records linked to it; the child row itself holds only what
belongs to the registry (its ContactPoint ID, lifecycle status and shielding). Child rows are never
deleted, so an ID can never be issued twice.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

ACTIVE = "active"
ARCHIVED = "archived"

children = Table(
    "children",
    metadata,
    Column("contactpoint_id", String(12), primary_key=True),
    Column("status", String(16), nullable=False),  # active | archived
    Column("shielded", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("archived_at", DateTime(timezone=True)),
)

source_records = Table(
    "source_records",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("organisation", String(64), nullable=False),
    Column("source_system", String(64), nullable=False),
    Column("source_record_id", String(128), nullable=False),
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    # The validated, normalised SourceRecord (protobuf JSON mapping, original field names).
    Column("content", JSON, nullable=False),
    # SHA-256 of the content without as_of: equal hashes mean an unchanged record.
    Column("content_hash", String(64), nullable=False),
    # As the source gave it (None when it did not): orders a child's sources, latest wins.
    Column("as_of", DateTime(timezone=True)),
    Column("withdrawn", Boolean, nullable=False, default=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organisation", "source_system", "source_record_id", name="uq_source_records_key"),
)
# Finds another organisation's record with the same ids (to refuse touching it).
Index("ix_source_records_system_record", source_records.c.source_system, source_records.c.source_record_id)

# One row per name (current first, then former names) of every active source record.
match_keys = Table(
    "match_keys",
    metadata,
    Column("source_id", String(32), ForeignKey("source_records.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    Column("family_key", String(128), nullable=False),
    # The given names' keys, space separated, in order.
    Column("given_keys", String(512), nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("postcode_key", String(8), nullable=False),
    Column("gender", Integer, nullable=False),
)
Index("ix_match_keys_dob_family", match_keys.c.date_of_birth, match_keys.c.family_key)
Index("ix_match_keys_dob_postcode", match_keys.c.date_of_birth, match_keys.c.postcode_key)

# Idempotency: the first answer to each (organisation, request_id).
submissions = Table(
    "submissions",
    metadata,
    Column("organisation", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    # SHA-256 of the record as submitted: a retry must send the same record.
    Column("request_hash", String(64), nullable=False),
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)
