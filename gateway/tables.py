"""The gateway's tables (SQLAlchemy Core): each person's allowance, shared by every gateway
replica. The Alembic history in migrations/ creates them."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, MetaData, String, Table

metadata = MetaData()

# The per-minute rate, as GCRA: the theoretical arrival time of the person's next read.
rates = Table(
    "rates",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("tat", Float, nullable=False),
    # A fresh random id written by each allowed read: how the one-statement GCRA says "allowed".
    Column("grant_id", String(32)),
)

# What each person read each (UTC) day: a child's id, or a search that found none or too many.
daily_reads = Table(
    "daily_reads",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("item", String(80), primary_key=True),
    Column("read_at", Float, nullable=False),
)
Index("ix_daily_reads_day", daily_reads.c.day)

# When a person went over the daily limit (and was to be suspended). Until identity's suspension
# of them is seen, every read is refused; after an administrator reinstates them, reads counted
# before this moment no longer count. Kept for weeks, not days: a suspension that never landed is
# not forgotten overnight.
limit_trips = Table(
    "limit_trips",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("tripped_at", Float, primary_key=True),
)
