"""Records' gRPC face: protobuf envelopes in and out, the caller from its token, domain calls in
one transaction each, no SQL. Data managers' RPCs are in `data_managers.py`, the gateway's reads
in `read_rpcs.py`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.auth import (
    PERSON,
    SERVICE,
    Access,
    Principal,
    acting_for,
    acting_for_each,
    current_principal,
    roles,
)
from contactpoint.platform.db import Database, retrying
from contactpoint.platform.decoding import UndecodableMessage, answers_each_message
from contactpoint.platform.errors import ContactPointError, Internal, Unavailable
from contactpoint.platform.logging import get_logger
from contactpoint.platform.statements import Statements
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.types import Context
from contactpoint.platform.vault import Vault
from contactpoint.platform.workers import ProcessWorkers, WorkerCrashed
from contactpoint.platform.write_turns import Kind, WriteTurns, bulk_writes, writing_as
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin, key_scheme, preparing, streaming, withdrawal
from services.records.data_managers import DATA_MANAGER_RPCS, DataManagerRpcs
from services.records.fairness import OrganisationSlots
from services.records.model import AgeLimits, ConcurrentChange, Outcome, Submitted
from services.records.read_rpcs import ChildReadRpcs
from services.records.settings import RecordsSettings

log = get_logger(__name__)

# On PostgreSQL, the longest a record or batch waits for its turn at the key locks (as SQLite's
# busy timeout): then UNAVAILABLE, to be sent again.
KEY_TURN_SECONDS = 30

COUNCIL = roles("council-system", kind=SERVICE)
# Reads come from the gateway's machine account acting for a practitioner whose own token travels
# with the call: the gateway's credentials alone read nothing.
GATEWAY_ACCOUNT = roles("gateway", kind=SERVICE)
PRACTITIONER = roles("practitioner", kind=PERSON)
GATEWAY = acting_for(GATEWAY_ACCOUNT, PRACTITIONER)
DATA_MANAGER = roles("data-manager", kind=PERSON)
ACCESS: dict[str, Access] = {
    "SubmitSourceRecord": COUNCIL,
    "StreamSourceRecords": COUNCIL,
    "WithdrawSourceRecord": COUNCIL,
    "GetChildRecord": GATEWAY,
    # GetChildRecord's reads over one stream: the same rule, checked for each read.
    "ReadChildRecords": acting_for_each(GATEWAY_ACCOUNT, PRACTITIONER, token_field="on_behalf_of"),  # noqa: S106
    "FindChildRecord": GATEWAY,
    **dict.fromkeys(DATA_MANAGER_RPCS, DATA_MANAGER),
}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["RecordsService"]
OUTCOMES: dict[Outcome, pb.MatchOutcome.ValueType] = {
    Outcome.CREATED: pb.MATCH_OUTCOME_CREATED,
    Outcome.LINKED: pb.MATCH_OUTCOME_LINKED,
    Outcome.POSSIBLE_MATCH: pb.MATCH_OUTCOME_POSSIBLE_MATCH,
    Outcome.UNCHANGED: pb.MATCH_OUTCOME_UNCHANGED,
}
Result = Submitted | ContactPointError


def _response(result: Result) -> pb.SubmitSourceRecordResponse:
    if isinstance(result, ContactPointError):
        return pb.SubmitSourceRecordResponse(error=result.to_status())
    return pb.SubmitSourceRecordResponse(
        contactpoint_id=result.contactpoint_id, outcome=OUTCOMES[result.outcome]
    )


def _responses(results: list[Result], counts: dict[str, int]) -> list[pb.SubmitSourceRecordResponse]:
    for result in results:
        counts["rejected" if isinstance(result, ContactPointError) else "accepted"] += 1
    return [_response(r) for r in results]


@dataclass(frozen=True)
class _StreamBatch:
    """A batch of a stream: its decoded records prepared, and the answers of its messages that
    could not be decoded, by position."""

    prepared: preparing.PreparedBatch | None
    rejected: Mapping[int, ContactPointError]
    size: int


class RecordsServicer(DataManagerRpcs, ChildReadRpcs):
    """Implements contactpoint.records.v1.RecordsService."""

    def __init__(
        self,
        *,
        db: Database,
        settings: RecordsSettings,
        audit: AuditWriter | None,
        verifier: TokenVerifier,
        vault: Vault,
        filing: key_scheme.Filing,
    ) -> None:
        super().__init__(
            db=db, limits=AgeLimits(settings.max_age_years, settings.extended_max_age_years), audit=audit
        )
        self._verifier = verifier
        # Set when the service drains: open streams of reads end (`close`).
        self._closing = asyncio.Event()
        # Set when most of the shutdown's grace has gone: open streams of source records end
        # after the batch they are storing (`last_call`).
        self._feeds_closing = asyncio.Event()
        # Seals and opens what is stored (bound to `db` by `sealing.open_vault`); its index key
        # keys the blocking keys that incoming records are filed under.
        self._vault = vault
        self._index_key = vault.ring.index
        # Whether every record is filed under the current blocking keys: until then (after an
        # upgrade across a key change) what files or unfiles records is refused.
        self._filing = filing
        # GetChildRecord's statement, on the event loop (`reading`).
        self.store = Statements(db)
        self.matcher = admin.configured_matcher(settings)
        self._batch_size = settings.stream_batch_size
        # Each organisation's batches are checked, and stored, a few at a time, and its single
        # records stored a few at a time (`fairness`).
        self._preparing = OrganisationSlots(settings.ingest_slots_per_organisation, settings.ingest_slots)
        self._storing = OrganisationSlots(settings.ingest_slots_per_organisation, settings.ingest_slots)
        self._submitting = OrganisationSlots(settings.ingest_slots_per_organisation, settings.ingest_slots)
        # On PostgreSQL a batch's key locks take every lock bucket (some 3,000 names in 256), so
        # batches write one at a time there anyway, and a single record queued behind each batch
        # ahead of it in PostgreSQL's lock queue (3.7 records/s for one council's 24 callers under
        # three councils' streams). This process's writers take turns for the key locks instead,
        # single records sharing the time with batches as on SQLite (`write_turns`).
        self._key_turns = WriteTurns(KEY_TURN_SECONDS) if db.turns is None else None
        self.workers = ProcessWorkers(
            settings.prepare_workers, name="records-prepare", imports=(preparing.__name__,)
        )

    def _prepare(
        self, organisation: str, batch: Sequence[pb.SubmitSourceRecordRequest]
    ) -> preparing.PreparedBatch:
        submissions = [preparing.Submission(r.request_id, r.record) for r in batch]
        return preparing.prepare_batch(
            organisation=organisation, submissions=submissions, index_key=self._index_key, limits=self._limits
        )

    async def _prepare_stream(
        self, organisation: str, batch: Sequence[pb.SubmitSourceRecordRequest]
    ) -> preparing.PreparedBatch:
        """`_prepare` in a worker process, so that it overlaps the matching of the batch before."""
        if self.workers.workers == 0 or not organisation:
            return await asyncio.to_thread(self._prepare, organisation, batch)
        try:
            prepared = await self.workers.run(
                preparing.prepare_serialised,
                organisation=organisation,
                request_ids=[r.request_id for r in batch],
                records=[r.record.SerializeToString() for r in batch],
                index_key=self._index_key,
                limits=self._limits,
                now=dt.datetime.now(dt.UTC),
            )
        except WorkerCrashed:
            # Twice a worker died preparing this batch: the stream ends, and nothing of it is stored.
            log.error("records.prepare_crashed", records=len(batch))
            raise Internal() from None
        return preparing.with_submissions(
            prepared, [preparing.Submission(r.request_id, r.record) for r in batch]
        )

    async def _still_admitted(self, caller: Principal) -> None:
        """The interceptor verified the caller's token when the call began; a stream outlives
        that. Unauthenticated once the token has been revoked or has expired or its account is
        suspended (Unavailable while revocations cannot be known), exactly as a new call would be:
        a state gone stale is caught up first, as the interceptor does for a new call."""
        await self._verifier.catch_up()
        self._verifier.verify(caller.token)

    def _store(self, prepared: preparing.PreparedBatch) -> list[Result]:
        """One transaction for the batch; if it keeps losing races or fails outright, one
        transaction per record, so that one record's trouble is only its own."""
        single = len(prepared.submissions) == 1
        try:
            return admin.store(
                self._db, prepared, matcher=self.matcher, limits=self._limits, key_turns=self._key_turns
            )
        except ConcurrentChange:
            if single:
                raise Unavailable(
                    "the record is being changed concurrently; retry with the same request_id"
                ) from None
        except Unavailable:
            raise
        except Exception:
            if single:
                raise
            log.exception("records.batch_failed", records=len(prepared.submissions))
        return [self._one(prepared.organisation, s) for s in prepared.submissions]

    def _one(self, organisation: str, submission: preparing.Submission) -> Result:
        try:
            prepared = preparing.prepare_batch(
                organisation=organisation,
                submissions=[submission],
                index_key=self._index_key,
                limits=self._limits,
            )
            return self._store(prepared)[0]
        except ContactPointError as exc:
            return exc
        except Exception:  # one record's failure, even our bug, never ends the stream
            log.exception("records.stream_record_crashed")
            return Internal()

    async def SubmitSourceRecord(
        self, request: pb.SubmitSourceRecordRequest, context: Context
    ) -> pb.SubmitSourceRecordResponse:
        organisation = current_principal().organisation
        self._filing.require()
        # One record: a short transaction, in slots of its own and (on SQLite) taking turns with
        # streams' batches rather than waiting behind them all (`write_turns`).
        async with self._submitting.of(organisation):
            with writing_as(Kind.RECORD):
                [result] = await asyncio.to_thread(
                    lambda: self._store(self._prepare(organisation, [request]))
                )
        if isinstance(result, ContactPointError):
            raise result
        return _response(result)

    @answers_each_message
    async def StreamSourceRecords(
        self,
        request_iterator: AsyncIterator[pb.SubmitSourceRecordRequest | UndecodableMessage],
        context: Context,
    ) -> AsyncIterator[pb.SubmitSourceRecordResponse]:
        """Records are read ahead, and each batch (whatever has arrived, up to
        `stream_batch_size`) is checked and keyed while the previous one is being stored, in one
        transaction per batch; answers keep the request order. Before each batch is stored the
        caller's token is checked again: once it is revoked, expired or its account suspended, the
        stream ends UNAUTHENTICATED and nothing more is stored (records already answered stay)."""
        caller = current_principal()
        self._filing.require()

        async def prepare(batch: list[pb.SubmitSourceRecordRequest | UndecodableMessage]) -> _StreamBatch:
            # A message that could not be decoded is answered in its place, like a bad record.
            rejected = {i: r.error for i, r in enumerate(batch) if isinstance(r, UndecodableMessage)}
            requests = [r for r in batch if not isinstance(r, UndecodableMessage)]
            prepared = None
            if requests:
                async with self._preparing.of(caller.organisation):
                    prepared = await self._prepare_stream(caller.organisation, requests)
            return _StreamBatch(prepared, rejected, len(batch))

        async def store_prepared(prepared: preparing.PreparedBatch) -> list[Result]:
            try:
                # A stream's batch: on SQLite its turn at the write lock comes after any person's
                # write waiting, and in turn with single records (`write_turns`).
                async with self._storing.of(prepared.organisation):
                    with bulk_writes():
                        return await asyncio.to_thread(self._store, prepared)
            except ContactPointError as exc:
                return [exc] * len(prepared.submissions)
            except Exception:  # even our bug answers its records and never ends the stream
                log.exception("records.stream_batch_crashed", records=len(prepared.submissions))
                return [Internal()] * len(prepared.submissions)

        async def store(batch: _StreamBatch) -> list[Result]:
            stored = iter(await store_prepared(batch.prepared) if batch.prepared is not None else [])
            return [batch.rejected[i] if i in batch.rejected else next(stored) for i in range(batch.size)]

        counts = {"accepted": 0, "rejected": 0}
        answers = streaming.pipelined(
            request_iterator,
            batch_size=self._batch_size,
            prepare=prepare,
            store=store,
            before_store=lambda: self._still_admitted(caller),
            closing=self._feeds_closing,
            draining=self._closing,
        )
        try:
            async with contextlib.aclosing(answers):
                async for results in answers:
                    for response in _responses(results, counts):
                        yield response
        except streaming.Closing:
            # Draining: every record answered is stored, and the rest are to be sent again.
            raise Unavailable(
                "the records service is shutting down: send the records not answered again"
            ) from None
        finally:
            log.info("records.stream_done", **counts)

    def last_call(self) -> None:
        """End every stream of source records still open once the batch it is storing is answered
        (`UNAVAILABLE`: the council sends the rest again), before the shutdown's grace would cut it
        off in the middle of a write. A council's stream of a few seconds finishes before this."""
        self._feeds_closing.set()

    async def WithdrawSourceRecord(
        self, request: pb.WithdrawSourceRecordRequest, context: Context
    ) -> pb.WithdrawSourceRecordResponse:
        organisation = current_principal().organisation
        self._filing.require()
        # Run again while it loses a race (a merge, an unmerge or a link of the same child: found
        # by probing, where it was answered INTERNAL and not applied).
        await retrying(
            lambda: self._db.write(
                lambda conn: withdrawal.withdraw(
                    conn,
                    organisation=organisation,
                    source_system=request.source_system,
                    source_record_id=request.source_record_id,
                    limits=self._limits,
                )
            ),
            busy="the record's child is being changed concurrently; retry",
        )
        return pb.WithdrawSourceRecordResponse()
