"""The witness's tables (SQLAlchemy Core). The Alembic history in migrations/ creates them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

# Per log (by origin): the newest checkpoint cosigned, the log's key it was verified with, and
# the cosignature. Updated only to a checkpoint proven consistent with the one it replaces.
logs = Table(
    "logs",
    metadata,
    Column("origin", String(255), primary_key=True),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("checkpoint", Text, nullable=False),
    Column("log_signature", LargeBinary(64), nullable=False),
    Column("cosigned_at", BigInteger, nullable=False),
    Column("cosignature", LargeBinary(64), nullable=False),
)

# Every key a log has signed with, in order: the first, then one per logged rotation, each from
# the first tree size it signed. Only ever inserted.
log_keys = Table(
    "log_keys",
    metadata,
    Column("origin", String(255), primary_key=True),
    Column("public_key", LargeBinary(32), primary_key=True),
    Column("from_size", BigInteger, nullable=False),
    Column("added_at", BigInteger, nullable=False),
)
