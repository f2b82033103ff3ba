"""Identity's gRPC face: protobuf in and out, domain calls in one transaction each, no SQL."""

from __future__ import annotations

from contactpoint.identity.v1 import identity_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as pb_grpc
from contactpoint.platform.auth import ANY_CALLER, PUBLIC, Access, current_principal, roles
from contactpoint.platform.convert import timestamp
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FieldViolation, InvalidArgument, Unauthenticated
from contactpoint.platform.types import Context
from services.identity import domain
from services.identity.settings import IdentitySettings

ACCESS: dict[str, Access] = {
    "IssueServiceToken": PUBLIC,
    "AuthenticateUser": roles("gateway"),
    "RevokeToken": ANY_CALLER,
    "GetVerificationState": PUBLIC,
}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["IdentityService"]


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    """Implements contactpoint.identity.v1.IdentityService."""

    def __init__(self, *, db: Database, issuer: domain.TokenIssuer, settings: IdentitySettings) -> None:
        self._db = db
        self._issuer = issuer
        self._settings = settings

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
        issued = await self._db.read(
            lambda conn: domain.issue_service_token(
                conn, client_id=request.client_id, client_secret=request.client_secret, issuer=self._issuer
            )
        )
        return pb.IssueServiceTokenResponse(
            access_token=issued.token, expire_time=timestamp(issued.expire_time)
        )

    async def AuthenticateUser(
        self, request: pb.AuthenticateUserRequest, context: Context
    ) -> pb.AuthenticateUserResponse:
        if not (request.username and request.password and request.totp_code):
            raise Unauthenticated(domain.LOGIN_FAILED)
        check = await self._db.read(
            lambda conn: domain.check_password(conn, username=request.username, password=request.password)
        )
        issued = await self._db.write(
            lambda conn: domain.complete_login(
                conn,
                username=request.username,
                check=check,
                totp_code=request.totp_code,
                issuer=self._issuer,
                settings=self._settings,
            )
        )
        if issued is None:
            raise Unauthenticated(domain.LOGIN_FAILED)
        return pb.AuthenticateUserResponse(
            access_token=issued.token,
            expire_time=timestamp(issued.expire_time),
            organisation=issued.organisation,
            roles=issued.roles,
        )

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> pb.RevokeTokenResponse:
        principal = current_principal()
        await self._db.write(
            lambda conn: domain.revoke_token(
                conn, token_id=principal.token_id, expire_time=principal.expire_time
            )
        )
        return pb.RevokeTokenResponse()

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
            keys=[pb.VerificationKey(key_id=k, public_key=v) for k, v in state.keys.items()],
            revoked_token_ids=sorted(state.revoked_token_ids),
            suspended_subjects=sorted(state.suspended_subjects),
        )
