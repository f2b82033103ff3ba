"""Passwords after an account is made: a person changes their own (`IdentityService.ChangePassword`),
or the platform's operator sets a new one for a person who has forgotten theirs (`contactpoint
admin set-password`).

An account's first password is typed by whoever creates it (`admin create-user --password-stdin`),
so the person must be able to make it one only they know. They give the current password, checked
as a login checks it (outside the transaction, on the bounded Argon2 pool, after the username's
throttle), and a wrong one counts towards the lockout as a failed login does: a stolen token is no
way to guess the password. The new one meets the password rules (`passwords.password_problem`).

Either way every token the person holds stops working within 2 s, the one that asked too (log in
again with the new password): whoever knew the old password may be logged in.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rapidfuzz.distance import Levenshtein
from sqlalchemy import Connection

from contactpoint.platform.errors import (
    ContactPointError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
)
from services.identity import credentials, repository
from services.identity.administration import Administrator, checked_request, person, token_holder
from services.identity.domain import typed_username
from services.identity.login import PasswordCheck, count_failure
from services.identity.passwords import password_problem
from services.identity.settings import IdentitySettings

# Longer than any passphrase a person types; a longer one is refused before it is hashed.
MAX_PASSWORD = 1024
# A new password this few edits from the current one, or holding it whole, is refused.
TOO_LIKE = 3
MIN_CONTAINED = 6
WRONG_CURRENT = "is not this account's password"
LOCKED = (
    "the account is locked after failed attempts: try again once the lockout ends, or ask an "
    "administrator to reinstate it"
)


def change_violations(username: str, current: str, new: str) -> list[FieldViolation]:
    """Every bad field of a change of one's own password, before anything is checked or stored."""
    problems = []
    if not current:
        problems.append(FieldViolation("current_password", "is required"))
    if not new:
        problems.append(FieldViolation("new_password", "is required"))
    elif len(new) > MAX_PASSWORD:
        problems.append(FieldViolation("new_password", f"at most {MAX_PASSWORD} characters"))
    elif new == current:
        problems.append(FieldViolation("new_password", "must differ from the current password"))
    elif _too_like(new, current):
        # A character or two changed, or the old one with more around it: whoever knew the old
        # password would guess it (found by re-probing).
        problems.append(FieldViolation("new_password", "too like the current password"))
    elif (problem := password_problem(new, username=username)) is not None:
        problems.append(FieldViolation("new_password", problem))
    return problems


def _too_like(new: str, current: str) -> bool:
    a, b = new.casefold(), current.casefold()
    return Levenshtein.distance(a, b) <= TOO_LIKE or (len(b) >= MIN_CONTAINED and b in a)


@dataclass(frozen=True)
class ChangeOutcome:
    """What a change came to: None, or the refusal to answer once its count is stored; and why,
    for the audit log."""

    refusal: ContactPointError | None
    why: str = ""
    locked: bool = False  # this refusal locked the account (a WARNING in the log, as a login's)


def complete_change(
    conn: Connection,
    *,
    by: Administrator,
    check: PasswordCheck,
    new_hash: str | None,
    settings: IdentitySettings,
    now: datetime,
) -> ChangeOutcome:
    """The change, in one transaction with the account locked (concurrent attempts are counted
    one after another): the new hash stored and every token ended, or the refusal, with a wrong
    current password counted as a failed login (so the transaction must still commit)."""
    account = token_holder(conn, by, lock=True)
    if account.id != check.account_id:
        raise Unavailable("the account changed while the password was checked; retry")
    if account.locked_until is not None and account.locked_until > now:
        return ChangeOutcome(FailedPrecondition(LOCKED, "ACCOUNT_LOCKED"), "the account is locked")
    if not check.password_ok or new_hash is None:
        locked = count_failure(conn, account, now=now, settings=settings)
        refusal = InvalidArgument([FieldViolation("current_password", WRONG_CURRENT)])
        why = "a wrong current password" + (", which locked the account" if locked else "")
        return ChangeOutcome(refusal, why, locked)
    repository.update_account(
        conn, account.id, secret_hash=new_hash, tokens_not_before=now, failed_logins=0, locked_until=None
    )
    repository.bump_version(conn)
    return ChangeOutcome(None)


def set_password(conn: Connection, *, username: str, password: str, reason: str, now: datetime) -> None:
    """The platform operator's: a new password for a person who has forgotten theirs (they change
    it themselves next); their tokens end and a lockout is lifted. InvalidArgument naming every
    bad field."""
    name = checked_request(username, reason, violations=_new_password_violations(username, password))
    account = person(conn, username=name, scope=None)
    repository.update_account(
        conn,
        account.id,
        secret_hash=credentials.hash_secret(password),
        tokens_not_before=now,
        failed_logins=0,
        locked_until=None,
    )
    repository.bump_version(conn)


def _new_password_violations(username: str, password: str) -> list[FieldViolation]:
    if len(password) > MAX_PASSWORD:
        return [FieldViolation("password", f"at most {MAX_PASSWORD} characters")]
    problem = password_problem(password, username=typed_username(username))
    return [] if problem is None else [FieldViolation("password", problem)]
