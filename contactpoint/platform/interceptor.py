"""The one server interceptor: binds the log context, authenticates and authorises by the
service's access table, turns requests that are not valid messages into INVALID_ARGUMENT, and
maps every exception to a gRPC status in one place.

Every kind of handler our services use is wrapped the same way: unary and server-streaming
handlers (`unary_unary`, `unary_stream`) get one request, client- and bidirectional-streaming
ones (`stream_stream`) an iterator of requests. Streaming handlers are async generators that
yield their answers (not `context.write`: the wrappers serialise every response themselves).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Any, Protocol

import grpc
import structlog
from grpc_status import rpc_status

from contactpoint.platform.auth import (
    Access,
    Principal,
    bearer_token,
    caller_or_none,
    on_behalf_of_token,
    set_person,
    set_principal,
)
from contactpoint.platform.calls import Calls
from contactpoint.platform.db import TransactionConflict
from contactpoint.platform.decoding import (
    CheckedRequests,
    Undecodable,
    answers_each,
    tolerant_deserializer,
    undecodable_request,
)
from contactpoint.platform.errors import (
    ContactPointError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    internal_status,
)
from contactpoint.platform.ids import RANDOM
from contactpoint.platform.logging import get_logger
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.per_message import PersonEach, admitted_person
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.tracing import current_trace_id, mark_span_failed
from contactpoint.platform.types import Context

log = get_logger(__name__)
REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class RefusalHook(Protocol):
    """Called when a call is refused before its handler runs (no or a bad token, a role that may
    not call it, an undecodable request) with the rpc's name, the caller (whom the token was
    issued to, if it was correctly signed: also when it was revoked, expired or suspended), the
    refusal, and the decoded request of a unary call (None otherwise)."""

    def __call__(
        self, action: str, caller: Principal | None, error: ContactPointError, /, *, request: Any = None
    ) -> Awaitable[None]: ...


# Calls made all the time by the suite itself (every service polls identity twice a second):
# when they succeed they are logged at debug, so that an idle suite is quiet at info. (Health
# checks never reach the interceptor's logging at all.)
ROUTINE_RPCS: frozenset[str] = frozenset({"/contactpoint.identity.v1.IdentityService/GetVerificationState"})

Serializer = Callable[[Any], bytes]


def request_id_of(metadata: Any) -> str:
    """The caller's x-request-id, or a fresh one when it sent none or one that is not 1-128
    letters, digits and `. _ : / + = -` (a UUID, a W3C trace id, base64 pass): the id is written
    into the audit log and logs, where control or invisible characters could disguise a line."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return RANDOM.hex_id()  # buffered randomness: no system call per request


