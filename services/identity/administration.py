"""Managing people's accounts: suspend, reinstate, reset the second factor; and the platform
operator's machine-account chores (rotate a secret, disable an account).

Administrators act only on people of their own organisation (`scope`); anyone else's account is
NOT_FOUND, as is an account that does not exist, so an administrator cannot probe other
organisations. `scope=None` is the platform itself: the operator's command line, or the gateway
suspending a person over the daily record limit.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from contactpoint.platform.auth import PERSON, SERVICE
from contactpoint.platform.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from contactpoint.platform.text import breaks_lines, says_something
from services.identity import credentials, repository
from services.identity.domain import USERNAME_RULE, plausible_name, typed_username
from services.identity.repository import Account
from services.identity.sealing import Sealer

MAX_REASON = 500


@dataclass(frozen=True)
class TotpEnrolment:
    """A new TOTP secret, shown once to enrol an authenticator."""

    totp_secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class NewSecret:
    """A machine account's new client secret, shown once."""

    client_id: str
    client_secret: str


def reason_violations(reason: str, *, required: bool = True) -> list[FieldViolation]:
    """What is wrong with a reason: missing (when required), too long or more than one line."""
    if required and not says_something(reason):
        return [FieldViolation("reason", "is required")]
    if len(reason) > MAX_REASON or breaks_lines(reason):
        return [FieldViolation("reason", f"at most {MAX_REASON} printable characters")]
    return []


def checked_request(
    username: str, reason: str, *, reason_required: bool = True, violations: Sequence[FieldViolation] = ()
) -> str:
    """The username of an administrator's call, read as Login reads it (`typed_username`);
    InvalidArgument naming every bad field (username, reason, and the call's own `violations`) if
    any is bad. Checked before any account is looked up, so that it says nothing about which
    accounts exist."""
    name = typed_username(username)
    problems = reason_violations(reason, required=reason_required) + list(violations)
    if not name:
        problems.insert(0, FieldViolation("username", "is required"))
    elif not plausible_name(name):
        # Said without repeating it: a name can be anything a caller typed, of any length.
        problems.insert(0, FieldViolation("username", USERNAME_RULE))
    if problems:
        raise InvalidArgument(problems)
    return name


@dataclass(frozen=True)
class Administrator:
    """The person an administrator's call (or a change of their own password) is made by, as
    their token says (`scope` is their organisation)."""

    username: str
    token_id: str
    issued_at: float  # Unix seconds


def token_holder(
    conn: Connection, by: Administrator, *, role: str | None = None, lock: bool = False
) -> Account:
    """The account of the person whose token makes a call, as identity's own tables have it now;
    Unauthenticated if that token no longer works (suspended, logged out, ended by a reset) or
    the account no longer holds `role`. Identity holds the truth about accounts: a token ended a
    moment ago is refused here at once, not after the verifiers' next poll (found by probing: a
    suspended administrator reinstated themselves within that window)."""
    account = repository.account_by_name(conn, kind=PERSON, name=by.username, lock=lock)
    cut_off = account.tokens_not_before if account is not None else None
    if (
        account is None
        or account.suspended
        or (role is not None and role not in account.roles)
        or (cut_off is not None and by.issued_at <= cut_off.timestamp())
        or repository.is_revoked(conn, by.token_id)
    ):
        raise Unauthenticated("invalid token")
    return account


def _still_administering(conn: Connection, by: Administrator | None) -> None:
    if by is not None:
        token_holder(conn, by, role="admin")


def _not_oneself(by: Administrator | None, username: str, what: str) -> None:
    if by is not None and by.username == username:
        raise PermissionDenied(
            f"an administrator cannot {what} their own account; another administrator must"
        )


def person(conn: Connection, *, username: str, scope: str | None) -> Account:
    """The person named (checked by `checked_request`), if of the scope's organisation."""
    account = repository.account_by_name(conn, kind=PERSON, name=username, lock=True)
    if account is None or (scope is not None and account.organisation != scope):
        raise NotFound(f"no user {username!r}")
    return account


def suspend(
    conn: Connection, *, username: str, reason: str, scope: str | None, by: Administrator | None = None
) -> None:
    """Suspend a person: every token they hold stops working (within a verifier poll) and for
    good, and they cannot log in until reinstated."""
    _still_administering(conn, by)
    username = checked_request(username, reason)
    account = person(conn, username=username, scope=scope)
    now = datetime.now(UTC)
    repository.update_account(conn, account.id, suspended=True, tokens_not_before=now, suspended_at=now)
    repository.bump_version(conn)


def reinstate(
    conn: Connection, *, username: str, reason: str, scope: str | None, by: Administrator | None = None
) -> None:
    """Lift a suspension and clear a lockout; the person logs in again (old tokens stay dead).
    Never one's own: another administrator decides."""
    _still_administering(conn, by)  # first: a suspended administrator hears UNAUTHENTICATED
    username = checked_request(username, reason)
    _not_oneself(by, username, "reinstate")
    account = person(conn, username=username, scope=scope)
    repository.update_account(conn, account.id, suspended=False, failed_logins=0, locked_until=None)
    repository.bump_version(conn)


def reset_totp(
    conn: Connection,
    *,
    username: str,
    reason: str,
    scope: str | None,
    issuer: str,
    sealer: Sealer,
    by: Administrator | None = None,
) -> TotpEnrolment:
    """Give a person a new TOTP secret; the old one stops working at once, and so, within 2 s
    everywhere, do the tokens they hold: a second factor is reset because a phone was lost or
    taken, and whoever has it may be logged in (found by probing: a session from before the reset
    still read a child). Never one's own (a stolen token and password must not be enough to take
    over the second factor)."""
    _still_administering(conn, by)
    username = checked_request(username, reason, reason_required=False)
    _not_oneself(by, username, "reset the second factor of")
    account = person(conn, username=username, scope=scope)
    secret = credentials.new_totp_secret()
    repository.update_account(
        conn,
        account.id,
        totp_secret=sealer.seal(secret, account_id=account.id),
        totp_last_step=0,
        tokens_not_before=datetime.now(UTC),
    )
    repository.bump_version(conn)
    return TotpEnrolment(secret, credentials.totp_uri(secret, username=username, issuer=issuer))


def _machine(conn: Connection, name: str) -> Account:
    account = repository.account_by_name(conn, kind=SERVICE, name=name, lock=True)
    if account is None:
        raise NotFound(f"no service account {name!r}")
    return account


def rotate_service_secret(conn: Connection, *, name: str, end_tokens: bool = True) -> NewSecret:
    """A new client secret for a machine account; the old one stops working at once, and so (with
    `end_tokens`, as a secret is rotated because it may be known) do the tokens issued with it,
    within 2 s. Without `end_tokens` (a planned rotation) they run out within their lifetime."""
    account = _machine(conn, name)
    secret = secrets.token_urlsafe(32)
    values: dict[str, object] = {"secret_hash": credentials.hash_machine_secret(secret)}
    if end_tokens:
        values["tokens_not_before"] = datetime.now(UTC)
    repository.update_account(conn, account.id, **values)
    if end_tokens:
        repository.bump_version(conn)
    return NewSecret(str(account.client_id), secret)


def set_service_account_disabled(conn: Connection, *, name: str, disabled: bool) -> None:
    """Disable a machine account (its tokens stop working, it gets no new ones) or enable it."""
    account = _machine(conn, name)
    values: dict[str, object] = {"suspended": disabled}
    if disabled:
        values["tokens_not_before"] = datetime.now(UTC)
    repository.update_account(conn, account.id, **values)
    repository.bump_version(conn)
