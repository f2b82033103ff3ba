"""The only place identity's SQL lives."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from services.identity.tables import accounts, revoked_tokens, state_version


def account_by_name(conn: Connection, *, kind: str, name: str, lock: bool = False) -> RowMapping | None:
    """One account by kind and name (row-locked on PostgreSQL when `lock`)."""
    query = select(accounts).where(accounts.c.kind == kind, accounts.c.name == name)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def account_by_client_id(conn: Connection, client_id: str) -> RowMapping | None:
    """One machine account by its client id."""
    return conn.execute(select(accounts).where(accounts.c.client_id == client_id)).mappings().first()


def insert_account(
    conn: Connection,
    *,
    kind: str,
    name: str,
    organisation: str,
    roles: list[str],
    secret_hash: str,
    now: datetime,
    client_id: str | None = None,
    totp_secret: str | None = None,
) -> str:
    """Store a new, active account with no failed logins; returns its id."""
    account_id = str(uuid.uuid4())
    conn.execute(
        insert(accounts).values(
            id=account_id,
            kind=kind,
            name=name,
            client_id=client_id,
            organisation=organisation,
            roles=roles,
            secret_hash=secret_hash,
            totp_secret=totp_secret,
            totp_last_step=0,
            failed_logins=0,
            suspended=False,
            created_at=now,
        )
    )
    return account_id


def update_account(conn: Connection, account_id: str, **values: Any) -> None:
    """Change an account."""
    conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))


def suspended_subjects(conn: Connection) -> list[str]:
    """Ids of every suspended account."""
    return list(conn.execute(select(accounts.c.id).where(accounts.c.suspended.is_(True))).scalars())


def revoke(conn: Connection, *, token_id: str, expires_at: datetime, now: datetime) -> bool:
    """Record a revoked token; False when it was revoked already."""
    exists = conn.execute(
        select(revoked_tokens.c.token_id).where(revoked_tokens.c.token_id == token_id)
    ).first()
    if exists:
        return False
    conn.execute(insert(revoked_tokens).values(token_id=token_id, expires_at=expires_at, revoked_at=now))
    return True


def revoked_token_ids(conn: Connection, *, now: datetime) -> list[str]:
    """Revoked tokens that have not yet expired (expired ones need no revocation)."""
    return list(
        conn.execute(select(revoked_tokens.c.token_id).where(revoked_tokens.c.expires_at > now)).scalars()
    )


def forget_expired_revocations(conn: Connection, *, now: datetime) -> None:
    """Drop revocations of tokens that have expired anyway."""
    conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at <= now))


def current_version(conn: Connection) -> int:
    """The verification state's version."""
    return int(conn.execute(select(state_version.c.version).where(state_version.c.id == 1)).scalar_one())


def bump_version(conn: Connection) -> None:
    """Tell verifiers that revocations or suspensions changed."""
    conn.execute(
        update(state_version).where(state_version.c.id == 1).values(version=state_version.c.version + 1)
    )
