"""Identity's domain: accounts, authentication with lockout, tokens and revocations.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from contactpoint.platform.auth import PERSON, SERVICE
from contactpoint.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unauthenticated
from contactpoint.platform.token_verifier import VerificationState
from services.identity import credentials, repository
from services.identity.passwords import password_problem
from services.identity.repository import Account
from services.identity.sealing import Sealer
from services.identity.token_issuer import IssuedToken, TokenIssuer

# The platform's own machine accounts, one each, named for their service in the platform's
# organisation: the gateway (reads for people), records (audits data managers' calls), identity
# (audits administrators' calls) and audit; each also fetches identity's verification state, which
# nobody else may read. Nobody else can be given these roles.
PLATFORM_ORG = "contactpoint"
PLATFORM_ACCOUNTS = {
    "gateway": "gateway",
    "records-service": "records",
    "identity-service": "identity",
    "audit-service": "audit",
}
PLATFORM_ROLES = frozenset(PLATFORM_ACCOUNTS)
# Machine accounts: council systems, and the platform's own.
SERVICE_ROLES = frozenset({"council-system", *PLATFORM_ACCOUNTS})
PERSON_ROLES = frozenset({"practitioner", "shield-override", "data-manager", "auditor", "admin"})
ROLES = PERSON_ROLES | SERVICE_ROLES
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}[a-z0-9]$")
USERNAME_RULE = "3-64 lower-case letters, digits, '.', '_', '-' or '@'"
_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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


def _now() -> datetime:
    return datetime.now(UTC)


def typed_username(username: str) -> str:
    """A username as a person typed it ("Casey.User "), read as the account's name: usernames are
    lower case. Login and the administrators' calls read names alike."""
    return username.strip().lower()


def plausible_name(name: str) -> bool:
    """Whether `name` could be a username or machine account name at all (a NUL or a 10,000
    character string cannot, and is never sent to the database)."""
    return bool(_NAME.fullmatch(name))


def plausible_client_id(client_id: str) -> bool:
    """Whether `client_id` could be one we issued (`<name>-<12 hex digits>`)."""
    name, _, suffix = client_id.rpartition("-")
    return plausible_name(name) and len(suffix) == 12 and all(c in "0123456789abcdef" for c in suffix)


def _check_account_fields(
    name: str, org: str, roles: list[str], allowed: frozenset[str], name_field: str
) -> None:
    problems = []
    if not _NAME.fullmatch(name):
        problems.append(FieldViolation(name_field, USERNAME_RULE))
    if not _ORG.fullmatch(org):
        problems.append(FieldViolation("org", "1-64 letters, digits, '.', '_' or '-'"))
    if not roles:
        problems.append(FieldViolation("role", "at least one role is required"))
    for role in roles:
        if role not in allowed:
            problems.append(FieldViolation("role", f"unknown role {role!r}; one of {sorted(allowed)}"))
    if problems:
        raise InvalidArgument(problems)


def _name_free(conn: Connection, name: str, *, of: str) -> None:
    # People and machines share one name space: the audit log names an actor by name alone, so a
    # machine account called like a person would put its calls in that person's trail (found by
    # probing: a council system named "prac1").
    if repository.account_by_name(conn, kind=of, name=name) is not None:
        raise FailedPrecondition(f"the name {name!r} is already an account's", "ALREADY_EXISTS")


def create_user(
    conn: Connection,
    *,
    username: str,
    organisation: str,
    roles: list[str],
    password: str,
    issuer: str,
    sealer: Sealer,
) -> NewUser:
    """Create a person's account with a password and a fresh TOTP secret."""
    _check_account_fields(username, organisation, roles, PERSON_ROLES, "username")
    if "shield-override" in roles and "practitioner" not in roles:
        raise InvalidArgument([FieldViolation("role", "shield-override is held only with practitioner")])
    if (problem := password_problem(password, username=username)) is not None:
        raise InvalidArgument([FieldViolation("password", problem)])
    _name_free(conn, username, of=SERVICE)
    secret = credentials.new_totp_secret()
    account_id = repository.new_account_id()
    try:
        with conn.begin_nested():
            repository.insert_account(
                conn,
                account_id=account_id,
                kind=PERSON,
                name=username,
                organisation=organisation,
                roles=sorted(set(roles)),
                secret_hash=credentials.hash_secret(password),
                now=_now(),
                totp_secret=sealer.seal(secret, account_id=account_id),
            )
    except IntegrityError as exc:
        raise FailedPrecondition(f"user {username!r} already exists", "ALREADY_EXISTS") from exc
    return NewUser(username, secret, credentials.totp_uri(secret, username=username, issuer=issuer))


