"""Identity's gRPC face: protobuf in and out, domain calls in one transaction each, no SQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import UNKNOWN_USERNAME, AuditedRequest
from contactpoint.platform.auth import (
    ANY_CALLER,
    PERSON,
    PUBLIC,
    SERVICE,
    Access,
    Principal,
    any_of,
    current_principal,
    on_behalf_of_token,
    roles,
)
from contactpoint.platform.convert import timestamp
from contactpoint.platform.db import Database
from contactpoint.platform.errors import (
    ContactPointError,
    FieldViolation,
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
from services.identity import (
    administration,
    credentials,
    domain,
    login,
    login_events,
    password_change,
    repository,
)
from services.identity.hashing import Hashing
from services.identity.password_check import check_password
from services.identity.sealing import Sealer
from services.identity.settings import IdentitySettings
from services.identity.token_issuer import TokenIssuer

ADMIN = roles("admin", kind=PERSON)
ACCESS: dict[str, Access] = {
    "IssueServiceToken": PUBLIC,
    "AuthenticateUser": roles("gateway", kind=SERVICE),
    "RevokeToken": ANY_CALLER,
    # A Logout the gateway answered while identity was away: its account only, by the token's id.
    "RevokeLoggedOutToken": roles("gateway", kind=SERVICE),
    # Which tokens are revoked and which accounts suspended: for the platform's own services only.
    "GetVerificationState": roles(*domain.PLATFORM_ROLES, kind=SERVICE),
    # The gateway suspends a person who goes over the daily record limit, by the same path.
    "SuspendAccount": any_of(ADMIN, roles("gateway", kind=SERVICE)),
    "ReinstateAccount": ADMIN,
    "ResetTotp": ADMIN,
    # Any person, of their own account: a machine account's secret is rotated by the operator.
    "ChangePassword": Access(kind=PERSON),
}
# Calls to these are audited, refused ones too (UNAVAILABLE when the log cannot take them).
AUDITED = frozenset({"SuspendAccount", "ReinstateAccount", "ResetTotp", "ChangePassword"})
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["IdentityService"]


def _administrator() -> administration.Administrator | None:
    """The person making an administrator's call (None for the gateway's own suspension)."""
    principal = current_principal()
    if principal.kind != PERSON:
        return None
    return administration.Administrator(principal.name, principal.token_id, principal.issued_at)


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    """Implements contactpoint.identity.v1.IdentityService."""

    def __init__(
        self,
        *,
        db: Database,
        issuer: TokenIssuer,
        settings: IdentitySettings,
        sealer: Sealer,
        audit: AuditWriter | None,
        hashing: Hashing,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self._db = db
        self._issuer = issuer
        self._settings = settings
        self._sealer = sealer
        self._audit = audit
        self._hashing = hashing
        self._verifier = verifier

    async def IssueServiceToken(
        self, request: pb.IssueServiceTokenRequest, context: Context
    ) -> pb.IssueServiceTokenResponse:
        missing = [
            FieldViolation(f, "is required")
            for f in ("client_id", "client_secret")
            if not getattr(request, f)
        ]
        if missing:
            raise InvalidArgument(missing)
        plausible = domain.plausible_client_id(request.client_id)
        account = (
            await self._db.read(lambda conn: repository.account_by_client_id(conn, request.client_id))
            if plausible
            else None
        )
        stored = account.secret_hash if account else None
        ok = credentials.check_machine_secret(stored, request.client_secret)
        if ok is None:  # an Argon2 hash from before machine secrets were hashed fast
            ok = await self._hashing.machines.verify(stored, request.client_secret)
        issued = domain.service_token(account, secret_ok=ok, issuer=self._issuer)
        return pb.IssueServiceTokenResponse(
            access_token=issued.token, expire_time=timestamp(issued.expire_time)
        )

    async def AuthenticateUser(
        self, request: pb.AuthenticateUserRequest, context: Context
    ) -> pb.AuthenticateUserResponse:
        # As typed on a phone: "Casey.User " is casey.user (usernames are lower case; found by
        # re-probing: such a login was refused unchecked).
        username = domain.typed_username(request.username)
        event = login_events.attempt(self._audit, context)
        if not (username and request.password and request.totp_code) or not domain.plausible_name(username):
            # Refused unchecked, and recorded all the same (found by re-probing: with the gateway's
            # credentials, malformed names left no trace).
            if event is not None:
                event.details.append("refused unchecked: no username's shape, or a password or code missing")
                await event.record(Unauthenticated(login.LOGIN_FAILED))
            raise login_events.refusal(recorded=event is not None)
        # The caller's deadline, less what the rest needs (the audit log's answer, then commit):
        # the gateway's 11 s leave 5 for the password, a shorter deadline half of itself.
        remaining = context.time_remaining()
        within = None if remaining is None else remaining - min(PEER_TIMEOUT_SECONDS + 1.0, remaining / 2)
        try:
            check = await check_password(self._db, self._hashing, username, request.password, within=within)
        except Unauthenticated:
            # Over the username's rate: refused unchecked, and recorded here, where whether the
            # name is an account's is known (found by re-probing: the gateway recorded a flood's
            # attempts as "(username not checked)", which no auditor could tie to the account).
            if event is not None:
                organisation = await self._db.read(lambda conn: login.organisation_of(conn, username))
                event.actor = username if organisation is not None else UNKNOWN_USERNAME
                event.organisation = organisation or ""
                event.details.append("refused unchecked: over this username's rate of logins")
                await event.record(Unauthenticated(login.LOGIN_FAILED))
            raise login_events.refusal(recorded=event is not None) from None
        loop = asyncio.get_running_loop()

        def complete(conn: Connection) -> login.LoginOutcome:
            outcome = login.complete_login(
                conn,
                username=username,
                check=check,
                totp_code=request.totp_code,
                issuer=self._issuer,
                settings=self._settings,
                sealer=self._sealer,
            )
            if event is not None:
                # Recorded before the token is handed over or the failure counted (the TOTP step
                # is spent only then): if the log cannot take it, nothing is stored.
                refusal = login_events.outcome_of(event, outcome, self._settings, username=username)
                event.record_before_commit(loop, refusal)
            return outcome

        outcome = await self._db.write(complete)
        issued = outcome.issued
        if issued is None:
            raise login_events.refusal(recorded=event is not None)
        return pb.AuthenticateUserResponse(
            access_token=issued.token,
            expire_time=timestamp(issued.expire_time),
            organisation=issued.organisation,
            roles=issued.roles,
            recorded=event is not None,
        )

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> pb.RevokeTokenResponse:
        principal = current_principal()
        await self._db.write(
            lambda conn: domain.revoke_token(
                conn, token_id=principal.token_id, expire_time=principal.expire_time
            )
        )
        return pb.RevokeTokenResponse()

    async def RevokeLoggedOutToken(
        self, request: pb.RevokeLoggedOutTokenRequest, context: Context
    ) -> pb.RevokeLoggedOutTokenResponse:
        try:
            expires = request.expire_time.ToDatetime(tzinfo=UTC) if request.HasField("expire_time") else None
        except (ValueError, OverflowError):  # out of Timestamp's range (found by re-probing: INTERNAL)
            raise InvalidArgument([FieldViolation("expire_time", "is not a valid time")]) from None
        ttl = self._settings.token_ttl_seconds
        await self._db.write(
            lambda conn: domain.revoke_logged_out_token(
                conn, token_id=request.token_id, expire_time=expires, ttl_seconds=ttl
            )
        )
        return pb.RevokeLoggedOutTokenResponse()

    async def GetVerificationState(
        self, request: pb.GetVerificationStateRequest, context: Context
    ) -> pb.GetVerificationStateResponse:
        state = await self._db.read(
            lambda conn: domain.verification_state(
                conn, issuer=self._issuer, known_version=request.known_version
            )
        )
        if state is None:
            return pb.GetVerificationStateResponse(version=request.known_version, unchanged=True)
        return pb.GetVerificationStateResponse(
            version=state.version,
            keys=[
                pb.VerificationKey(key_id=k, public_key=v, retired_at_ms=state.retired_at_ms.get(k, 0))
                for k, v in state.keys.items()
            ],
            max_token_lifetime_seconds=state.max_lifetime_seconds,
            revoked_token_ids=sorted(state.revoked_token_ids),
            suspended_subjects=sorted(state.suspended_subjects),
            tokens_not_before=dict(state.tokens_not_before),
        )

    async def record_refusal(
        self, action: str, caller: Principal | None, error: ContactPointError, /, *, request: Any = None
    ) -> None:
        """The interceptor refused a call to an RPC that changes an account: record it
        (UNAVAILABLE when the log cannot take it, like every such call)."""
        if action in AUDITED and self._audit is not None:
            await self._audit.record_refusal(action, caller, error, request=request)

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

    async def SuspendAccount(
        self, request: pb.SuspendAccountRequest, context: Context
    ) -> pb.SuspendAccountResponse:
        async with self._administered("SuspendAccount", context) as call:
            username = domain.typed_username(request.username)
            call.details.append(f"account: {username[:128]}")
            call.quoted.append(("reason", request.reason[:500]))
            scope = self._scope(username, context)
            by = _administrator()
            await call.write(
                self._db,
                lambda c: administration.suspend(
                    c, username=username, reason=request.reason, scope=scope, by=by
                ),
            )
        return pb.SuspendAccountResponse()

    async def ReinstateAccount(
        self, request: pb.ReinstateAccountRequest, context: Context
    ) -> pb.ReinstateAccountResponse:
        async with self._administered("ReinstateAccount", context) as call:
            username = domain.typed_username(request.username)
            call.details.append(f"account: {username[:128]}")
            call.quoted.append(("reason", request.reason[:500]))
            scope = self._scope(username, context)
            by = _administrator()
            await call.write(
                self._db,
                lambda c: administration.reinstate(
                    c, username=username, reason=request.reason, scope=scope, by=by
                ),
            )
            self._hashing.usernames.forget(username)
        return pb.ReinstateAccountResponse()

    async def ResetTotp(self, request: pb.ResetTotpRequest, context: Context) -> pb.ResetTotpResponse:
        async with self._administered("ResetTotp", context) as call:
            username = domain.typed_username(request.username)
            call.details.append(f"account: {username[:128]}")
            call.quoted.append(("reason", request.reason[:500]))
            scope = self._scope(username, context)
            by = _administrator()
            enrolment = await call.write(
                self._db,
                lambda c: administration.reset_totp(
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
        async with self._administered("ChangePassword", context) as call:
            principal = current_principal()
            by = administration.Administrator(principal.name, principal.token_id, principal.issued_at)
            violations = password_change.change_violations(
                principal.name, request.current_password, request.new_password
            )
            if violations:
                call.details.append("refused: " + "; ".join(f"{v.field} {v.description}" for v in violations))
                raise InvalidArgument(violations)
            remaining = context.time_remaining()
            within = None if remaining is None else remaining - min(PEER_TIMEOUT_SECONDS + 1.0, remaining / 2)
            try:
                check = await check_password(
                    self._db, self._hashing, principal.name, request.current_password, within=within
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
                done = "password changed; the account's tokens ended"
                call.details.append(f"refused: {outcome.why}" if outcome.why else done)
                # In the log before the change (or the failure's count) is committed.
                call.record_before_commit(loop, outcome.refusal)
                return outcome

            outcome = await self._db.write(complete)
            if outcome.refusal is not None:
                raise outcome.refusal
        return pb.ChangePasswordResponse()
