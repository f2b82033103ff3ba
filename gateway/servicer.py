"""The gateway's gRPC face (contactpoint.gateway.v1.GatewayService).

Every RPC runs inside `self._audit.request(...)`, which writes exactly one audit event — allowed or
denied, found or not — before the response leaves. Authentication happens inside that block (the
interceptor treats these RPCs as public) so that refusals are audited too.
"""

from __future__ import annotations

import grpc

from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.audited import AuditedRequest, AuditWriter
from contactpoint.platform.auth import PUBLIC, Access, Principal, TokenVerifier, bearer_token
from contactpoint.platform.errors import (
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, ServiceToken
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as records_pb
from gateway.disclosure import SHIELD_OVERRIDE, disclose
from gateway.records_client import RecordsClient

# Authentication is done in the handlers, inside the audited block (see module docstring).
ACCESS: dict[str, Access] = {"Login": PUBLIC, "Logout": PUBLIC, "GetChild": PUBLIC, "FindChild": PUBLIC}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["GatewayService"]
READER_ROLES = frozenset({"practitioner"})
MAX_JUSTIFICATION = 200
LOGIN_FAILED = "login failed"


def _check_purpose(purpose: int, justification: str, violations: list[FieldViolation]) -> None:
    if purpose not in child_pb2.AccessPurpose.values() or purpose == child_pb2.ACCESS_PURPOSE_UNSPECIFIED:
        violations.append(FieldViolation("purpose", "a purpose (AccessPurpose) is required for every read"))
    if len(justification) > MAX_JUSTIFICATION:
        violations.append(FieldViolation("justification", f"at most {MAX_JUSTIFICATION} characters"))


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    """Implements contactpoint.gateway.v1.GatewayService."""

    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        identity: grpc.aio.Channel,
        records: RecordsClient,
        audit: AuditWriter,
        token: ServiceToken,
    ) -> None:
        self._verifier = verifier
        self._identity = identity_grpc.IdentityServiceStub(identity)
        self._records = records
        self._audit = audit
        self._token = token

    def _authenticate(self, call: AuditedRequest, context: Context) -> Principal:
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise Unauthenticated("authentication required")
        principal = self._verifier.verify(token)
        call.by(principal)
        return principal

    def _reader(self, call: AuditedRequest, context: Context) -> Principal:
        principal = self._authenticate(call, context)
        if principal.kind != "person" or not principal.has_any(READER_ROLES):
            raise PermissionDenied("only practitioners may read records")
        return principal

    def _begin(self, action: str, context: Context) -> AuditedRequest:
        return self._audit.request(action, request_id_of(context.invocation_metadata()))

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        async with self._begin("Login", context) as call:
            call.actor = request.username
            if not (request.username and request.password and request.totp_code):
                raise Unauthenticated(LOGIN_FAILED)
            try:
                resp = await self._identity.AuthenticateUser(
                    identity_pb.AuthenticateUserRequest(
                        username=request.username, password=request.password, totp_code=request.totp_code
                    ),
                    metadata=await self._token.metadata(),
                    timeout=PEER_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    raise Unauthenticated(LOGIN_FAILED) from exc
                raise Unavailable("identity is unavailable") from exc
            answer = pb.LoginResponse(access_token=resp.access_token, expire_time=resp.expire_time)
        return answer

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        async with self._begin("Logout", context) as call:
            principal = self._authenticate(call, context)
            try:
                await self._identity.RevokeToken(
                    identity_pb.RevokeTokenRequest(),
                    metadata=(("authorization", f"Bearer {principal.token}"),),
                    timeout=PEER_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    raise Unauthenticated("invalid token") from exc
                raise Unavailable("identity is unavailable") from exc
        return pb.LogoutResponse()

    async def GetChild(self, request: pb.GetChildRequest, context: Context) -> pb.GetChildResponse:
        async with self._begin("GetChild", context) as call:
            principal = self._reader(call, context)
            call.purpose = request.purpose
            violations: list[FieldViolation] = []
            problem = contactpoint_id_problem(request.contactpoint_id)
            if problem:
                violations.append(FieldViolation("contactpoint_id", problem))
            else:
                call.contactpoint_id = request.contactpoint_id
            _check_purpose(request.purpose, request.justification, violations)
            if violations:
                raise InvalidArgument(violations)
            child = await self._records.get_child(request.contactpoint_id)
            answer = pb.GetChildResponse(child=self._disclose(child, principal, call, request.justification))
        return answer

    async def FindChild(self, request: pb.FindChildRequest, context: Context) -> pb.FindChildResponse:
        async with self._begin("FindChild", context) as call:
            principal = self._reader(call, context)
            call.purpose = request.purpose
            violations: list[FieldViolation] = []
            _check_purpose(request.purpose, request.justification, violations)
            if violations:
                raise InvalidArgument(violations)
            # The search criteria themselves are validated by records (one set of rules).
            child = await self._records.find_child(
                records_pb.FindChildRecordRequest(
                    family_name=request.family_name,
                    given_name=request.given_name,
                    date_of_birth=request.date_of_birth,
                    postcode=request.postcode,
                    gender=request.gender,
                    fuzzy=request.fuzzy,
                )
            )
            call.contactpoint_id = child.contactpoint_id
            answer = pb.FindChildResponse(child=self._disclose(child, principal, call, request.justification))
        return answer

    @staticmethod
    def _disclose(
        child: child_pb2.Child, principal: Principal, call: AuditedRequest, justification: str
    ) -> child_pb2.Child:
        override = principal.has_any({SHIELD_OVERRIDE})
        if justification:
            call.details.append(f"justification: {justification}")
        if child.shielded and override:
            # Every view of a shielded child's location raises a high-severity alert.
            call.severity = "HIGH"
            call.details.append("shielded record viewed with shield-override")
        return disclose(child, may_override_shield=override)
