"""Identity's records of sign-ins, in the audit log.

A token identity issues to a person is recorded before it is handed over, as the Login it is
(the person as actor, their organisation and roles, under the request id the call carried), so
that even a holder of the gateway's credentials cannot obtain one unseen; the gateway, told so
(`AuthenticateUserResponse.recorded`), writes no second event, and a login is one event (found by
probing: a login read as two). The failed login that locks an account is recorded by the gateway,
as its Login's event, WARNING: identity tells it so in the refusal's ErrorInfo metadata, which
the gateway keeps from the person."""

from __future__ import annotations

from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.errors import ACCOUNT_LOCKED_SECONDS, FAILED_LOGINS, Unauthenticated
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.types import Context
from services.identity.login import LOGIN_FAILED
from services.identity.settings import IdentitySettings
from services.identity.token_issuer import IssuedToken


def issuance(audit: AuditWriter | None, username: str, context: Context) -> AuditedRequest | None:
    """The audit event of a login that issues a token (None when identity has no audit log),
    written before the token is handed over (`issued`)."""
    if audit is None:
        return None
    call = audit.request("Login", request_id_of(context.invocation_metadata()))
    call.actor = username
    call.details.append("token issued by identity")
    return call


def issued(call: AuditedRequest, token: IssuedToken) -> None:
    """Name in the login's event whom it let in."""
    call.organisation, call.roles = token.organisation, tuple(token.roles)


def locked(settings: IdentitySettings) -> Unauthenticated:
    """The refusal of the login that locked the account: "login failed", as any other, with the
    lock in its ErrorInfo metadata for the gateway's audit event (found by probing: a lockout was
    one more "login failed" among many)."""
    return Unauthenticated(
        LOGIN_FAILED,
        metadata={
            ACCOUNT_LOCKED_SECONDS: str(settings.lockout_seconds),
            FAILED_LOGINS: str(settings.max_failed_logins),
        },
    )
