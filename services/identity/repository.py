"""The only place identity's SQL lives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from services.identity.tables import accounts, revoked_tokens, state_version


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Account:
    """One row of accounts: a person or a machine account."""

    id: str
    kind: str
    name: str
    client_id: str | None
    organisation: str
    roles: tuple[str, ...]
    secret_hash: str
    # Sealed (encrypted) as stored; see services/identity/sealing.py.
    totp_secret: str | None
    totp_last_step: int
    failed_logins: int
    locked_until: datetime | None
    suspended: bool
    tokens_not_before: datetime | None

    @classmethod
    def of(cls, row: Row[Any]) -> Account:
        """The account in a selected row of accounts."""
        return cls(
            id=row.id,
            kind=row.kind,
            name=row.name,
            client_id=row.client_id,
            organisation=row.organisation,
            roles=tuple(sorted(str(r) for r in row.roles)),
            secret_hash=row.secret_hash,
            totp_secret=row.totp_secret,
            totp_last_step=int(row.totp_last_step),
            failed_logins=int(row.failed_logins),
            locked_until=_aware(row.locked_until),
            suspended=bool(row.suspended),
            tokens_not_before=_aware(row.tokens_not_before),
        )


def _one(conn: Connection, query: Any) -> Account | None:
    row = conn.execute(query).first()
    return Account.of(row) if row is not None else None


def account_by_name(conn: Connection, *, kind: str, name: str, lock: bool = False) -> Account | None:
    """One account by kind and name (row-locked on PostgreSQL when `lock`)."""
    query = select(accounts).where(accounts.c.kind == kind, accounts.c.name == name)
    if lock:
        query = query.with_for_update()
    return _one(conn, query)


def account_by_client_id(conn: Connection, client_id: str) -> Account | None:
    """One machine account by its client id."""
    return _one(conn, select(accounts).where(accounts.c.client_id == client_id))


def person_totp_secrets(conn: Connection) -> list[tuple[str, str]]:
    """(account id, stored TOTP secret) of every person."""
    rows = conn.execute(
        select(accounts.c.id, accounts.c.totp_secret).where(accounts.c.totp_secret.is_not(None))
    )
    return [(r.id, r.totp_secret) for r in rows]


def new_account_id() -> str:
    """A fresh account id."""
    return str(uuid.uuid4())


def insert_account(
    conn: Connection,
    *,
    account_id: str,
    kind: str,
    name: str,
    organisation: str,
    roles: list[str],
    secret_hash: str,
    now: datetime,
    client_id: str | None = None,
    totp_secret: str | None = None,
) -> None:
    """Store a new, active account with no failed logins."""
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


def update_account(conn: Connection, account_id: str, **values: Any) -> None:
    """Change an account."""
    conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))


def suspended_subjects(conn: Connection) -> list[str]:
    """Ids of every suspended account."""
    return list(conn.execute(select(accounts.c.id).where(accounts.c.suspended.is_(True))).scalars())


def suspended_since(conn: Connection) -> dict[str, datetime]:
    """Per account id ever suspended, when it last was (reinstated since or not)."""
    rows = conn.execute(
        select(accounts.c.id, accounts.c.suspended_at).where(accounts.c.suspended_at.is_not(None))
    )
    return {r.id: _aware(r.suspended_at) for r in rows}  # type: ignore[misc]


def tokens_not_before(conn: Connection) -> dict[str, datetime]:
    """Per account id, the moment before which its tokens never work again."""
    rows = conn.execute(
        select(accounts.c.id, accounts.c.tokens_not_before).where(accounts.c.tokens_not_before.is_not(None))
    )
    return {r.id: _aware(r.tokens_not_before) for r in rows}  # type: ignore[misc]


def revoke(conn: Connection, *, token_id: str, expires_at: datetime, now: datetime) -> bool:
    """Record a revoked token; False when it was revoked already."""
    if is_revoked(conn, token_id):
        return False
    conn.execute(insert(revoked_tokens).values(token_id=token_id, expires_at=expires_at, revoked_at=now))
    return True


def is_revoked(conn: Connection, token_id: str) -> bool:
    """Whether a token was revoked (logged out)."""
    found = conn.execute(select(revoked_tokens.c.token_id).where(revoked_tokens.c.token_id == token_id))
    return found.first() is not None


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
