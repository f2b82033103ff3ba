"""Identity's tables (SQLAlchemy Core). The Alembic history in migrations/ creates them."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),  # person | service
    # A person's username, or a machine account's name.
    Column("name", String(128), nullable=False),
    Column("client_id", String(64), unique=True),
    Column("organisation", String(64), nullable=False),
    Column("roles", JSON, nullable=False),
    # Argon2id: a person's password, or a machine account's client secret.
    Column("secret_hash", String(256), nullable=False),
    # The TOTP secret, encrypted with identity's data key (see services/identity/sealing.py).
    Column("totp_secret", String(255)),
    Column("totp_last_step", Integer, nullable=False, default=0),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("suspended", Boolean, nullable=False, default=False),
    # Tokens of this account issued before this moment never work again (set on suspension).
    Column("tokens_not_before", DateTime(timezone=True)),
    # When the account was last suspended (kept when reinstated; a password change leaves it).
    Column("suspended_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# Usernames are unique among people; machine account names among machine accounts.
Index("ix_accounts_kind_name", accounts.c.kind, accounts.c.name, unique=True)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
)

# One row: bumped on every change that verifiers must learn about (revocations, suspensions).
state_version = Table(
    "state_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

# Account changes made from the command line (`contactpoint admin …`), written in the same
# transaction as the change, waiting for the identity service to put them in the audit log
# (`operator_log`): the command line reaches identity's database, not the audit service.
operator_actions = Table(
    "operator_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("detail", String(1000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row: a constant sealed with the TOTP key (`totp_key`), so that another key is recognised as
# such before it seals anything.
totp_key_check = Table(
    "totp_key_check",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sealed", Text, nullable=False),
)
