"""Identity's gRPC face: protobuf in and out, domain calls in one transaction each, no SQL."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

from sqlalchemy import Connection

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import UNKNOWN_USERNAME
from contactpoint.platform.auth import (
    ANY_CALLER,
    PERSON,
    PUBLIC,
    SERVICE,
    Access,
    Principal,
    any_of,
    current_principal,
    roles,
)
from contactpoint.platform.convert import timestamp
from contactpoint.platform.db import Database
from contactpoint.platform.errors import (
    CALL_RECORDED,
    ContactPointError,
    FieldViolation,
    InvalidArgument,
    Unauthenticated,
)
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.types import Context
from services.identity import (
    credentials,
    domain,
    login,
    login_events,
    repository,
)
from services.identity.account_rpcs import AccountRpcs, check_within
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


class IdentityServicer(AccountRpcs, pb_grpc.IdentityServiceServicer):
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
        try:
            check = await check_password(
                self._db, self._hashing, username, request.password, within=check_within(context)
            )
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
            suspended_since=dict(state.suspended_since),
        )

    async def record_refusal(
        self, action: str, caller: Principal | None, error: ContactPointError, /, *, request: Any = None
    ) -> None:
        """The interceptor refused a call to an RPC that changes an account: record it
        (UNAVAILABLE when the log cannot take it, like every such call)."""
        if action in AUDITED and self._audit is not None:
            await self._audit.record_refusal(action, caller, error, request=request)
            error.metadata[CALL_RECORDED] = "true"  # for the gateway relaying a person's call
