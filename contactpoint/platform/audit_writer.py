"""The writer of audit events: appends them to the audit service with the calling service's own
machine token, gathering those made at the same moment into one call (see `AuditWriter`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from contactpoint.audit.v1 import audit_service_pb2 as audit_pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as audit_grpc
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.auth import Principal
from contactpoint.platform.deadlines import DeadlinePassed, commit_headers, late
from contactpoint.platform.errors import (
    INVALID_TOKEN,
    ContactPointError,
    Unauthenticated,
    Unavailable,
    error_reason,
)
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.logging import get_logger
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, TokenSource, with_service_token

log = get_logger(__name__)
# Gathered appends: how many calls to the audit service at once, and the most events in each (the
# audit service's own batch limit). One call at a time: the audit service writes its batches one
# after another anyway, and whatever waits meanwhile goes in the next call, so calls carry more
# events each. Audited GetChild, 16 in flight: 0.81 → 0.51 ms of audit CPU a request, the whole
# suite 3.9 → 3.1 ms, p50 33 → 26 ms, against 2 at once (docs/benchmarks.md, 5 December).
APPENDS_IN_FLIGHT = 1
MAX_EVENTS_A_CALL = 256


@dataclass(slots=True)
class _Queued:
    event: audit_pb.AuditEvent
    stored: asyncio.Future[None]
    # The latest `time.monotonic()` at which it may still be stored (its request's caller's
    # deadline, less a margin for the answer), or None.
    by: float | None


class AuditWriter:
    """Appends events to the audit service with the calling service's own machine token.

    Appends made while earlier ones are still on their way are gathered and sent together, in one
    `AppendEvents` call (at most `in_flight` calls at once, each of at most `MAX_EVENTS_A_CALL`
    events; a lone event goes as `AppendEvent`). Each caller is still answered only once the audit
    service has confirmed its own event is stored, and each gets Unavailable if its call fails: one
    event per request, fail closed, as before. An event may carry its request's deadline (`by`):
    a call is then given no longer than its earliest event's, so that no event is stored after
    its request's caller has stopped waiting (the audit service rolls back what it cannot commit
    in time); the events of that call still in time are sent again, and the late ones fail with
    `DeadlinePassed`, nothing stored. Gathering saves a gRPC call per request on both
    sides (docs/benchmarks.md, "Appends gathered"). If the audit service refuses a gathered call as
    a whole (INVALID_ARGUMENT: an event it will not store; UNIMPLEMENTED: an older audit service
    during a rolling upgrade), its events are sent again one by one, so that each is refused or
    stored on its own.

    With `gather_seconds`, a call that could go waits up to that long while other requests of
    this process (`AuditedRequest`s begun and not yet recorded) are still under way, so that their
    events go in it too; it goes at once when none is, or when it is full (as PostgreSQL's
    commit_delay waits only while commit_siblings other transactions are active). An event may
    wait out the gathering of the call before its own and then its own: at most about twice
    `gather_seconds` longer than without. Under load each call then carries several times the
    events, and the audit service pays its call, its commit and its signed checkpoint once for all
    of them (docs/benchmarks.md, "Gathered for a moment"). Off unless the service asks for it: the
    gateway does (`CONTACTPOINT_GATEWAY_AUDIT_GATHER_MS`); records and identity record from inside
    open write transactions, where a wait would hold row locks longer."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        token: TokenSource,
        *,
        in_flight: int = APPENDS_IN_FLIGHT,
        gather_seconds: float = 0.0,
    ) -> None:
        self._stub = audit_grpc.AuditServiceStub(channel)
        self._token = token
        self._in_flight = in_flight
        self._gather_seconds = gather_seconds
        self._sending = 0
        self._queue: list[_Queued] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Requests begun and not yet recorded (their events are still to come), and the timer of a
        # call waiting for them.
        self._under_way = 0
        self._gathering: asyncio.TimerHandle | None = None
        # How many calls carried how many events (for tests and the benchmark).
        self.calls = 0
        self.events = 0

    def request(self, action: str, request_id: str, *, by: float | None = None) -> AuditedRequest:
        """An audit event for one request, written when the `async with` block ends; `by`: the
        latest `time.monotonic()` at which it may be stored (its caller's deadline, less a margin:
        `deadlines.commit_by`)."""
        return AuditedRequest(self, action, request_id, commit_by=by)

    async def record_refusal(
        self,
        action: str,
        caller: Principal | None,
        error: ContactPointError,
        /,
        *,
        request: Any = None,
        severity: str | None = None,
    ) -> None:
        """The one audit event of a call the interceptor refused before its handler ran (the
        services' refusal hooks), naming the child and purpose the request gave, if well formed,
        at `severity` if given; Unavailable when the log cannot take it."""
        call = self.request(action, str(structlog.contextvars.get_contextvars().get("request_id", "")))
        # Why, in the words the caller heard (found by probing: a forged token's event said
        # nothing, and read as mildly as a request with no token at all).
        call.details.append(f"refused: {error.message}")
        if caller is None and isinstance(error, Unauthenticated) and error.message == INVALID_TOKEN:
            # A token that does not verify at all: forged, damaged, or another system's.
            call.severity = "WARNING"
        if severity is not None:
            call.severity = severity
        if caller is not None:
            call.by(caller)
        asked = getattr(request, "contactpoint_id", "")
        # Only a caller the token names: anyone without one could otherwise fill any child's
        # subject-access report with refusals.
        if caller is not None and isinstance(asked, str) and asked and contactpoint_id_problem(asked) is None:
            call.contactpoint_id = asked
        purpose = getattr(request, "purpose", None)
        if isinstance(purpose, int):
            call.purpose = child_pb2.AccessPurpose.ValueType(purpose)
        await call.record(error)

    async def append(self, event: audit_pb.AuditEvent) -> None:
        """Append one event; Unavailable unless the audit service confirms it."""
        await self.enqueue(event)

    def enqueue(
        self, event: audit_pb.AuditEvent, *, ends_request: bool = False, by: float | None = None
    ) -> asyncio.Future[None]:
        """Queue one event now; the future is done once the audit service confirms it is stored
        (Unavailable if it is not; `DeadlinePassed` if it could not be stored by `by`, a
        `time.monotonic()`, and was not). `ends_request`: the event is that of a request counted
        as under way (`began`), which now is not."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(event, stored, by))
        if ends_request:
            self._under_way -= 1
        self._send_when_ready()
        return stored

    def began(self) -> None:
        """A request whose event is still to come has begun (`AuditedRequest.__aenter__`)."""
        self._under_way += 1

    def ended(self) -> None:
        """A request that began ended without an event of its own (another service recorded it,
        or its event could not be built): a call waiting for it goes now if it waits for no one
        else."""
        self._under_way -= 1
        self._send_when_ready()

    def _send_when_ready(self) -> None:
        """Send what is queued if a call may go: at once, or after gathering for a moment while
        other requests are under way (see the class's doc)."""
        more_to_come = self._under_way > 0 and len(self._queue) < MAX_EVENTS_A_CALL
        if self._gathering is not None:
            if more_to_come:
                return  # still gathering
            # Nothing more is coming, or the call is full: it goes now.
            self._gathering.cancel()
            self._gathering = None
        if not self._queue or self._sending >= self._in_flight:
            return
        if self._gather_seconds > 0 and more_to_come:
            self._gathering = asyncio.get_running_loop().call_later(self._gather_seconds, self._gathered)
            return
        self._send_next()

    def _gathered(self) -> None:
        self._gathering = None
        if self._queue and self._sending < self._in_flight:
            self._send_next()

    def _send_next(self) -> None:
        # Those already too late are answered, not sent.
        self._queue = [q for q in self._queue if not _too_late(q)]
        if not self._queue:
            return
        batch, self._queue = self._queue[:MAX_EVENTS_A_CALL], self._queue[MAX_EVENTS_A_CALL:]
        self._sending += 1
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: list[_Queued]) -> None:
        try:
            events = [q.event for q in batch]
            self.calls += 1
            self.events += len(events)
            bys = [q.by for q in batch if q.by is not None]
            # Committed no later than its earliest event's caller waits (`commit_headers`); the
            # call itself waits as long as ever, so that the answer "too late, nothing stored"
            # always arrives and the other events can be sent again.
            within = commit_headers(min(bys)) if bys else ()
            failures: list[BaseException | None]
            try:
                if len(batch) == 1:
                    failures = [await self._append_one(events[0], within)]
                else:
                    failures = await self._append_many(events, within)
            except BaseException as exc:  # anything else (a closed channel, cancellation): fail closed
                log.error("audit.append_failed", code=type(exc).__name__, events=len(events))
                failures = [exc] * len(events)
                if not isinstance(exc, Exception):
                    self._answer(batch, failures, min(bys, default=None))
                    raise
            self._answer(batch, failures, min(bys, default=None))
        finally:
            self._sending -= 1
            self._send_when_ready()

    def _answer(
        self, batch: list[_Queued], failures: list[BaseException | None], cutoff: float | None
    ) -> None:
        """Tell each caller of `batch` whether its event is stored; a caller never waits for ever.
        When the audit service rolled the call back for its events' deadline (`cutoff`: the
        earliest), the events that set it fail with `DeadlinePassed` and the others go again, at
        the head of the queue; rolled back for the call's own deadline (no event had one), they
        fail as any failed call does."""
        again: list[_Queued] = []
        for queued, failure in zip(batch, failures, strict=True):
            if queued.stored.done():  # its caller went away
                continue
            if failure is None:
                queued.stored.set_result(None)
            elif _nothing_stored(failure) and _set_the_deadline(queued.by, cutoff):
                queued.stored.set_exception(DeadlinePassed())  # its own caller's deadline
            elif _nothing_stored(failure) and cutoff is not None:
                again.append(queued)  # rolled back for another event's deadline: it goes again
            elif _deadline_exceeded(failure) and late(queued.by):
                queued.stored.set_exception(DeadlinePassed())
            else:
                queued.stored.set_exception(Unavailable("the audit service could not record this request"))
        self._queue[:0] = again

    async def _append_one(
        self, event: audit_pb.AuditEvent, within: tuple[tuple[str, str], ...] = ()
    ) -> BaseException | None:
        """Append one event; the failure, or None once it is stored."""
        request = audit_pb.AppendEventRequest(event=event)
        try:
            await with_service_token(
                self._token,
                lambda md: self._stub.AppendEvent(
                    request, metadata=(*md, *within), timeout=PEER_TIMEOUT_SECONDS
                ),
            )
        except (grpc.aio.AioRpcError, Unavailable) as exc:
            log.error("audit.append_failed", code=_code_name(exc), action=event.action)
            return exc
        return None

    async def _append_many(
        self, events: list[audit_pb.AuditEvent], within: tuple[tuple[str, str], ...] = ()
    ) -> list[BaseException | None]:
        """Append `events` in one call, all or none; their failures (None for each stored)."""
        request = audit_pb.AppendEventsRequest(events=events)
        try:
            await with_service_token(
                self._token,
                lambda md: self._stub.AppendEvents(
                    request, metadata=(*md, *within), timeout=PEER_TIMEOUT_SECONDS
                ),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED):
                return list(await asyncio.gather(*(self._append_one(event, within) for event in events)))
            log.error("audit.append_failed", code=_code_name(exc), events=len(events))
            return [exc] * len(events)
        except Unavailable as exc:
            log.error("audit.append_failed", code="UNAVAILABLE", events=len(events))
            return [exc] * len(events)
        return [None] * len(events)


def _too_late(queued: _Queued) -> bool:
    """Whether an event is already too late to be stored (it is answered `DeadlinePassed`)."""
    if not late(queued.by):
        return False
    if not queued.stored.done():
        queued.stored.set_exception(DeadlinePassed())
    return True


def _set_the_deadline(by: float | None, cutoff: float | None) -> bool:
    """Whether an event's own deadline is the one its call was rolled back for (or is past)."""
    return by is not None and (late(by) or (cutoff is not None and by <= cutoff))


def _nothing_stored(failure: BaseException) -> bool:
    # The audit service's word that it rolled the call back for its deadline.
    return isinstance(failure, grpc.aio.AioRpcError) and error_reason(failure) == DeadlinePassed.reason


def _deadline_exceeded(failure: BaseException) -> bool:
    return isinstance(failure, grpc.aio.AioRpcError) and failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def _code_name(exc: BaseException) -> str:
    return exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "UNAVAILABLE"
