"""Identity's domain: accounts, authentication with lockout, tokens and revocations.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from contactpoint.platform.auth import ALGORITHM, ISSUER, PERSON, SERVICE, VerificationState
from contactpoint.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unauthenticated
from contactpoint.platform.keys import key_id, raw_public_key
from services.identity import credentials, repository
from services.identity.settings import IdentitySettings

# Machine accounts: council systems, the gateway, and the records service (which audits data
# managers' calls in the audit log, as the gateway audits readers').
SERVICE_ROLES = frozenset({"council-system", "gateway", "records-service"})
PERSON_ROLES = frozenset({"practitioner", "shield-override", "data-manager", "auditor", "admin"})
ROLES = PERSON_ROLES | SERVICE_ROLES
MIN_PASSWORD_LENGTH = 12
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}[a-z0-9]$")
_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Any login failure says only this: never which factor was wrong or whether the user exists.
LOGIN_FAILED = "login failed"


@dataclass(frozen=True)
class IssuedToken:
    """A signed access token and when it expires."""

    token: str
    expire_time: datetime
    organisation: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class NewUser:
    """A created person: the TOTP secret is shown once to enrol an authenticator."""

    username: str
    totp_secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class NewServiceAccount:
    """A created machine account: the secret is shown once and stored only as a hash."""

    client_id: str
    client_secret: str


class TokenIssuer:
    """Signs access tokens with identity's Ed25519 key."""

    def __init__(self, key: Ed25519PrivateKey, ttl_seconds: int) -> None:
        self._key = key
        self.key_id = key_id(key)
        self.public_key = raw_public_key(key)
        self._ttl = timedelta(seconds=ttl_seconds)

    def issue(self, account: dict[str, object], *, now: datetime) -> IssuedToken:
        """A token for `account` (a row of accounts)."""
        expire = now + self._ttl
        roles = tuple(sorted(str(r) for r in account["roles"]))  # type: ignore[attr-defined]
        claims = {
            "iss": ISSUER,
            "sub": account["id"],
            "name": account["name"],
            "org": account["organisation"],
            "roles": list(roles),
            "kind": account["kind"],
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int(expire.timestamp()),
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return IssuedToken(token, expire.replace(microsecond=0), str(account["organisation"]), roles)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _check_account_fields(
    name: str, org: str, roles: list[str], allowed: frozenset[str], name_field: str
) -> None:
    problems = []
    if not _NAME.match(name):
        problems.append(FieldViolation(name_field, "3-64 lower-case letters, digits, '.', '_', '-' or '@'"))
    if not _ORG.match(org):
        problems.append(FieldViolation("org", "1-64 letters, digits, '.', '_' or '-'"))
    if not roles:
        problems.append(FieldViolation("role", "at least one role is required"))
    for role in roles:
        if role not in allowed:
            problems.append(FieldViolation("role", f"unknown role {role!r}; one of {sorted(allowed)}"))
    if problems:
        raise InvalidArgument(problems)


def create_user(
    conn: Connection, *, username: str, organisation: str, roles: list[str], password: str, issuer: str
) -> NewUser:
    """Create a person's account with a password and a fresh TOTP secret."""
    _check_account_fields(username, organisation, roles, PERSON_ROLES, "username")
    if "shield-override" in roles and "practitioner" not in roles:
        raise InvalidArgument([FieldViolation("role", "shield-override is held only with practitioner")])
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument([FieldViolation("password", f"at least {MIN_PASSWORD_LENGTH} characters")])
    secret = credentials.new_totp_secret()
    try:
        with conn.begin_nested():
            repository.insert_account(
                conn,
                kind=PERSON,
                name=username,
                organisation=organisation,
                roles=sorted(set(roles)),
                secret_hash=credentials.hash_secret(password),
                now=_now(),
                totp_secret=secret,
            )
    except IntegrityError as exc:
        raise FailedPrecondition(f"user {username!r} already exists", "ALREADY_EXISTS") from exc
    return NewUser(username, secret, credentials.totp_uri(secret, username=username, issuer=issuer))


def create_service_account(
    conn: Connection, *, name: str, organisation: str, role: str, rotate_if_exists: bool = False
) -> NewServiceAccount:
    """Create a machine account (or, with `rotate_if_exists`, give an existing one a new secret)."""
    _check_account_fields(name, organisation, [role], SERVICE_ROLES, "name")
    secret = secrets.token_urlsafe(32)
    existing = repository.account_by_name(conn, kind=SERVICE, name=name, lock=True)
    if existing is not None:
        if not rotate_if_exists:
            raise FailedPrecondition(f"service account {name!r} already exists", "ALREADY_EXISTS")
        repository.update_account(
            conn,
            existing["id"],
            secret_hash=credentials.hash_secret(secret),
            organisation=organisation,
            roles=[role],
        )
        return NewServiceAccount(str(existing["client_id"]), secret)
    client_id = f"{name}-{secrets.token_hex(6)}"
    try:
        with conn.begin_nested():
            repository.insert_account(
                conn,
                kind=SERVICE,
                name=name,
                organisation=organisation,
                roles=[role],
                secret_hash=credentials.hash_secret(secret),
                now=_now(),
                client_id=client_id,
            )
    except IntegrityError as exc:  # created at the same moment by someone else
        raise FailedPrecondition(f"service account {name!r} already exists", "ALREADY_EXISTS") from exc
    return NewServiceAccount(client_id, secret)


def issue_service_token(
    conn: Connection, *, client_id: str, client_secret: str, issuer: TokenIssuer
) -> IssuedToken:
    """A token for a machine account whose secret matches."""
    account = repository.account_by_client_id(conn, client_id) if client_id else None
    ok = credentials.verify_secret(account["secret_hash"] if account else None, client_secret)
    if account is None or not ok or account["suspended"]:
        raise Unauthenticated("invalid client credentials")
    return issuer.issue(dict(account), now=_now())


@dataclass(frozen=True)
class PasswordCheck:
    """The slow part of a login, done outside the transaction: which account, was the password right."""

    account_id: str | None
    password_ok: bool


def check_password(conn: Connection, *, username: str, password: str) -> PasswordCheck:
    """Look the person up and verify the password (full Argon2 work even for unknown users)."""
    account = repository.account_by_name(conn, kind=PERSON, name=username)
    ok = credentials.verify_secret(account["secret_hash"] if account else None, password)
    return PasswordCheck(account["id"] if account else None, ok)


def complete_login(
    conn: Connection,
    *,
    username: str,
    check: PasswordCheck,
    totp_code: str,
    issuer: TokenIssuer,
    settings: IdentitySettings,
) -> IssuedToken | None:
    """Apply lockout, the one-time TOTP rule and the failure count in one locked transaction;
    None when the login failed (the failure is counted, so the transaction must still commit).

    The account row is locked (FOR UPDATE on PostgreSQL; the write lock on SQLite), so concurrent
    attempts are counted one after another and none slips past the lockout.
    """
    now = _now()
    account = repository.account_by_name(conn, kind=PERSON, name=username, lock=True)
    if account is None or account["id"] != check.account_id:
        return None
    locked_until = _aware(account["locked_until"])
    if account["suspended"] or (locked_until is not None and locked_until > now):
        return None
    step = credentials.totp_step(account["totp_secret"], totp_code, now=now.timestamp())
    if check.password_ok and step is not None and step > account["totp_last_step"]:
        repository.update_account(
            conn, account["id"], failed_logins=0, locked_until=None, totp_last_step=step
        )
        return issuer.issue(dict(account), now=now)
    failures = account["failed_logins"] + 1
    if failures >= settings.max_failed_logins:
        repository.update_account(
            conn,
            account["id"],
            failed_logins=0,
            locked_until=now + timedelta(seconds=settings.lockout_seconds),
        )
    else:
        repository.update_account(conn, account["id"], failed_logins=failures)
    return None


def revoke_token(conn: Connection, *, token_id: str, expire_time: datetime) -> None:
    """Revoke one token everywhere (verifiers learn within a poll interval)."""
    now = _now()
    if repository.revoke(conn, token_id=token_id, expires_at=expire_time, now=now):
        repository.forget_expired_revocations(conn, now=now)
        repository.bump_version(conn)


def set_suspended(conn: Connection, *, username: str, suspended: bool) -> None:
    """Suspend or reinstate a person: a suspended person's tokens stop working and login fails."""
    account = repository.account_by_name(conn, kind=PERSON, name=username, lock=True)
    if account is None:
        raise FailedPrecondition(f"no user {username!r}", "NO_SUCH_USER")
    values: dict[str, object] = {"suspended": suspended}
    if not suspended:
        values.update(failed_logins=0, locked_until=None)
    repository.update_account(conn, account["id"], **values)
    repository.bump_version(conn)


def verification_state(
    conn: Connection, *, issuer: TokenIssuer, known_version: int
) -> VerificationState | None:
    """Keys and revocations for verifiers; None when `known_version` is current."""
    version = repository.current_version(conn)
    if known_version == version:
        return None
    return VerificationState(
        version=version,
        keys={issuer.key_id: issuer.public_key},
        revoked_token_ids=frozenset(repository.revoked_token_ids(conn, now=_now())),
        suspended_subjects=frozenset(repository.suspended_subjects(conn)),
    )
