"""Identity's records of sign-ins, in the audit log.

Every login identity decides (a token issued, or refused for a wrong factor, an unknown name, a
locked or suspended account) is recorded by identity as the Login it is (the claimed username as
actor when it names an account, else `UNKNOWN_USERNAME` or, refused unchecked as malformed,
`UNCHECKED_USERNAME`: what was typed may be a password; for a success their organisation and
roles), under the request id the call carried, in the
transaction that issues the token or counts the failure: if the log cannot take it, nothing is
stored (found by re-probing: with audit down, failed logins still locked the account, unlogged).
So a holder of the gateway's credentials can neither obtain a token nor lock an account unseen.
The gateway, told so (`AuthenticateUserResponse.recorded`, or `LOGIN_RECORDED` in the refusal's
ErrorInfo, which it keeps from the person), writes no second event: a login is one event (found
by probing: a login read as two). The login that locks an account is that event at WARNING."""

from __future__ import annotations

from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import UNCHECKED_USERNAME, UNKNOWN_USERNAME, AuditedRequest
from contactpoint.platform.errors import LOGIN_RECORDED, Unauthenticated
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.types import Context
from services.identity.login import LOGIN_FAILED, LoginOutcome
from services.identity.settings import IdentitySettings


def attempt(audit: AuditWriter | None, context: Context) -> AuditedRequest | None:
    """The audit event of a login identity is deciding (None when identity has no audit log). Its
    actor is not the claimed username until the account is found (`outcome_of`)."""
    if audit is None:
        return None
    call = audit.request("Login", request_id_of(context.invocation_metadata()))
    call.actor = UNCHECKED_USERNAME
    return call


def outcome_of(
    call: AuditedRequest, outcome: LoginOutcome, settings: IdentitySettings, *, username: str
) -> Unauthenticated | None:
    """Fill in the login's event from what it came to; the refusal to record, if refused."""
    call.actor = username if outcome.known else UNKNOWN_USERNAME
    call.organisation = outcome.organisation or call.organisation
    if outcome.issued is not None:
        call.organisation, call.roles = outcome.issued.organisation, tuple(outcome.issued.roles)
        call.details.append("token issued by identity")
        return None
    call.details.append(f"refused: {outcome.why}" if outcome.why else "refused")
    if outcome.locked:
        call.severity = "WARNING"
        lasting, failures = settings.lockout_seconds, settings.max_failed_logins
        call.details.append(f"this login locked the account for {lasting} s after {failures} failed logins")
    return Unauthenticated(LOGIN_FAILED)


def refusal(recorded: bool) -> Unauthenticated:
    """What the caller hears of a refused login: "login failed", and, for the gateway alone,
    whether identity has recorded it."""
    return Unauthenticated(LOGIN_FAILED, metadata={LOGIN_RECORDED: "true"} if recorded else None)
