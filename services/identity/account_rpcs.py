"""Identity's RPCs that change an account: administrators' suspensions, reinstatements and TOTP
resets, and a person's change of their own password. Each is audited before it answers (refused
calls too) and commits only once the log has its event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.auth import PERSON, SERVICE, current_principal, on_behalf_of_token
from contactpoint.platform.db import Database
from contactpoint.platform.deadlines import commit_by, still_in_time
from contactpoint.platform.errors import (
    CALL_RECORDED,
    ContactPointError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.types import Context
from services.identity import administration, credentials, domain, password_change
from services.identity.hashing import Hashing
from services.identity.password_check import check_password
from services.identity.sealing import Sealer
from services.identity.settings import IdentitySettings

T = TypeVar("T")
# Time kept, before a caller's deadline, for the audit log to take a change's event (it answers in
# milliseconds when well) and for the commit.
LOG_ANSWER_SECONDS = 1.0
# What an administrator's change does, in its transaction: (connection, username, the
# organisation it may act in or None for the gateway's own suspension, who asked).
Change = Callable[[Connection, str, str | None, administration.Administrator | None], T]


class _NamesAnAccount(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def reason(self) -> str: ...


def _administrator() -> administration.Administrator | None:
    """The person making an administrator's call (None for the gateway's own suspension)."""
    principal = current_principal()
    if principal.kind != PERSON:
        return None
    return administration.Administrator(principal.name, principal.token_id, principal.issued_at)


def check_within(context: Context) -> float | None:
    """How long a password check may take: the caller's deadline, less what the rest needs (the
    audit log's answer, then commit); the gateway's 11 s leave 5, a shorter deadline half of itself."""
    remaining = context.time_remaining()
    return None if remaining is None else remaining - min(PEER_TIMEOUT_SECONDS + 1.0, remaining / 2)


class AccountRpcs:
    """The servicer's part that changes accounts (mixed into `IdentityServicer`)."""

    _db: Database
    _settings: IdentitySettings
    _sealer: Sealer
    _audit: AuditWriter | None
    _hashing: Hashing
    _verifier: TokenVerifier | None

    def _administered(self, action: str, context: Context) -> AuditedRequest:
        """The audit event of a change to an account (UNAVAILABLE when there is no audit log)."""
        if self._audit is None:
            raise Unavailable("changing accounts needs the audit service, which is not configured")
        call = self._audit.request(action, request_id_of(context.invocation_metadata()))
        call.by(current_principal())
        return call

    def _scope(self, username: str, context: Context) -> str | None:
        """The organisation an administrator may act in. The gateway (the only machine account
        allowed here) suspends only the person it is refusing: their own token must travel with
        the call (x-on-behalf-of) and name that username; then there is no organisation scope."""
        principal = current_principal()
        if principal.kind != SERVICE:
            return principal.organisation
        token = on_behalf_of_token(context.invocation_metadata())
        if token is None or self._verifier is None:
            raise PermissionDenied("the gateway suspends only the person it acts for")
        try:
            person = self._verifier.verify(token)
        except Unauthenticated as exc:
            raise PermissionDenied("the person's token is not valid") from exc
        if person.kind != PERSON or person.name != username:
            raise PermissionDenied("the gateway suspends only the person it acts for")
        return None

    async def _administer(
        self, action: str, request: _NamesAnAccount, context: Context, change: Change[T]
    ) -> tuple[str, T]:
        """An administrator's change to one account (named by `request.username`, with a reason),
        audited, in one transaction; the username as typed, tidied, and what `change` returned."""
        async with self._administered(action, context) as call:
            username = domain.typed_username(request.username)
            call.details.append(f"account: {username[:128]}")
            call.quoted.append(("reason", request.reason[:500]))
            scope = self._scope(username, context)
            by = _administrator()
            result = await call.write(self._db, lambda c: change(c, username, scope, by))
        return username, result

    async def SuspendAccount(
        self, request: pb.SuspendAccountRequest, context: Context
    ) -> pb.SuspendAccountResponse:
        await self._administer(
            "SuspendAccount",
            request,
            context,
            lambda c, username, scope, by: administration.suspend(
                c, username=username, reason=request.reason, scope=scope, by=by
            ),
        )
        return pb.SuspendAccountResponse()

    async def ReinstateAccount(
        self, request: pb.ReinstateAccountRequest, context: Context
    ) -> pb.ReinstateAccountResponse:
        username, _ = await self._administer(
            "ReinstateAccount",
            request,
            context,
            lambda c, username, scope, by: administration.reinstate(
                c, username=username, reason=request.reason, scope=scope, by=by
            ),
        )
        self._hashing.usernames.forget(username)
        return pb.ReinstateAccountResponse()

    async def ResetTotp(self, request: pb.ResetTotpRequest, context: Context) -> pb.ResetTotpResponse:
        _, enrolment = await self._administer(
            "ResetTotp",
            request,
            context,
            lambda c, username, scope, by: administration.reset_totp(
                c,
                username=username,
                reason=request.reason,
                scope=scope,
                issuer=self._settings.totp_issuer,
                sealer=self._sealer,
                by=by,
            ),
        )
        return pb.ResetTotpResponse(totp_secret=enrolment.totp_secret, otpauth_uri=enrolment.otpauth_uri)

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: Context
    ) -> pb.ChangePasswordResponse:
        call = self._administered("ChangePassword", context)
        try:
            await self._change_password(call, request, context)
        except ContactPointError as exc:
            if call.recorded:  # for the gateway relaying it: no second event
                exc.metadata[CALL_RECORDED] = "true"
            raise
        return pb.ChangePasswordResponse()

    async def _change_password(
        self, call: AuditedRequest, request: pb.ChangePasswordRequest, context: Context
    ) -> None:
        until = commit_by(context)
        async with call:
            principal = current_principal()
            by = administration.Administrator(principal.name, principal.token_id, principal.issued_at)
            violations = password_change.change_violations(
                principal.name, request.current_password, request.new_password
            )
            if violations:
                call.details.append("refused: " + "; ".join(f"{v.field} {v.description}" for v in violations))
                raise InvalidArgument(violations)
            try:
                check = await check_password(
                    self._db,
                    self._hashing,
                    principal.name,
                    request.current_password,
                    within=check_within(context),
                )
            except Unauthenticated:  # over the username's rate of checks (logins count too)
                call.details.append("refused unchecked: over this username's rate of password checks")
                busy = "too many password checks for this account; retry in a minute"
                raise ResourceExhausted(busy, 60.0, reason="PASSWORD_CHECKS") from None
            # Hashed outside the transaction (Argon2 is slow), and only for the right password.
            new_hash = (
                await asyncio.to_thread(credentials.hash_secret, request.new_password)
                if check.password_ok
                else None
            )
            loop = asyncio.get_running_loop()

            def complete(conn: Connection) -> password_change.ChangeOutcome:
                now = datetime.now(UTC)
                outcome = password_change.complete_change(
                    conn, by=by, check=check, new_hash=new_hash, settings=self._settings, now=now
                )
                # Only with time left for the log's answer and the commit: a change its caller has
                # given up on is not made (found by re-probing: with identity's database locked
                # past the gateway's deadline, the gateway answered UNAVAILABLE and the password
                # was changed all the same).
                still_in_time(None if until is None else until - LOG_ANSWER_SECONDS)
                done = "password changed; the account's tokens ended"
                call.details.append(f"refused: {outcome.why}" if outcome.why else done)
                if outcome.locked:
                    call.severity = "WARNING"
                # In the log before the change (or the failure's count) is committed.
                call.record_before_commit(loop, outcome.refusal)
                return outcome

            outcome = await self._db.write(complete)
            if outcome.refusal is not None:
                raise outcome.refusal
