"""The gateway's reads on RecordsService: GetChildRecord, its stream of reads ReadChildRecords, and
FindChildRecord. Who may call them is the servicer's access table (`servicer.ACCESS`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.concurrent_answers import ConcurrentAnswers
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError, internal_status
from contactpoint.platform.logging import get_logger
from contactpoint.platform.per_message import ForPerson, RefusedMessage
from contactpoint.platform.statements import Statements
from contactpoint.platform.types import Context
from contactpoint.platform.vault import Vault
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.records import children, reading
from services.records.model import AgeLimits

log = get_logger(__name__)

# Reads of one ReadChildRecords stream being answered at once (the stream is read no further).
READS_IN_HAND = 256
# The RPCs the gateway reads children by, for practitioners: no one else may call them.
READ_RPCS = frozenset({"GetChildRecord", "ReadChildRecords", "FindChildRecord"})
# One read of a ReadChildRecords stream, as the interceptor hands it over.
Read = ForPerson[pb.ReadChildRecordsRequest] | RefusedMessage[pb.ReadChildRecordsRequest]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class ChildReadRpcs(pb_grpc.RecordsServiceServicer):
    """The reads; the servicer gives them its database, limits, vault, statements and the event
    that ends open streams of reads when it drains."""

    _db: Database
    _limits: AgeLimits
    _vault: Vault
    _closing: asyncio.Event
    store: Statements

    async def GetChildRecord(
        self, request: pb.GetChildRecordRequest, context: Context
    ) -> pb.GetChildRecordResponse:
        return pb.GetChildRecordResponse(child=await self._read_child(request.contactpoint_id))

    async def _read_child(self, contactpoint_id: str) -> child_pb2.Child:
        try:
            return await reading.get_child(
                self.store, self._vault, contactpoint_id=contactpoint_id, limits=self._limits
            )
        except reading.Merged:  # a retired id: the general path follows the merge
            return await self._db.read(
                lambda conn: children.get_child(conn, contactpoint_id=contactpoint_id, limits=self._limits)
            )

    async def _read_one(self, item: Read) -> pb.ReadChildRecordsResponse:
        """One read of ReadChildRecords, answered as GetChildRecord would answer it."""
        read_id = item.request.read_id
        if isinstance(item, RefusedMessage):
            return pb.ReadChildRecordsResponse(read_id=read_id, error=item.error.to_status())
        started = time.perf_counter()
        try:
            item.bind()
            child = await self._read_child(item.request.contactpoint_id)
        except ContactPointError as exc:
            log.debug("records.read", code=exc.code.name, ms=_ms_since(started))
            return pb.ReadChildRecordsResponse(read_id=read_id, error=exc.to_status())
        except Exception:
            log.exception("records.read_crashed")
            return pb.ReadChildRecordsResponse(read_id=read_id, error=internal_status())
        log.debug("records.read", code="OK", ms=_ms_since(started))
        return pb.ReadChildRecordsResponse(read_id=read_id, child=child)

    def ReadChildRecords(  # type: ignore[override]
        self, requests: AsyncIterator[Read], context: Context
    ) -> AsyncIterator[pb.ReadChildRecordsResponse]:
        """GetChildRecord's reads over one stream, each admitted for its practitioner by the
        interceptor (`acting_for_each`), answered as each ends."""
        return ConcurrentAnswers(requests, self._read_one, limit=READS_IN_HAND, closing=self._closing)()

    async def close(self) -> None:
        """End every open stream of reads once the reads it holds are answered (the gateway sends
        what it sent after to another replica, or again once this one is back): run before the
        server stops, so that a long-lived stream does not hold the shutdown's grace period."""
        self._closing.set()

    async def FindChildRecord(
        self, request: pb.FindChildRecordRequest, context: Context
    ) -> pb.FindChildRecordResponse:
        criteria = children.criteria_of(request)
        if request.validate_only:
            children.check_search(criteria)
            return pb.FindChildRecordResponse()
        found = await self._db.read(
            lambda conn: children.search_child(conn, criteria=criteria, limits=self._limits)
        )
        return pb.FindChildRecordResponse(
            child=found.child,
            withheld_contactpoint_ids=found.withheld,
            archived_contactpoint_ids=found.archived,
        )
