"""Audit first: every audited request (each gateway request, each data manager's call to records)
produces exactly one audit event, written before any answer leaves. If the audit service cannot
confirm the write, the request fails UNAVAILABLE."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

import grpc
import structlog
from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as audit_pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as audit_grpc
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.auth import Principal
from contactpoint.platform.db import Database
from contactpoint.platform.errors import (
    ContactPointError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from contactpoint.platform.logging import get_logger
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, Metadata, TokenSource, with_service_token

log = get_logger(__name__)
T = TypeVar("T")
# Bounds what a caller can make us write into the log (e.g. a failed login's username).
MAX_ACTOR_LENGTH = 128
MAX_DETAIL_LENGTH = 1000
# Control, format and separator characters (a NUL, an escape sequence, a bidirectional override):
# written into the log as visible \u escapes instead.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(value: str) -> str:
    """`value` with every control or invisible character replaced by a visible `\\uXXXX`."""
    if value.isprintable():
        return value
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _HIDDEN else ch for ch in value)


def outcome_of(exc: BaseException | None) -> tuple[str, grpc.StatusCode]:
    """The audit outcome and status code of a request that ended with `exc` (None: success)."""
    if exc is None:
        return "ALLOWED", grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED", grpc.StatusCode.CANCELLED
    if isinstance(exc, Unauthenticated | PermissionDenied):
        return "DENIED", exc.code
    if isinstance(exc, NotFound):
        return "NOT_FOUND", exc.code
    if isinstance(exc, ResourceExhausted):
        return "RATE_LIMITED", exc.code
    if isinstance(exc, InvalidArgument):
        return "INVALID", exc.code
    if isinstance(exc, FailedPrecondition):
        return exc.reason or "FAILED", exc.code
    if isinstance(exc, Unavailable):
        return "UNAVAILABLE", exc.code
    if isinstance(exc, ContactPointError):
        return "FAILED", exc.code
    return "ERROR", grpc.StatusCode.INTERNAL


@dataclass
class AuditedRequest:
    """One request's audit event, filled in as the handler learns who and what."""

    auditor: AuditWriter
    action: str
    request_id: str
    actor: str = ""
    principal: Principal | None = None
    contactpoint_id: str = ""
    purpose: child_pb2.AccessPurpose.ValueType = child_pb2.ACCESS_PURPOSE_UNSPECIFIED
    severity: str = "INFO"
    details: list[str] = field(default_factory=list)

    def by(self, principal: Principal) -> None:
        """Record who is asking."""
        self.principal = principal
        self.actor = principal.name
        structlog.contextvars.bind_contextvars(actor=principal.name)

    # Set once the event is in the log: a request is recorded exactly once.
    recorded: bool = False

    async def __aenter__(self) -> AuditedRequest:
        return self

    def event(self, exc: BaseException | None) -> audit_pb.AuditEvent:
        """The audit event of this request, ended by `exc` (None: success). What a caller typed
        (a username, a justification, a purpose) is made storable here, so that hostile input is
        recorded as such rather than refused by the log (which would fail the request UNAVAILABLE
        and leave it unrecorded). The audit service stamps the time itself."""
        outcome, code = outcome_of(exc)
        p = self.principal
        details = list(self.details)
        purpose = self.purpose
        if purpose not in child_pb2.AccessPurpose.values():
            details.append(f"purpose: unknown value {int(purpose)}")
            purpose = child_pb2.ACCESS_PURPOSE_UNSPECIFIED
        return audit_pb.AuditEvent(
            actor=printable(self.actor)[:MAX_ACTOR_LENGTH],
            actor_organisation=p.organisation if p else "",
            actor_roles=sorted(p.roles) if p else [],
            action=self.action,
            contactpoint_id=self.contactpoint_id,
            purpose=purpose,
            outcome=outcome,
            status_code=code.value[0],
            request_id=printable(self.request_id),
            severity=self.severity,
            detail=printable("; ".join(details))[:MAX_DETAIL_LENGTH],
        )

    async def record(self, exc: BaseException | None = None) -> None:
        """Write the event now (Unavailable unless the audit service confirms it)."""
        if not self.recorded:
            await self.auditor.append(self.event(exc))
            self.recorded = True

    async def write(self, db: Database, change: Callable[[Connection], T]) -> T:
        """Make `change` in one write transaction that commits only once this request's success is
        in the log (if the log cannot take it, nothing is stored)."""
        loop = asyncio.get_running_loop()

        def audited(conn: Connection) -> T:
            result = change(conn)
            self.record_before_commit(loop)
            return result

        return await db.write(audited)

    def record_before_commit(self, loop: asyncio.AbstractEventLoop) -> None:
        """From a worker thread inside a write transaction: record the request's success and wait
        for the audit service to confirm it, so that a change is committed only once it is in the
        log (if the log cannot take it, the transaction rolls back and nothing is stored)."""
        asyncio.run_coroutine_threadsafe(self.record(), loop).result()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        # Shielded: a client that cancels mid-request must not cancel the record of its request.
        await asyncio.shield(self.record(exc))
        return False


class AuditWriter:
    """Appends events to the audit service with the calling service's own machine token."""

    def __init__(self, channel: grpc.aio.Channel, token: TokenSource) -> None:
        self._stub = audit_grpc.AuditServiceStub(channel)
        self._token = token

    def request(self, action: str, request_id: str) -> AuditedRequest:
        """An audit event for one request, written when the `async with` block ends."""
        return AuditedRequest(self, action, request_id)

    async def record_refusal(self, action: str, caller: Principal | None, error: ContactPointError) -> None:
        """The one audit event of a call the interceptor refused before its handler ran (the
        services' refusal hooks); Unavailable when the log cannot take it."""
        call = self.request(action, str(structlog.contextvars.get_contextvars().get("request_id", "")))
        if caller is not None:
            call.by(caller)
        await call.record(error)

    async def _send(self, request: audit_pb.AppendEventRequest, metadata: Metadata) -> None:
        await self._stub.AppendEvent(request, metadata=metadata, timeout=PEER_TIMEOUT_SECONDS)

    async def append(self, event: audit_pb.AuditEvent) -> None:
        """Append one event; Unavailable unless the audit service confirms it."""
        request = audit_pb.AppendEventRequest(event=event)
        try:
            await with_service_token(
                self._token,
                lambda md: self._stub.AppendEvent(request, metadata=md, timeout=PEER_TIMEOUT_SECONDS),
            )
        except (grpc.aio.AioRpcError, Unavailable) as exc:
            code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "UNAVAILABLE"
            log.error("audit.append_failed", code=code, action=event.action)
            raise Unavailable("the audit service could not record this request") from exc