def _serializer(handler: grpc.RpcMethodHandler[Any, Any]) -> Serializer:
    """The handler's response serialiser. The wrappers serialise responses themselves, inside
    their error mapping, so that even a response that cannot be serialised ends INTERNAL."""
    serialize = handler.response_serializer
    return serialize if serialize is not None else (lambda response: response)


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Applies `access` (full method name → Access) to every RPC of our own services."""

    def __init__(
        self,
        access: Mapping[str, Access],
        verifier: TokenVerifier | None,
        refusal_hooks: Mapping[str, RefusalHook] | None = None,
        routine: Collection[str] = ROUTINE_RPCS,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        # The calls under way, which a stopping server waits for (`RunningServer.stop`).
        self.calls = Calls()
        self._access = dict(access)
        self._verifier = verifier
        self._refusal_hooks = dict(refusal_hooks or {})
        self._routine = frozenset(routine)

    async def _refused(self, method: str, exc: ContactPointError, request: Any = None) -> None:
        """Tell the service's refusal hook (if any) that a caller was refused (the caller is None
        when no valid token was presented). A hook that must record every refusal (the gateway's
        audit) raises a ContactPointError when it cannot, and the call ends with that instead
        (e.g. UNAVAILABLE); anything else it raises is logged and the refusal stands."""
        hook = self._refusal_hooks.get(method)
        if hook is None:
            return
        caller = caller_or_none()
        if caller is None and isinstance(exc, Unauthenticated) and isinstance(exc.holder, Principal):
            caller = exc.holder
        if isinstance(request, Undecodable):
            request = None
        try:
            await hook(method.rsplit("/", 1)[-1], caller, exc, request=request)
        except ContactPointError:
            raise
        except Exception:
            log.exception("rpc.refusal_hook_failed")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(("/grpc.health.", "/grpc.reflection.")):
            return handler
        access = self._access.get(method)
        if access is None:
            # Default deny: an RPC without a declared access rule cannot be called at all.
            return grpc.unary_unary_rpc_method_handler(self._refuse)
        deserialize = tolerant_deserializer(handler.request_deserializer)
        serialize = _serializer(handler)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, access, serialize),
                request_deserializer=deserialize,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_server_stream(handler.unary_stream, method, access, serialize),
                request_deserializer=deserialize,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.stream_stream, method, access, serialize),
                request_deserializer=deserialize,
            )
        raise RuntimeError(f"unsupported handler kind for {method}")

    @staticmethod
    async def _refuse(_request: Any, context: Context) -> None:
        await context.abort_with_status(  # type: ignore[attr-defined]
            rpc_status.to_status(PermissionDenied().to_status())
        )

    async def _admit(self, method: str, access: Access, context: Context, request: Any = None) -> None:
        """Bind the log context, check access and that the request (if one is given) could be
        decoded; a refusal goes to the service's hook first."""
        if (
            access.authenticated
            and self._verifier is not None
            and self._verifier.stale()  # the token looked for only then: nothing added per call
            and bearer_token(context.invocation_metadata()) is not None
        ):
            await self._verifier.catch_up()  # refused UNAUTHENTICATED without a token, stale or not
        try:
            self._enter(method, access, context)
            if isinstance(request, Undecodable):
                raise undecodable_request(request, "request")
            # A stopping server refuses new calls (UNAVAILABLE), each recorded as any refusal is:
            # the gateway audits every request (found by re-probing: those refused as it stopped
            # left no event).
            self.calls.admit()
        except ContactPointError as exc:
            await self._refused(method, exc, request)
            raise

    def _enter(self, method: str, access: Access, context: Context) -> None:
        metadata = context.invocation_metadata()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            rpc=method.rsplit("/", 1)[-1], request_id=request_id_of(metadata), peer=context.peer()
        )
        trace_id = current_trace_id()
        if trace_id is not None:
            structlog.contextvars.bind_contextvars(trace_id=trace_id)
        set_principal(None)
        set_person(None)
        if not access.authenticated:
            return
        token = bearer_token(metadata)
        if token is None or self._verifier is None:
            raise Unauthenticated("authentication required")
        principal = self._verified(token)
        structlog.contextvars.bind_contextvars(actor=principal.name)
        # Bound before the role check so that a refusal hook can say who was refused.
        set_principal(principal)
        access.check(principal)
        if access.on_behalf_of is not None and access.person_field is None:
            person = admitted_person(
                on_behalf_of_token(metadata),
                access.on_behalf_of,
                self._verified,
                missing="this call must be made on behalf of a person (x-on-behalf-of)",
            )
            set_person(person)
            structlog.contextvars.bind_contextvars(on_behalf_of=person.name)

    def _verified(self, token: str) -> Principal:
        assert self._verifier is not None
        try:
            principal = self._verifier.verify(token)
        except Unauthenticated:
            self._metrics.tokens_refused.inc()
            raise
        self._metrics.tokens_valid.inc()
        return principal

    def _ok(self, method: str, started: float) -> None:
        """Log and count a successful call: logged at debug for the suite's routine polls, else at
        info."""
        seconds = time.perf_counter() - started
        self._metrics.answered(method, grpc.StatusCode.OK, seconds)
        emit = log.debug if method in self._routine else log.info
        emit("rpc.ok", ms=round(seconds * 1000, 2))

    async def _fail(self, exc: BaseException, context: Context, method: str, started: float) -> None:
        if isinstance(exc, TransactionConflict):
            # A transaction that lost a race and was not run again: nothing of it was stored, and
            # the caller may retry (found by probing: such a loss was answered INTERNAL).
            log.warning("rpc.lost_race", error=type(exc).__name__)
            exc = Unavailable("the request lost a race with a concurrent one; nothing was stored: retry")
        code = exc.code if isinstance(exc, ContactPointError) else grpc.StatusCode.INTERNAL
        self._metrics.answered(method, code, time.perf_counter() - started)
        mark_span_failed(code)
        if isinstance(exc, ContactPointError):
            log.info("rpc.refused", code=exc.code.name)
            await context.abort_with_status(  # type: ignore[attr-defined]
                rpc_status.to_status(exc.to_status())
            )
        log.exception("rpc.crashed")
        await context.abort_with_status(  # type: ignore[attr-defined]
            rpc_status.to_status(internal_status())
        )

    def _begin(self) -> None:
        # A call taken, counted until `_end` (one a stopping server refuses too: `_admit`).
        self.calls.begin()
        self._metrics.in_flight.inc()

    def _end(self) -> None:
        self._metrics.in_flight.dec()
        self.calls.end()

    def _wrap_unary(self, inner: Any, method: str, access: Access, serialize: Serializer) -> Any:
        async def behaviour(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            self._begin()
            try:
                await self._admit(method, access, context, request)
                response = serialize(await inner(request, context))
                self._ok(method, started)
                return response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(exc, context, method, started)
            finally:
                self._end()

        return behaviour

    def _wrap_server_stream(self, inner: Any, method: str, access: Access, serialize: Serializer) -> Any:
        async def behaviour(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            self._begin()
            try:
                await self._admit(method, access, context, request)
                async for response in inner(request, context):
                    yield serialize(response)
                self._ok(method, started)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(exc, context, method, started)
            finally:
                self._end()

        return behaviour

    def _per_message(self, checked: CheckedRequests, access: Access, context: Context) -> AsyncIterator[Any]:
        """The requests of an `acting_for_each` stream, each admitted for its person."""
        if access.person_field is None or access.on_behalf_of is None:
            return checked
        caller_token = bearer_token(context.invocation_metadata()) or ""

        async def admit_caller() -> None:
            if self._verifier is not None and self._verifier.stale():
                await self._verifier.catch_up()
            access.check(self._verified(caller_token))

        return PersonEach(
            checked,
            field=access.person_field,
            person=access.on_behalf_of,
            admit_caller=admit_caller,
            verify=self._verified,
        )

    def _wrap_stream(self, inner: Any, method: str, access: Access, serialize: Serializer) -> Any:
        each = answers_each(inner)

        async def behaviour(requests: AsyncIterator[Any], context: Context) -> Any:
            started = time.perf_counter()
            checked = CheckedRequests(requests, each=each)
            self._begin()
            try:
                await self._admit(method, access, context)
                async for response in inner(self._per_message(checked, access, context), context):
                    yield serialize(response)
                if checked.error is not None:  # the handler ended its answers at the bad message
                    raise checked.error
                self._ok(method, started)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if checked.error is not None and exc is not checked.error:
                    # The client's bad message is the answer; the handler's own failure is noted.
                    log.info("rpc.failed_after_bad_request", error=type(exc).__name__)
                await self._fail(checked.error or exc, context, method, started)
            finally:
                self._end()

        return behaviour
