"""Audit first: every audited request (each gateway request, each data manager's call to records)
produces exactly one audit event, written before any answer leaves. If the audit service cannot
confirm the write, the request fails UNAVAILABLE."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import grpc
import structlog
from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as audit_pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.auth import Principal
from contactpoint.platform.db import Database, retrying
from contactpoint.platform.deadlines import DeadlinePassed
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
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.logging import get_logger
from contactpoint.platform.redaction import redacted
from contactpoint.platform.text import escaped, trimmed

if TYPE_CHECKING:
    from contactpoint.platform.audit_writer import AuditWriter

log = get_logger(__name__)
T = TypeVar("T")
# Bounds what a caller can make us write into the log (e.g. a failed login's username).
MAX_ACTOR_LENGTH = 128
MAX_DETAIL_LENGTH = 1000
# The most other children one event names (the audit service's own limit).
MAX_OTHER_CHILDREN = 8
# Control, format and separator characters (a NUL, an escape sequence, a bidirectional override):
# written into the log as visible \u escapes instead.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(value: str) -> str:
    """`value` with every control or invisible character replaced by a visible `\\uXXXX` (but the
    joiners and flags' tags of writing, `text.escaped`)."""
    return escaped(value, _HIDDEN)


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


# The actor of a login whose username names no one (identity looked): what was typed is not kept,
# for it may be a password typed in the wrong box (found by probing: it was the actor, read by
# every auditor).
UNKNOWN_USERNAME = "(unknown username)"
# The actor of a login no one looked up (refused before identity decided it: malformed, over a
# username's rate, identity away), for the same reason.
UNCHECKED_USERNAME = "(username not checked)"


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
    # What the caller typed to explain the request (a justification, a reason), as (label, text),
    # stored without the personal data that can be recognised in it (`redaction`):
    # written after `details`, so that no text of theirs can push the service's own out of the
    # event (found by probing: 200 hidden characters, escaped, crowded out a shield-override
    # alert's "shielded record viewed with shield-override").
    quoted: list[tuple[str, str]] = field(default_factory=list)
    # Other children the request concerned (a review task's candidate, a merge's retired child):
    # the log finds the event under each of them too.
    others: list[str] = field(default_factory=list)
    # Who is asking when no token names them yet (a login that succeeded: identity's answer).
    organisation: str = ""
    roles: tuple[str, ...] = ()
    # The latest `time.monotonic()` at which the event may be stored (the caller's deadline less a
    # margin for the answer), or None. An outcome its caller has stopped waiting for is not stored
    # as what it would have been (found by probing: a read whose client gave up after 1.5 s, with
    # the log slow, was stored ALLOWED though no child ever reached it): the request fails
    # UNAVAILABLE, and is recorded so.
    commit_by: float | None = None

    def by(self, principal: Principal) -> None:
        """Record who is asking."""
        self.principal = principal
        self.actor = principal.name
        structlog.contextvars.bind_contextvars(actor=principal.name)

    # Set once the event is in the log: a request is recorded exactly once.
    recorded: bool = False
    # The event (on its way, or once `recorded` in the log) says the request failed or was
    # cancelled: nothing it would change may be committed after that (found by probing: a data
    # manager's call cancelled at its deadline was logged UNAVAILABLE, and its write, still queued
    # for the database, then committed).
    _failure_event: bool = field(default=False, repr=False)
    # The append of the event, once begun: a request cancelled while it is on its way waits for
    # it rather than writing a second event (found by probing: a call whose client gave up
    # while audit was slow was recorded ALLOWED and CANCELLED).
    _recording: asyncio.Future[None] | None = field(default=None, repr=False)
    # Entered and not yet recording: the writer counts it as under way (a gathered call may wait
    # for its event).
    _under_way: bool = field(default=False, repr=False)

    async def __aenter__(self) -> AuditedRequest:
        self.auditor.began()
        self._under_way = True
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
            actor_organisation=p.organisation if p else self.organisation,
            actor_roles=sorted(p.roles) if p else sorted(self.roles),
            action=self.action,
            contactpoint_id=self.contactpoint_id,
            other_contactpoint_ids=self._other_children(),
            purpose=purpose,
            outcome=outcome,
            status_code=code.value[0],
            request_id=printable(self.request_id),
            severity=self.severity,
            detail=self._detail(details),
        )

    def _detail(self, details: list[str]) -> str:
        # The service's own words first, whole; then the caller's, each cut to the room left.
        parts = [own] if (own := printable("; ".join(details))[:MAX_DETAIL_LENGTH]) else []
        room = MAX_DETAIL_LENGTH - len(own)
        for label, text in self.quoted:
            room -= 2 if parts else 0
            if room <= len(label) + 2:
                break
            piece = f"{label}: {printable(trimmed(redacted(text)))}"[:room]
            parts.append(piece)
            room -= len(piece)
        return "; ".join(parts)

    def _other_children(self) -> list[str]:
        """`others` as the log stores them: well-formed ids only, each once, not the event's own
        child, at most MAX_OTHER_CHILDREN (a malformed one would make the log refuse the event)."""
        kept: list[str] = []
        for value in self.others:
            if value != self.contactpoint_id and value not in kept and contactpoint_id_problem(value) is None:
                kept.append(value)
        return kept[:MAX_OTHER_CHILDREN]

    async def record(self, exc: BaseException | None = None) -> None:
        """Write the event now (Unavailable unless the audit service confirms it). Asked again
        while it is being written (the handler cancelled meanwhile), it waits for that one write
        instead of making another; one that failed is tried again."""
        if self.recorded:
            self._no_longer_under_way()  # recorded by someone else (identity, a login's)
            if exc is None and self._failure_event:
                raise Unavailable("this request had already ended; nothing was changed")
            return
        failed = (
            self._recording is not None
            and self._recording.done()
            and (self._recording.cancelled() or self._recording.exception() is not None)
        )
        if self._recording is None or failed:
            try:
                event = self.event(exc)
            except BaseException:
                self._no_longer_under_way()  # no event is coming from it either
                raise
            # Queued at once, and the writer told in the same step that this request is no longer
            # under way (found by probing: done in a task of its own, a cancellation before it ran
            # left the request counted for ever, and every later call waited the whole moment).
            ends_request, self._under_way = self._under_way, False
            self._recording = self.auditor.enqueue(event, ends_request=ends_request, by=self.commit_by)
            self._failure_event = exc is not None
        try:
            await asyncio.shield(self._recording)
        except DeadlinePassed:
            if self.commit_by is None:
                raise
            # Not stored, and too late for its caller: the request fails, and is logged as failed
            # (no longer against the caller's clock, for it answers no one).
            self.commit_by, self._recording = None, None
            self.details.append("not in the log before its caller's deadline: answered UNAVAILABLE")
            await self.record(DeadlinePassed())
            raise
        self.recorded = True
        if exc is None and self._failure_event:
            # The event that went in says the request failed (the handler gave up meanwhile): what
            # it would change must not be committed (a write's transaction rolls back on this).
            raise Unavailable("this request had already ended; nothing was changed")

    def _no_longer_under_way(self) -> None:
        if self._under_way:
            self._under_way = False
            self.auditor.ended()

    async def write(self, db: Database, change: Callable[[Connection], T]) -> T:
        """Make `change` in one write transaction that commits only once this request's success is
        in the log (if the log cannot take it, nothing is stored). A transaction that lost a race
        (a deadlock with another replica's call) is run again from the start, with what it had
        noted for the event undone; if it keeps losing, Unavailable (found by probing: two data
        managers' calls on two replicas deadlocked, and one was answered INTERNAL)."""
        loop = asyncio.get_running_loop()

        def audited(conn: Connection) -> T:
            result = change(conn)
            self.record_before_commit(loop)
            return result

        noted = (
            self.contactpoint_id,
            self.severity,
            list(self.details),
            list(self.others),
            list(self.quoted),
        )

        def undo() -> None:
            if self.recorded:  # the event is in the log: it stands, and so must the answer
                raise Unavailable("the change could not be completed; retry")
            self.contactpoint_id, self.severity = noted[0], noted[1]
            self.details[:], self.others[:], self.quoted[:] = noted[2], noted[3], noted[4]

        return await retrying(
            lambda: db.write(audited),
            busy="the registry is busy with the same children; retry",
            before_retry=undo,
        )

    def record_before_commit(self, loop: asyncio.AbstractEventLoop, exc: BaseException | None = None) -> None:
        """From a worker thread inside a write transaction: record the request's outcome (`exc`:
        None for success) and wait for the audit service to confirm it, so that a change is
        committed only once it is in the log (if the log cannot take it, the transaction rolls
        back and nothing is stored)."""
        asyncio.run_coroutine_threadsafe(self.record(exc), loop).result()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        # Shielded: a client that cancels mid-request must not cancel the record of its request
        # (whose failure, if the handler is gone meanwhile, nobody else will look at).
        recording = asyncio.ensure_future(self.record(exc))
        recording.add_done_callback(_seen)
        await asyncio.shield(recording)
        return False


def _seen(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