def create_service_account(
    conn: Connection, *, name: str, organisation: str, role: str, rotate_if_exists: bool = False
) -> NewServiceAccount:
    """Create a machine account (or, with `rotate_if_exists`, give an existing one a new secret)."""
    _check_account_fields(name, organisation, [role], SERVICE_ROLES, "name")
    if role in PLATFORM_ACCOUNTS and (name, organisation) != (PLATFORM_ACCOUNTS[role], PLATFORM_ORG):
        raise InvalidArgument(
            [
                FieldViolation(
                    "role",
                    f"{role} is the platform's own role: only the account named "
                    f"{PLATFORM_ACCOUNTS[role]!r} of organisation {PLATFORM_ORG!r} may hold it",
                )
            ]
        )
    secret = secrets.token_urlsafe(32)
    existing = repository.account_by_name(conn, kind=SERVICE, name=name, lock=True)
    if existing is not None:
        if not rotate_if_exists:
            raise FailedPrecondition(f"service account {name!r} already exists", "ALREADY_EXISTS")
        repository.update_account(
            conn,
            existing.id,
            secret_hash=credentials.hash_machine_secret(secret),
            organisation=organisation,
            roles=[role],
        )
        return NewServiceAccount(str(existing.client_id), secret)
    _name_free(conn, name, of=PERSON)
    client_id = f"{name}-{secrets.token_hex(6)}"
    try:
        with conn.begin_nested():
            repository.insert_account(
                conn,
                account_id=repository.new_account_id(),
                kind=SERVICE,
                name=name,
                organisation=organisation,
                roles=[role],
                secret_hash=credentials.hash_machine_secret(secret),
                now=_now(),
                client_id=client_id,
            )
    except IntegrityError as exc:  # created at the same moment by someone else
        raise FailedPrecondition(f"service account {name!r} already exists", "ALREADY_EXISTS") from exc
    return NewServiceAccount(client_id, secret)


def issue_service_token(
    conn: Connection, *, client_id: str, client_secret: str, issuer: TokenIssuer
) -> IssuedToken:
    """A token for a machine account whose secret matches (checked here, in this thread)."""
    account = repository.account_by_client_id(conn, client_id) if plausible_client_id(client_id) else None
    stored = account.secret_hash if account else None
    ok = credentials.check_machine_secret(stored, client_secret)
    if ok is None:
        ok = credentials.verify_secret(stored, client_secret)
    return service_token(account, secret_ok=ok, issuer=issuer)


def service_token(account: Account | None, *, secret_ok: bool, issuer: TokenIssuer) -> IssuedToken:
    """A token for a machine account whose secret was checked (`secret_ok`); Unauthenticated for an
    unknown, wrong or disabled one, alike."""
    if account is None or not secret_ok or account.suspended:
        raise Unauthenticated("invalid client credentials")
    return issuer.issue(account, now=_now())


def revoke_token(conn: Connection, *, token_id: str, expire_time: datetime) -> None:
    """Revoke one token everywhere (verifiers learn within a poll interval)."""
    now = _now()
    if repository.revoke(conn, token_id=token_id, expires_at=expire_time, now=now):
        repository.forget_expired_revocations(conn, now=now)
        repository.bump_version(conn)


def revoke_logged_out_token(
    conn: Connection, *, token_id: str, expire_time: datetime | None, ttl_seconds: int
) -> None:
    """Revoke a token by its id, for the gateway (a Logout it answered while identity could not be
    reached). A token that has expired needs no revocation; none is kept longer than a token lives."""
    problems = []
    if not token_id or len(token_id) > 64 or not token_id.isprintable():
        problems.append(FieldViolation("token_id", "a token id (1 to 64 printable characters) is required"))
    if expire_time is None:
        problems.append(FieldViolation("expire_time", "is required"))
    if problems:
        raise InvalidArgument(problems)
    assert expire_time is not None
    now = _now()
    if expire_time > now:
        # A token lives its lifetime to the nearest second (`TokenIssuer.issue`): half a second
        # more at most, so the cap leaves one second over.
        longest = now + timedelta(seconds=ttl_seconds + 1)
        revoke_token(conn, token_id=token_id, expire_time=min(expire_time, longest))


def verification_state(
    conn: Connection, *, issuer: TokenIssuer, known_version: int
) -> VerificationState | None:
    """Keys and revocations for verifiers; None when `known_version` is current. (A retired key
    leaving the published set changes no version: verifiers stop accepting its tokens themselves
    once they must all have expired, `token_verifier.check_key_use`.)"""
    keys = issuer.public_keys()
    version = repository.current_version(conn)
    if known_version == version:
        return None
    return VerificationState(
        version=version,
        keys=keys,
        retired_at_ms=issuer.retired_at_ms(),
        max_lifetime_seconds=issuer.ttl_seconds,
        revoked_token_ids=frozenset(repository.revoked_token_ids(conn, now=_now())),
        suspended_subjects=frozenset(repository.suspended_subjects(conn)),
        tokens_not_before={
            subject: int(moment.timestamp() * 1000)
            for subject, moment in repository.tokens_not_before(conn).items()
        },
        suspended_since={
            subject: int(moment.timestamp() * 1000)
            for subject, moment in repository.suspended_since(conn).items()
        },
    )
