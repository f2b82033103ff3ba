"""The audit service's gRPC face: protobuf in and out, one transaction per call, no SQL."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.auth import ANY_CALLER, SERVICE, Access, Principal, current_principal, roles
from contactpoint.platform.db import Database
from contactpoint.platform.deadlines import asked_commit_by, commit_by, still_in_time
from contactpoint.platform.errors import ContactPointError, InvalidArgument, Unavailable
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.types import Context
from services.audit import domain, events, reading, watching
from services.audit.sequencer import Sequencer

T = TypeVar("T")
AUDITOR = roles("auditor")
# The suite's services that audit before they answer: the gateway, records (data managers' calls)
# and identity (administrators' calls). Machine accounts only: no person writes here.
APPENDERS = roles("gateway", "records-service", "identity-service", kind=SERVICE)
ACCESS: dict[str, Access] = {
    "ListEvents": AUDITOR,
    "GetTreeHead": ANY_CALLER,
    "GetInclusionProof": AUDITOR,
    "GetConsistencyProof": AUDITOR,
    "GetPublicKey": ANY_CALLER,
    "AppendEvent": APPENDERS,
    "AppendEvents": APPENDERS,
    "WatchEvents": AUDITOR,
}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["AuditService"]


def _request_id() -> str:
    # The id the interceptor bound for this RPC, so that the event and the service's logs agree.
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


class AuditServicer(pb_grpc.AuditServiceServicer):
    """Implements contactpoint.audit.v1.AuditService."""

    def __init__(
        self,
        *,
        db: Database,
        signer: domain.Signer,
        sequencer: Sequencer,
        public_key: bytes,
        verifier: TokenVerifier,
        watch_poll_seconds: float = watching.POLL_SECONDS,
    ) -> None:
        self._db = db
        self._signer = signer
        self._sequencer = sequencer
        self._public_key = public_key
        self._verifier = verifier
        self._watch_poll = watch_poll_seconds
        self._closing = asyncio.Event()

    async def close(self) -> None:
        """End every open watch, UNAVAILABLE, at its next look at the log (clients reopen them).
        Run before the server stops, it spares a shutdown the grace period that open watches would
        otherwise hold it for (the server cuts them when that runs out)."""
        self._closing.set()

    async def record_refusal(
        self, action: str, caller: Principal | None, error: ContactPointError, /, *, request: Any = None
    ) -> None:
        """Log an authenticated caller refused by this service (the interceptor's refusal hook)."""
        if caller is None:
            return
        event = events.refusal_event(
            caller, action=action, code_name=error.code.name, request_id=_request_id()
        )
        await self._sequencer.append(event, events.SERVICE_ITSELF)

    async def _audited_read(
        self, context: Context, action: str, read: Callable[[Connection], T], describe: Callable[[T], str]
    ) -> T:
        """`read`, answered only once the event recording it is in the log (see `reading`). A
        read refused for what it asked (INVALID_ARGUMENT) reads nothing, and is recorded as
        refused before the refusal is answered, as a read outside the caller's roles is. Not
        recorded if the caller has stopped waiting for it (found by probing: a ListEvents its
        caller's deadline ended was logged as a read that returned events)."""
        principal = current_principal()
        reader = events.Reader.of(principal, request_id=_request_id())
        until = commit_by(context)

        def audited(c: Connection) -> T:
            answer = reading.audited(
                c, reader=reader, action=action, read=read, describe=describe, signer=self._signer
            )
            still_in_time(until)
            return answer

        try:
            return await self._db.write(audited)
        except InvalidArgument as refused:
            await self.record_refusal(action, principal, refused)
            raise

    async def AppendEvent(self, request: pb.AppendEventRequest, context: Context) -> pb.AppendEventResponse:
        event = request.event if request.HasField("event") else None
        # Recorded as appended by the machine account whose token made this call.
        sender = current_principal().name
        # Gathered with the appends in flight into one transaction and one signed head; answered
        # only once that has committed.
        index = await self._sequencer.append(event, sender, commit_by=asked_commit_by(context))
        return pb.AppendEventResponse(leaf_index=index)

    async def AppendEvents(
        self, request: pb.AppendEventsRequest, context: Context
    ) -> pb.AppendEventsResponse:
        # All or none, in one batch; answered only once it has committed.
        indexes = await self._sequencer.append_all(
            list(request.events), current_principal().name, commit_by=asked_commit_by(context)
        )
        return pb.AppendEventsResponse(leaf_indexes=indexes)

    async def ListEvents(self, request: pb.ListEventsRequest, context: Context) -> pb.ListEventsResponse:
        filters = reading.filters_detail(contactpoint_id=request.contactpoint_id, actor=request.actor)
        page = await self._audited_read(
            context,
            "ListEvents",
            lambda c: domain.list_events(
                c,
                contactpoint_id=request.contactpoint_id,
                actor=request.actor,
                page_size=request.page_size,
                page_token=request.page_token,
            ),
            lambda page: f"filters: {filters}; events returned: {len(page.events)}",
        )
        return pb.ListEventsResponse(events=page.events, next_page_token=page.next_page_token)

    async def GetTreeHead(self, request: pb.GetTreeHeadRequest, context: Context) -> pb.GetTreeHeadResponse:
        # Not logged: a tree head shows no event, and the suite's services and witnesses poll it.
        head = await self._db.read(lambda c: domain.tree_head(c, signer=self._signer))
        return pb.GetTreeHeadResponse(
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            checkpoint=head.checkpoint,
            signature=head.signature,
        )

    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: Context
    ) -> pb.GetInclusionProofResponse:
        asked = reading.filters_detail(leaf_index=request.leaf_index, tree_size=request.tree_size)
        data, path = await self._audited_read(
            context,
            "GetInclusionProof",
            lambda c: domain.inclusion_proof(c, leaf_index=request.leaf_index, tree_size=request.tree_size),
            lambda _: f"inclusion proof: {asked}",
        )
        return pb.GetInclusionProofResponse(leaf_data=data, audit_path=path)

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: Context
    ) -> pb.GetConsistencyProofResponse:
        asked = reading.filters_detail(first_size=request.first_size, second_size=request.second_size)
        proof = await self._audited_read(
            context,
            "GetConsistencyProof",
            lambda c: domain.consistency_proof(
                c, first_size=request.first_size, second_size=request.second_size
            ),
            lambda _: f"consistency proof: {asked}",
        )
        return pb.GetConsistencyProofResponse(proof=proof)

    async def GetPublicKey(
        self, request: pb.GetPublicKeyRequest, context: Context
    ) -> pb.GetPublicKeyResponse:
        return pb.GetPublicKeyResponse(public_key=self._public_key)

    async def WatchEvents(
        self, request: pb.WatchEventsRequest, context: Context
    ) -> AsyncIterator[pb.AuditEvent]:
        after = request.after_leaf_index if request.HasField("after_leaf_index") else None
        principal = current_principal()
        try:
            watch = watching.Watch.of(min_severity=request.min_severity, after_leaf_index=after)
        except InvalidArgument as refused:
            await self.record_refusal(watching.ACTION, principal, refused)
            raise
        reader = events.Reader.of(principal, request_id=_request_id())
        # Opening the watch is logged before anything is sent; no record, no watch.
        await self._db.write(
            lambda c: reading.record(
                c, reader=reader, action=watching.ACTION, detail=watch.describe(), signer=self._signer
            )
        )
        start = watch.start
        while True:
            if self._closing.is_set():
                # UNAVAILABLE, as when the server cuts a call: the client reopens the watch (on
                # another replica, or once this one is back) after the last event it received.
                raise Unavailable("the audit service is stopping; reopen the watch")
            # A watch outlives the check made when it opened: it ends (UNAUTHENTICATED) as soon as
            # its token expires or is revoked, or its account is suspended, as a call would.
            await self._verifier.catch_up()  # as the interceptor does for a new call
            if self._closing.is_set():
                continue  # closed while catching up: ended above
            self._verifier.verify(principal.token)
            batch = await self._db.read(functools.partial(watching.next_batch, watch=watch, start=start))
            for event in batch.events:
                yield event
            start = batch.next_start
            if not batch.more:
                await self._pause()

    async def _pause(self) -> None:
        """Wait before the next look at the log, or until the service closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=self._watch_poll)
