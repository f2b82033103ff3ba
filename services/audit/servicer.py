"""The audit service's gRPC face: protobuf in and out, one transaction per call, no SQL."""

from __future__ import annotations

import structlog

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.auth import ANY_CALLER, SERVICE, Access, Principal, current_principal, roles
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.types import Context
from services.audit import domain

AUDITOR = roles("auditor")
ACCESS: dict[str, Access] = {
    "ListEvents": AUDITOR,
    "GetTreeHead": ANY_CALLER,
    "GetInclusionProof": AUDITOR,
    "GetConsistencyProof": AUDITOR,
    "GetPublicKey": ANY_CALLER,
    # The services that audit before they answer: the gateway, and records for data managers.
    "AppendEvent": roles("gateway", "records-service", kind=SERVICE),
}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["AuditService"]


class AuditServicer(pb_grpc.AuditServiceServicer):
    """Implements contactpoint.audit.v1.AuditService."""

    def __init__(self, *, db: Database, signer: domain.Signer, public_key: bytes) -> None:
        self._db = db
        self._signer = signer
        self._public_key = public_key

    async def record_refusal(self, action: str, caller: Principal | None, error: ContactPointError) -> None:
        """Log an authenticated caller refused by this service (the interceptor's refusal hook)."""
        if caller is None:
            return
        event = domain.refusal_event(
            caller,
            action=action,
            code_name=error.code.name,
            request_id=str(structlog.contextvars.get_contextvars().get("request_id", "")),
        )
        await self._db.write(lambda c: domain.append(c, event=event, signer=self._signer))

    async def AppendEvent(self, request: pb.AppendEventRequest, context: Context) -> pb.AppendEventResponse:
        event = request.event if request.HasField("event") else None
        index = await self._db.write(lambda c: domain.append(c, event=event, signer=self._signer))
        return pb.AppendEventResponse(leaf_index=index)

    async def ListEvents(self, request: pb.ListEventsRequest, context: Context) -> pb.ListEventsResponse:
        page = await self._db.read(
            lambda c: domain.list_events(
                c,
                contactpoint_id=request.contactpoint_id,
                actor=request.actor,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        # Reading the log is itself logged, before anything is returned; no record, no answer.
        read = domain.read_event(
            current_principal(),
            contactpoint_id=request.contactpoint_id,
            actor=request.actor,
            returned=len(page.events),
            # The id the interceptor bound for this RPC, so the event and the service's logs agree.
            request_id=str(structlog.contextvars.get_contextvars().get("request_id", "")),
        )
        await self._db.write(lambda c: domain.append(c, event=read, signer=self._signer))
        return pb.ListEventsResponse(events=page.events, next_page_token=page.next_page_token)

    async def GetTreeHead(self, request: pb.GetTreeHeadRequest, context: Context) -> pb.GetTreeHeadResponse:
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
        data, path = await self._db.read(
            lambda c: domain.inclusion_proof(c, leaf_index=request.leaf_index, tree_size=request.tree_size)
        )
        return pb.GetInclusionProofResponse(leaf_data=data, audit_path=path)

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: Context
    ) -> pb.GetConsistencyProofResponse:
        proof = await self._db.read(
            lambda c: domain.consistency_proof(
                c, first_size=request.first_size, second_size=request.second_size
            )
        )
        return pb.GetConsistencyProofResponse(proof=proof)

    async def GetPublicKey(
        self, request: pb.GetPublicKeyRequest, context: Context
    ) -> pb.GetPublicKeyResponse:
        return pb.GetPublicKeyResponse(public_key=self._public_key)
