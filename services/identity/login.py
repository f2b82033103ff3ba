"""A person's login: the password checked outside any transaction (Argon2 is slow), then lockout,
the one-time TOTP rule and the failure count in one locked transaction.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from contactpoint.platform.auth import PERSON
from services.identity import credentials, repository
from services.identity.repository import Account
from services.identity.sealing import Sealer
from services.identity.settings import IdentitySettings
from services.identity.token_issuer import IssuedToken, TokenIssuer

# Any login failure says only this: never which factor was wrong or whether the user exists.
LOGIN_FAILED = "login failed"


@dataclass(frozen=True)
class PasswordCheck:
    """The slow part of a login, done outside the transaction: which account, was the password right."""

    account_id: str | None
    password_ok: bool


def password_hash_of(conn: Connection, *, username: str) -> tuple[str | None, str | None]:
    """The person's account id and password hash (None, None for an unknown username): the
    hash is checked outside any transaction, by `HashingGate`."""
    account = repository.account_by_name(conn, kind=PERSON, name=username)
    return (account.id, account.secret_hash) if account else (None, None)


def organisation_of(conn: Connection, username: str) -> str | None:
    """The organisation of the person's account `username` names (None: no such account)."""
    account = repository.account_by_name(conn, kind=PERSON, name=username)
    return account.organisation if account else None


@dataclass(frozen=True)
class LoginOutcome:
    """What a login came to: the token issued (None: refused), and whether the refusal locked the
    account."""

    issued: IssuedToken | None
    locked: bool = False
    # Whether the username names a person's account (an unknown one is not recorded as typed).
    known: bool = True
    # For the audit log alone (the person hears "login failed"): why it was refused, and the
    # account's organisation.
    why: str = ""
    organisation: str = ""


UNKNOWN = LoginOutcome(None, known=False, why="no such account")


def complete_login(
    conn: Connection,
    *,
    username: str,
    check: PasswordCheck,
    totp_code: str,
    issuer: TokenIssuer,
    settings: IdentitySettings,
    sealer: Sealer,
) -> LoginOutcome:
    """Apply lockout, the one-time TOTP rule and the failure count in one locked transaction: the
    token issued, or none when the login failed (the failure is counted, so the transaction must
    still commit), and whether that failure locked the account.

    The account row is locked (FOR UPDATE on PostgreSQL; the write lock on SQLite), so concurrent
    attempts are counted one after another and none slips past the lockout.
    """
    now = datetime.now(UTC)
    account = repository.account_by_name(conn, kind=PERSON, name=username, lock=True)
    if account is None:
        return UNKNOWN
    org = account.organisation
    if account.id != check.account_id or account.totp_secret is None:
        return LoginOutcome(None, why="the account changed during the login", organisation=org)
    locked_until = account.locked_until
    if account.suspended:
        return LoginOutcome(None, why="the account is suspended", organisation=org)
    if locked_until is not None and locked_until > now:
        return LoginOutcome(None, why="the account is locked", organisation=org)
    secret = sealer.open(account.totp_secret, account_id=account.id)
    step = credentials.totp_step(secret, totp_code, now=now.timestamp())
    if check.password_ok and step is not None:
        if step > account.totp_last_step:
            repository.update_account(
                conn, account.id, failed_logins=0, locked_until=None, totp_last_step=step
            )
            return LoginOutcome(issuer.issue(account, now=now))
        # The right password with a code already used: refused (a code works once), but not
        # counted, so that a client signing its person in twice at once, or retrying a sign-in
        # that succeeded, does not lock them out. Guessing gains nothing: only a fresh code works.
        return LoginOutcome(None, why="a code already used (the password was right)", organisation=org)
    # Which factor was wrong is for the auditor alone: a right password with a wrong code says the
    # password is known to someone.
    why = "a wrong password" if not check.password_ok else "a wrong code (the password was right)"
    locked = count_failure(conn, account, now=now, settings=settings)
    return LoginOutcome(None, locked=locked, why=why, organisation=org)


def count_failure(conn: Connection, account: Account, *, now: datetime, settings: IdentitySettings) -> bool:
    """Count a failed login; whether it locked the account."""
    failures = account.failed_logins + 1
    if failures >= settings.max_failed_logins:
        repository.update_account(
            conn,
            account.id,
            failed_logins=0,
            locked_until=now + timedelta(seconds=settings.lockout_seconds),
        )
        return True
    repository.update_account(conn, account.id, failed_logins=failures)
    return False
