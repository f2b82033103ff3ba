"""The gateway's calls to identity: logins, logouts, changes of password and suspensions over the
daily limit."""

from __future__ import annotations

import grpc
from google.protobuf import timestamp_pb2

from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.auth import ON_BEHALF_OF_KEY, Principal
from contactpoint.platform.errors import (
    CALL_RECORDED,
    INVALID_TOKEN,
    Unauthenticated,
    Unavailable,
    error_metadata,
    from_rpc_error,
)
from contactpoint.platform.interceptor import REQUEST_ID_KEY
from contactpoint.platform.logging import get_logger
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, TokenSource, token_refused, with_service_token

log = get_logger(__name__)
# Any login failure says only this: never which factor was wrong or whether the user exists.
LOGIN_FAILED = "login failed"
# Longer than identity's own wait for the audit log (a peer call, `PEER_TIMEOUT_SECONDS`): when the
# log is slow, identity gives up and stores nothing before the gateway gives up on identity (found
# by re-probing: at 5 s both gave up, identity had already stored the login, and it was two events).
LOGIN_TIMEOUT = 2 * PEER_TIMEOUT_SECONDS + 1


class IdentityClient:
    """Identity, as the gateway uses it."""

    def __init__(self, channel: grpc.aio.Channel, token: TokenSource) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._token = token

    async def authenticate(
        self, username: str, password: str, totp_code: str, *, request_id: str = ""
    ) -> identity_pb.AuthenticateUserResponse:
        """A person's token; Unauthenticated("login failed") for any wrong factor or lockout.
        `request_id` (the Login's) goes with the call, so that identity's record of the token it
        issued and the gateway's record of the Login carry one id."""
        passed = ((REQUEST_ID_KEY, request_id),) if request_id else ()
        request = identity_pb.AuthenticateUserRequest(
            username=username, password=password, totp_code=totp_code
        )
        try:
            # A refusal of the gateway's own token is retried once with a fresh one, so that an
            # expired machine token never reads as the person's "login failed".
            return await with_service_token(
                self._token,
                lambda md: self._stub.AuthenticateUser(
                    request, metadata=(*md, *passed), timeout=LOGIN_TIMEOUT
                ),
                refused=lambda exc: token_refused(exc) and not _is_login_failure(exc),
            )
        except grpc.aio.AioRpcError as exc:
            if _is_login_failure(exc):
                # With what identity says of it for the log (a lockout), never for the person.
                raise Unauthenticated(LOGIN_FAILED, metadata=error_metadata(exc)) from exc
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise from_rpc_error(exc) or Unavailable("identity is busy") from exc
            log.error("identity.call_failed", call="AuthenticateUser", code=exc.code().name)
            raise Unavailable("identity is unavailable") from exc

    async def revoke(self, person_token: str) -> None:
        """Revoke the person's own token (their logout)."""
        try:
            await self._stub.RevokeToken(
                identity_pb.RevokeTokenRequest(),
                metadata=(("authorization", f"Bearer {person_token}"),),
                timeout=PEER_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated("invalid token") from exc
            raise Unavailable("identity is unavailable") from exc

    async def change_password(
        self, person_token: str, current_password: str, new_password: str, *, request_id: str = ""
    ) -> None:
        """Change the person's own password, with their own token. Identity's refusals come back
        as raised here, with `CALL_RECORDED` in their metadata when identity has put the call in the
        audit log (the gateway then writes no event of its own); Unavailable when it cannot answer."""
        passed = ((REQUEST_ID_KEY, request_id),) if request_id else ()
        request = identity_pb.ChangePasswordRequest(
            current_password=current_password, new_password=new_password
        )
        try:
            await self._stub.ChangePassword(
                request,
                metadata=(("authorization", f"Bearer {person_token}"), *passed),
                timeout=LOGIN_TIMEOUT,  # a password is checked, and the new one hashed
            )
        except grpc.aio.AioRpcError as exc:
            metadata = error_metadata(exc)
            error = from_rpc_error(exc)
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                error = Unauthenticated(INVALID_TOKEN)  # revoked or suspended a moment ago
            if error is None or isinstance(error, Unavailable):
                log.error("identity.call_failed", call="ChangePassword", code=exc.code().name)
                error = Unavailable("identity could not change the password")
            error.metadata.clear()  # identity's words to the gateway, never to the person
            if metadata.get(CALL_RECORDED) == "true":
                error.metadata[CALL_RECORDED] = "true"
            raise error from exc

    async def revoke_by_id(self, token_id: str, expires_at: float) -> None:
        """Revoke a person's token by its id, with the gateway's own credentials (a Logout taken
        while identity could not be reached); Unavailable until identity takes it."""
        expire_time = timestamp_pb2.Timestamp()
        expire_time.FromNanoseconds(int(expires_at * 1e9))
        request = identity_pb.RevokeLoggedOutTokenRequest(token_id=token_id, expire_time=expire_time)
        try:
            await with_service_token(
                self._token,
                lambda md: self._stub.RevokeLoggedOutToken(
                    request, metadata=md, timeout=PEER_TIMEOUT_SECONDS
                ),
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable("identity is unavailable") from exc

    async def suspend(self, person: Principal, reason: str) -> None:
        """Suspend the person the gateway is refusing (over the daily record limit), through the
        administrators' path; their own token goes with the call, so the gateway's credentials
        alone can suspend nobody."""
        request = identity_pb.SuspendAccountRequest(username=person.name, reason=reason)
        for_person = (ON_BEHALF_OF_KEY, f"Bearer {person.token}")
        try:
            await with_service_token(
                self._token,
                lambda md: self._stub.SuspendAccount(
                    request, metadata=(*md, for_person), timeout=PEER_TIMEOUT_SECONDS
                ),
            )
        except grpc.aio.AioRpcError as exc:
            log.error("identity.call_failed", call="SuspendAccount", code=exc.code().name)
            raise Unavailable("identity could not suspend the account") from exc


def _is_login_failure(exc: grpc.aio.AioRpcError) -> bool:
    """Whether identity refused the person's login (not the gateway's own token)."""
    return exc.code() == grpc.StatusCode.UNAUTHENTICATED and (exc.details() or "") == LOGIN_FAILED
