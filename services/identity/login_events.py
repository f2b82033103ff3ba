"""Identity's own records of sign-ins, in the audit log: each is identity's record of the calling
service's request (the gateway's, under the request id of the Login it serves), naming the person
in its detail. The person's own trail holds the one event of their Login, written by the gateway
(found by probing: a login read as two), and the lockout a login caused, if it did."""

from __future__ import annotations

from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.auth import current_principal
from contactpoint.platform.errors import ContactPointError, Unauthenticated
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.logging import get_logger
from contactpoint.platform.types import Context
from services.identity.login import LOGIN_FAILED
from services.identity.settings import IdentitySettings

log = get_logger(__name__)


def _event(audit: AuditWriter, context: Context) -> AuditedRequest:
    call = audit.request("AuthenticateUser", request_id_of(context.invocation_metadata()))
    call.by(current_principal())
    return call


def issuance(audit: AuditWriter | None, username: str, context: Context) -> AuditedRequest | None:
    """The audit event of a token issued to a person (None when identity has no audit log),
    written before the token is handed over."""
    if audit is None:
        return None
    call = _event(audit, context)
    call.details.append(f"token issued to {username}")
    return call


async def record_lockout(
    audit: AuditWriter | None, username: str, settings: IdentitySettings, context: Context
) -> None:
    """An account a login locked, WARNING, for auditors to see (found by probing: a lockout was one
    more DENIED Login among many). The person hears only "login failed" either way, and the lock
    stands whether or not the log could take the record (it is logged if not)."""
    if audit is None:
        return
    # In the person's own trail (found by probing: an auditor asking for the account's events saw
    # only its failed logins): the actor is the account signed in as, the service that passed
    # the sign-in on is named in the detail.
    call = audit.request("AuthenticateUser", request_id_of(context.invocation_metadata()))
    call.actor = username
    call.severity = "WARNING"
    lasting, failures = settings.lockout_seconds, settings.max_failed_logins
    call.details.append(f"account {username[:128]} locked for {lasting} s after {failures} failed logins")
    call.details.append(f"sign-in passed on by {current_principal().name}")
    try:
        await call.record(Unauthenticated(LOGIN_FAILED))
    except ContactPointError as exc:
        log.error("identity.lockout_unrecorded", code=exc.code.name)
