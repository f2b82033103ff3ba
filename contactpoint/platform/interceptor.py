"""The one server interceptor: binds the log context, authenticates and authorises by the
service's access table, and maps every exception to a gRPC status in one place."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import structlog
from grpc_status import rpc_status

from contactpoint.platform.auth import (
    Access,
    Principal,
    TokenVerifier,
    bearer_token,
    caller_or_none,
    set_principal,
)
from contactpoint.platform.errors import ContactPointError, Unauthenticated, internal_status
from contactpoint.platform.logging import get_logger
from contactpoint.platform.types import Context

log = get_logger(__name__)
REQUEST_ID_KEY = "x-request-id"
# Called with (rpc name, the caller if its token was valid, the refusal) when access is refused.
RefusalHook = Callable[[str, Principal | None, ContactPointError], Awaitable[None]]


def request_id_of(metadata: Any) -> str:
    """The caller's x-request-id (bounded), or a fresh one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return uuid.uuid4().hex


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Applies `access` (full method name → Access) to every RPC of our own services."""

    def __init__(
        self,
        access: Mapping[str, Access],
        verifier: TokenVerifier | None,
        refusal_hooks: Mapping[str, RefusalHook] | None = None,
    ) -> None:
        self._access = dict(access)
        self._verifier = verifier
        self._refusal_hooks = dict(refusal_hooks or {})

    async def _refused(self, method: str, exc: ContactPointError) -> None:
        """Tell the service's refusal hook (if any) that a caller was refused (the caller is None
        when no valid token was presented)."""
        hook = self._refusal_hooks.get(method)
        if hook is None:
            return
        try:
            await hook(method.rsplit("/", 1)[-1], caller_or_none(), exc)
        except Exception:  # the refusal stands whether or not it could be recorded
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
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, access),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.stream_stream, method, access),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise RuntimeError(f"unsupported handler kind for {method}")

    @staticmethod
    async def _refuse(_request: Any, context: Context) -> None:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "permission denied")

    async def _admit(self, method: str, access: Access, context: Context) -> None:
        """Bind the log context and check access; a refusal goes to the service's hook first."""
        try:
            self._enter(method, access, context)
        except ContactPointError as exc:
            await self._refused(method, exc)
            raise

    def _enter(self, method: str, access: Access, context: Context) -> None:
        metadata = context.invocation_metadata()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            rpc=method.rsplit("/", 1)[-1], request_id=request_id_of(metadata), peer=context.peer()
        )
        set_principal(None)
        if not access.authenticated:
            return
        token = bearer_token(metadata)
        if token is None or self._verifier is None:
            raise Unauthenticated("authentication required")
        principal = self._verifier.verify(token)
        structlog.contextvars.bind_contextvars(actor=principal.name)
        # Bound before the role check so that a refusal hook can say who was refused.
        set_principal(principal)
        access.check(principal)

    @staticmethod
    async def _fail(exc: BaseException, context: Context) -> None:
        if isinstance(exc, ContactPointError):
            log.info("rpc.refused", code=exc.code.name)
            await context.abort_with_status(  # type: ignore[attr-defined]
                rpc_status.to_status(exc.to_status())
            )
        log.exception("rpc.crashed")
        await context.abort_with_status(  # type: ignore[attr-defined]
            rpc_status.to_status(internal_status())
        )

    def _wrap_unary(self, inner: Any, method: str, access: Access) -> Any:
        async def behaviour(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            try:
                await self._admit(method, access, context)
                response = await inner(request, context)
                log.info("rpc.ok", ms=round((time.perf_counter() - started) * 1000, 2))
                return response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(exc, context)

        return behaviour

    def _wrap_stream(self, inner: Any, method: str, access: Access) -> Any:
        async def behaviour(requests: AsyncIterator[Any], context: Context) -> Any:
            try:
                await self._admit(method, access, context)
                async for response in inner(requests, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(exc, context)

        return behaviour
