"""The gateway's RPCs about a person's own account: logging in and out, and changing their password.
Each writes exactly one audit event, or leaves it to identity when identity has recorded the call
itself (a login, a change of password), and fails UNAVAILABLE when neither can."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.platform.audited import UNCHECKED_USERNAME, AuditedRequest
from contactpoint.platform.auth import Principal
from contactpoint.platform.errors import (
    CALL_RECORDED,
    LOGIN_RECORDED,
    ContactPointError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from contactpoint.platform.types import Context
from gateway.identity_client import LOGIN_FAILED, IdentityClient
from gateway.logouts import Logouts
from gateway.peer_throttle import PeerThrottle

T = TypeVar("T")
# The longest a throttled login waits before its refusal is sent.
LOGIN_TARPIT_SECONDS = 1.0


def _recorded_by_identity(answer: identity_pb.AuthenticateUserResponse | BaseException) -> bool:
    """Whether identity has put this login in the log itself (its answer says so, or its refusal's
    ErrorInfo): then the gateway writes no event of its own, and a login is one event."""
    if isinstance(answer, identity_pb.AuthenticateUserResponse):
        return answer.recorded
    return isinstance(answer, Unauthenticated) and answer.metadata.get(LOGIN_RECORDED) == "true"


async def _whole(
    asking: Awaitable[T], call: AuditedRequest, recorded: Callable[[T | BaseException], bool]
) -> T:
    """Identity's answer to `asking`. A client that goes away meanwhile does not stop it: the
    gateway still learns from the answer (`recorded`) whether identity put the call in the log,
    before its own event of the cancelled request is written (then none, if identity did)."""
    task = asyncio.ensure_future(asking)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        [answer] = await asyncio.gather(task, return_exceptions=True)
        call.recorded = recorded(answer)
        raise


class AccountRpcs:
    """The servicer's part about the caller's own account (mixed into `GatewayServicer`)."""

    _identity: IdentityClient
    _logins: PeerThrottle
    _logouts: Logouts

    def _begin(self, action: str, context: Context) -> AuditedRequest:
        raise NotImplementedError  # the servicer's: the request's audit event, its caller recorded

    @staticmethod
    def _caller() -> Principal:
        raise NotImplementedError

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        async with self._begin("Login", context) as call:
            # Not what was typed, unless identity lets the person in: it may be a password.
            call.actor = UNCHECKED_USERNAME
            # Why the gateway refused it, for its own event (found by re-probing: refusals of every
            # kind read alike); identity says why in its own.
            asked = False
            try:
                self._logins.admit(context.peer())
                if not (request.username and request.password and request.totp_code):
                    call.details.append("refused unchecked: a username, password or code missing")
                    raise Unauthenticated(LOGIN_FAILED)
                asked = True
                resp = await self._authenticate(request, call)
            except ResourceExhausted as exc:
                busy = "identity is busy: not checked"
                call.details.append(busy if asked else "refused unchecked: over this address's rate")
                # A throttled login is answered only after a pause: a client that ignores RetryInfo
                # cannot turn cheap refusals into a flood of requests (each one is audited).
                await asyncio.sleep(min(exc.retry_after_seconds or 0.0, LOGIN_TARPIT_SECONDS))
                raise
            except Unauthenticated as exc:
                call.recorded = _recorded_by_identity(exc)
                if asked:
                    call.details.append("refused by identity")
                raise Unauthenticated(LOGIN_FAILED) from None  # and nothing more, to the person
            except Unavailable:
                call.details.append("identity could not be reached")
                raise
            # Whom it let in.
            call.actor = request.username.strip().lower()
            call.organisation, call.roles = resp.organisation, tuple(resp.roles)
            call.recorded = _recorded_by_identity(resp)
            answer = pb.LoginResponse(access_token=resp.access_token, expire_time=resp.expire_time)
        return answer

    async def _authenticate(
        self, request: pb.LoginRequest, call: AuditedRequest
    ) -> identity_pb.AuthenticateUserResponse:
        """Identity's answer to a login (found by re-probing: a client's short deadline and a slow
        log made the gateway's CANCELLED event and identity's decision two events of one login)."""
        asking = self._identity.authenticate(
            request.username, request.password, request.totp_code, request_id=call.request_id
        )
        return await _whole(asking, call, _recorded_by_identity)

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        async with self._begin("Logout", context) as call:
            # Audit first: the logout is in the log before the token is revoked, so that when the
            # log cannot take it the answer (UNAVAILABLE) is true and nothing changed (found by
            # probing: the token was revoked, unrecorded).
            await call.record()
            # Then the token ends: revoked by identity, or, while identity cannot be reached,
            # refused here and revoked as soon as it can (`gateway.logouts`), so that the event
            # just written is true. A token identity refuses already (revoked, or its holder
            # suspended, a moment before this gateway heard) works nowhere: OK too.
            await self._logouts.end(self._caller())
        return pb.LogoutResponse()

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: Context
    ) -> pb.ChangePasswordResponse:
        async with self._begin("ChangePassword", context) as call:
            asking = self._identity.change_password(
                self._caller().token,
                request.current_password,
                request.new_password,
                request_id=call.request_id,
            )
            try:
                # (Found by re-probing: a client's short deadline made the gateway's CANCELLED event
                # and identity's two events of one request.)
                await _whole(asking, call, _recorded_by_identity_change)
            except ContactPointError as exc:
                # Identity's event of the call (its refusals too) is the one: no second here.
                call.recorded = _recorded_by_identity_change(exc)
                if not call.recorded:
                    call.details.append("identity could not be reached or did not record it")
                raise
            call.recorded = True  # identity changes a password only once its event is in the log
        return pb.ChangePasswordResponse()


def _recorded_by_identity_change(answer: BaseException | None) -> bool:
    """Whether identity put a ChangePassword in the log itself: it answered (None), or its refusal
    says so in its ErrorInfo (taken out: identity's words to the gateway, never to the person)."""
    if isinstance(answer, ContactPointError):
        return answer.metadata.pop(CALL_RECORDED, "") == "true"
    return answer is None
