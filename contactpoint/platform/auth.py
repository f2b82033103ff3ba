"""Who is calling and who may call: the principal a verified token names, the access rule every
RPC declares, the bearer and on-behalf-of metadata, and the caller bound for the RPC being
handled. Tokens themselves are verified by `token_verifier.TokenVerifier`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from contactpoint.platform.errors import PermissionDenied, Unauthenticated

ISSUER = "contactpoint-identity"
ALGORITHM = "EdDSA"
PERSON = "person"
SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person or a machine account, as the token says."""

    subject: str
    name: str
    organisation: str
    roles: frozenset[str]
    kind: str
    token_id: str
    expire_time: datetime
    token: str = field(repr=False)
    # When the token was issued, Unix seconds (to the millisecond when the token says so).
    issued_at: float = 0.0

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether the principal holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the one `authorization: Bearer <token>` metadata entry; None when there is
    none, or more than one (which of two credentials a call is made with must never be a guess:
    found by probing, the first one won)."""
    return _one_bearer(metadata, "authorization")


def _one_bearer(metadata: Iterable[tuple[str, str | bytes]] | None, name: str) -> str | None:
    entries = [value for key, value in metadata or () if key.lower() == name]
    if len(entries) != 1 or not isinstance(entries[0], str):
        return None
    scheme, _, token = entries[0].partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


@dataclass(frozen=True)
class Access:
    """Who may call an RPC. Every RPC of every service declares one; unlisted RPCs are refused.
    `kind` (PERSON or SERVICE), when set, is the only kind of account that may call it."""

    roles: frozenset[str] = frozenset()
    authenticated: bool = True
    kind: str | None = None
    # When set, the caller acts for a person whose own token travels with the call (metadata
    # `x-on-behalf-of: Bearer <token>`), verified and checked against this rule too: a machine
    # account alone (the gateway's) can then read nothing.
    on_behalf_of: Access | None = None
    # When set (with `on_behalf_of`, on a bidirectional stream), the person's token travels in
    # each message's field of this name instead of the call's metadata: the stream is admitted
    # for the caller, and each message on its own for its person (`per_message.PersonEach`).
    person_field: str | None = None

    def check(self, principal: Principal) -> None:
        """PermissionDenied unless the principal holds one of the roles (when roles are named)
        and is of the right kind of account (when a kind is named)."""
        if self.roles and not principal.has_any(self.roles):
            raise PermissionDenied("the caller's roles do not allow this")
        if self.kind is not None and principal.kind != self.kind:
            raise PermissionDenied(f"only {self.kind} accounts may call this")


# Needs no token (IssueServiceToken, Login, GetVerificationState) — or, in the gateway,
# authenticates inside the handler so that refusals are audited too.
PUBLIC = Access(authenticated=False)
# Any valid token.
ANY_CALLER = Access()


@dataclass(frozen=True)
class AnyOf(Access):
    """Access for callers that satisfy at least one of `options` (e.g. an administrator person,
    or the gateway's machine account)."""

    options: tuple[Access, ...] = ()

    def check(self, principal: Principal) -> None:
        """PermissionDenied unless one of the options admits the principal."""
        for option in self.options:
            try:
                option.check(principal)
                return
            except PermissionDenied:
                continue
        raise PermissionDenied("the caller's roles do not allow this")


def any_of(*options: Access) -> Access:
    """Access for callers admitted by any one of `options`."""
    return AnyOf(options=options)


def roles(*names: str, kind: str | None = None) -> Access:
    """Access for holders of any of `names` (of accounts of `kind`, when given)."""
    return Access(roles=frozenset(names), kind=kind)


def acting_for(caller: Access, person: Access) -> Access:
    """Access for `caller` acting for a person admitted by `person`, whose token travels with the
    call (`ON_BEHALF_OF_KEY`)."""
    return Access(roles=caller.roles, kind=caller.kind, on_behalf_of=person)


def acting_for_each(caller: Access, person: Access, *, token_field: str) -> Access:
    """Access for a stream opened by `caller`, each of whose messages is made for a person
    admitted by `person`, whose token the message carries in `token_field`: the handler reads
    each message admitted or refused (`per_message`), never unchecked."""
    return Access(roles=caller.roles, kind=caller.kind, on_behalf_of=person, person_field=token_field)


ON_BEHALF_OF_KEY = "x-on-behalf-of"


def on_behalf_of_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the one `x-on-behalf-of: Bearer <token>` metadata entry (None when there is
    none, or more than one)."""
    return _one_bearer(metadata, ON_BEHALF_OF_KEY)


_person: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("person", default=None)


def current_person() -> Principal:
    """The person the caller acts for in this RPC (an `acting_for` rule verified their token)."""
    person = _person.get()
    if person is None:
        raise PermissionDenied("this call must be made on behalf of a person")
    return person


def set_person(person: Principal | None) -> contextvars.Token[Principal | None]:
    """Bind the person the caller acts for."""
    return _person.set(person)


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal:
    """The authenticated caller of the RPC being handled (set by the server interceptor)."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def caller_or_none() -> Principal | None:
    """The caller whose token was verified for this RPC, if any (even when access was refused)."""
    return _principal.get()


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    """Bind the caller for the RPC being handled."""
    return _principal.set(principal)
