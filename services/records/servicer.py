"""Records' gRPC face: protobuf envelopes in and out, the caller's organisation from its token,
domain calls in one transaction each, no SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

from contactpoint.platform.auth import SERVICE, Access, Principal, current_principal, roles
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError, PermissionDenied, Unavailable, internal_status
from contactpoint.platform.logging import get_logger
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.records import domain
from services.records.model import AgeLimits, ConcurrentChange, FindCriteria, Outcome, Submitted
from services.records.settings import RecordsSettings

log = get_logger(__name__)

COUNCIL = roles("council-system")
GATEWAY = roles("gateway")
ACCESS: dict[str, Access] = {
    "SubmitSourceRecord": COUNCIL,
    "StreamSourceRecords": COUNCIL,
    "WithdrawSourceRecord": COUNCIL,
    "GetChildRecord": GATEWAY,
    "FindChildRecord": GATEWAY,
}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["RecordsService"]
OUTCOMES: dict[Outcome, pb.MatchOutcome.ValueType] = {
    Outcome.CREATED: pb.MATCH_OUTCOME_CREATED,
    Outcome.LINKED: pb.MATCH_OUTCOME_LINKED,
    Outcome.POSSIBLE_MATCH: pb.MATCH_OUTCOME_POSSIBLE_MATCH,
    Outcome.UNCHANGED: pb.MATCH_OUTCOME_UNCHANGED,
}
# Concurrent first submissions of one record (or one request_id) collide on a unique key; the
# loser's retry then finds the winner's row.
SUBMIT_ATTEMPTS = 3


def _machine() -> Principal:
    """The calling machine account. Every records RPC is for machine accounts only: a person's
    token is refused even if it somehow carried a machine role."""
    principal = current_principal()
    if principal.kind != SERVICE:
        raise PermissionDenied("only machine accounts may call the records service")
    return principal


def _response(submitted: Submitted) -> pb.SubmitSourceRecordResponse:
    return pb.SubmitSourceRecordResponse(
        contactpoint_id=submitted.contactpoint_id, outcome=OUTCOMES[submitted.outcome]
    )


class RecordsServicer(pb_grpc.RecordsServiceServicer):
    """Implements contactpoint.records.v1.RecordsService."""

    def __init__(self, *, db: Database, settings: RecordsSettings) -> None:
        self._db = db
        self._limits = AgeLimits(settings.max_age_years, settings.extended_max_age_years)

    async def _submit(self, organisation: str, request: pb.SubmitSourceRecordRequest) -> Submitted:
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                return await self._db.write(
                    lambda conn: domain.submit(
                        conn,
                        organisation=organisation,
                        request_id=request.request_id,
                        record=request.record,
                        limits=self._limits,
                    )
                )
            except ConcurrentChange:
                log.info("records.submit_conflict", attempt=attempt)
        raise Unavailable("the record is being changed concurrently; retry with the same request_id")

    async def SubmitSourceRecord(
        self, request: pb.SubmitSourceRecordRequest, context: Context
    ) -> pb.SubmitSourceRecordResponse:
        return _response(await self._submit(_machine().organisation, request))

    async def StreamSourceRecords(
        self, request_iterator: AsyncIterator[pb.SubmitSourceRecordRequest], context: Context
    ) -> AsyncIterator[pb.SubmitSourceRecordResponse]:
        organisation = _machine().organisation
        accepted = rejected = 0
        async for request in request_iterator:
            try:
                submitted = await self._submit(organisation, request)
            except ContactPointError as exc:
                rejected += 1
                yield pb.SubmitSourceRecordResponse(error=exc.to_status())
            except Exception:  # one record's failure, even our bug, never ends the stream
                rejected += 1
                log.exception("records.stream_record_crashed")
                yield pb.SubmitSourceRecordResponse(error=internal_status())
            else:
                accepted += 1
                yield _response(submitted)
        log.info("records.stream_done", accepted=accepted, rejected=rejected)

    async def WithdrawSourceRecord(
        self, request: pb.WithdrawSourceRecordRequest, context: Context
    ) -> pb.WithdrawSourceRecordResponse:
        organisation = _machine().organisation
        await self._db.write(
            lambda conn: domain.withdraw(
                conn,
                organisation=organisation,
                source_system=request.source_system,
                source_record_id=request.source_record_id,
            )
        )
        return pb.WithdrawSourceRecordResponse()

    async def GetChildRecord(
        self, request: pb.GetChildRecordRequest, context: Context
    ) -> pb.GetChildRecordResponse:
        _machine()
        child = await self._db.read(
            lambda conn: domain.get_child(conn, contactpoint_id=request.contactpoint_id, limits=self._limits)
        )
        return pb.GetChildRecordResponse(child=child)

    async def FindChildRecord(
        self, request: pb.FindChildRecordRequest, context: Context
    ) -> pb.FindChildRecordResponse:
        _machine()
        dob = request.date_of_birth
        criteria = FindCriteria(
            family_name=request.family_name,
            given_name=request.given_name,
            date_of_birth=(dob.year, dob.month, dob.day) if request.HasField("date_of_birth") else None,
            postcode=request.postcode,
            gender=int(request.gender),
            fuzzy=request.fuzzy,
        )
        child = await self._db.read(
            lambda conn: domain.find_child(conn, criteria=criteria, limits=self._limits)
        )
        return pb.FindChildRecordResponse(child=child)
