"""The gateway's tables (SQLAlchemy Core): each person's allowance, shared by every gateway
replica. The Alembic history in migrations/ creates them."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# The per-minute rate, as GCRA: the theoretical arrival time of the person's next read.
rates = Table(
    "rates",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("tat", Float, nullable=False),  # no longer used (GCRA's theoretical arrival time)
    # The times of the person's reads allowed in the last minute, oldest first, space-separated
    # (`allowance.sliding`); NULL for none.
    Column("recent", Text),
    # A fresh random id written by each allowed read: how the one-statement GCRA says "allowed".
    Column("grant_id", String(32)),
    # The person's latest trip over the daily limit (see limit_trips), read with the rate so that
    # a re-read of a child already counted is decided by one statement.
    Column("tripped_at", Float),
    # How many distinct items the person has counted on `count_day` since their latest trip: what
    # lets a child's first read of the day be counted by one statement. Never below the true count
    # (daily_reads), which the counting transaction reads and writes back here.
    Column("count_day", String(10)),
    Column("counted", Integer, nullable=False, server_default="0"),
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

# Each time a person went over the daily limit (and was to be suspended), kept for weeks as the
# record of it; the latest is also on their `rates` row, which decides: until identity's suspension
# of them is seen, every read is refused; after an administrator reinstates them, reads counted
# before that trip no longer count.
limit_trips = Table(
    "limit_trips",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("tripped_at", Float, primary_key=True),
)

# Logouts answered while identity could not be reached: the token's id (never the token) until
# identity has revoked it, or the token has expired. Refused by every gateway that reads it.
pending_logouts = Table(
    "pending_logouts",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Column("logged_out_at", Float, nullable=False),
)
