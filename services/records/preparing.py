"""Preparing records for ingestion: each checked, normalised and keyed. Pure CPU work with no
I/O, done before a batch's transaction (so it overlaps the previous batch's), and in a worker
process for streams (`prepare_serialised`), beside the service's own Python."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from contactpoint.platform.errors import FieldViolation, PermissionDenied
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import placement, record_keys
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.validation import checked_record
from services.records.values import request_id_problem


@dataclass(frozen=True)
class Submission:
    """One request: an idempotency key and a record."""

    request_id: str
    record: pb.SourceRecord


@dataclass(frozen=True)
class PreparedBatch:
    """A batch checked and normalised, with each valid record's features and keys: the CPU work
    of ingestion, done outside any transaction (so it can overlap the previous batch's)."""

    organisation: str
    submissions: Sequence[Submission]
    now: dt.datetime
    hashes: list[str]
    rid_problems: list[str | None]
    violations: list[list[FieldViolation]]
    prepared: list[placement.Prepared | None]


def prepare_batch(
    *,
    organisation: str,
    submissions: Sequence[Submission],
    index_key: bytes,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> PreparedBatch:
    """Check, normalise and key every record of a batch (no I/O); `index_key` keys the blocking
    keys (`Vault.ring.index`)."""
    if not organisation:
        raise PermissionDenied("the caller belongs to no organisation")
    now = now or dt.datetime.now(dt.UTC)
    violations: list[list[FieldViolation]] = []
    prepared: list[placement.Prepared | None] = []
    hashes: list[str] = []
    for s in submissions:
        normal, problems = checked_record(s.record, now=now, limits=limits)
        violations.append(problems)
        prepared.append(placement.prepare(organisation, normal, index_key) if normal is not None else None)
        # A retry is the same request when it says the same once normalised, as a record is the
        # same record (found by probing: "401 023 2137" for "4010232137", "ls14ap" for "LS1 4AP",
        # or an unknown field dropped, was REQUEST_ID_REUSED, and the client never heard its id).
        hashes.append(record_keys.request_hash(normal if normal is not None else s.record, index_key))
    return PreparedBatch(
        organisation=organisation,
        submissions=submissions,
        now=now,
        hashes=hashes,
        rid_problems=[request_id_problem(s.request_id) for s in submissions],
        violations=violations,
        prepared=prepared,
    )


def prepare_serialised(
    *,
    organisation: str,
    request_ids: Sequence[str],
    records: Sequence[bytes],
    index_key: bytes,
    limits: AgeLimits,
    now: dt.datetime,
) -> PreparedBatch:
    """`prepare_batch` as a worker process runs it: the records arrive serialised, and the answer
    leaves the submissions out (the caller holds them, and puts them back with `with_submissions`)."""
    submissions = [
        Submission(rid, pb.SourceRecord.FromString(data))
        for rid, data in zip(request_ids, records, strict=True)
    ]
    batch = prepare_batch(
        organisation=organisation, submissions=submissions, index_key=index_key, limits=limits, now=now
    )
    return dataclasses.replace(batch, submissions=())


def with_submissions(batch: PreparedBatch, submissions: Sequence[Submission]) -> PreparedBatch:
    """A batch from `prepare_serialised`, with the submissions it was prepared from."""
    if len(submissions) != len(batch.hashes):
        raise ValueError("these are not the submissions the batch was prepared from")
    return dataclasses.replace(batch, submissions=submissions)
