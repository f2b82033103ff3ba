"""Ingestion: source records in (SubmitSourceRecord, StreamSourceRecords, `contactpoint seed`),
matched to children as they arrive, and withdrawn.

`submit_many` takes a batch of one organisation's submissions in one transaction: it serialises on
the batch's blocking keys (two councils sending the same new child at once end with one child),
reads everything it needs in a few queries, decides each record in order (a later record of the
batch sees the earlier ones), and writes in bulk. One bad record is an error in its own slot of
the answer and stores nothing; it never fails the batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from contactpoint.platform.errors import (
    ContactPointError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from contactpoint.platform.ids import new_contactpoint_id
from contactpoint.platform.logging import get_logger
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.children import archive_date, in_order
from services.records.linkage import Action, Candidate, Features, blocking_keys, features_of
from services.records.matching import FeatureCache, Matcher
from services.records.model import DEFAULT_LIMITS, AgeLimits, ConcurrentChange, Outcome, Submitted
from services.records.names import name_key, name_tokens, postcode_key
from services.records.repository import candidates as candidate_repo
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import SourceKey, SourceRow
from services.records.tables import ACTIVE
from services.records.validation import (
    checked_record,
    date_value,
    request_id_problem,
    text_problem,
)

log = get_logger(__name__)

REQUEST_ID_REUSED = "REQUEST_ID_REUSED"


@dataclass(frozen=True)
class Submission:
    """One request: an idempotency key and a record."""

    request_id: str
    record: pb.SourceRecord


def request_hash(record: pb.SourceRecord) -> str:
    """SHA-256 of a record's deterministic serialisation: equal for equal records."""
    return hashlib.sha256(record.SerializeToString(deterministic=True)).hexdigest()


def content_hash(record: pb.SourceRecord) -> str:
    """The hash of what a record says about the child (everything but `as_of`)."""
    copy = pb.SourceRecord()
    copy.CopyFrom(record)
    copy.ClearField("as_of")
    return request_hash(copy)


def name_rows(record: pb.SourceRecord) -> list[source_repo.MatchKeyRow]:
    """What makes a (valid) record findable by FindChild: one row per distinct name, the current
    name first, then former names (a former name lacking a part borrows the current one)."""
    current_family = name_key(record.name.family_name)
    current_given = name_tokens(record.name.given_names)
    dob = date_value(record.date_of_birth)
    assert dob is not None  # validated
    rows: list[source_repo.MatchKeyRow] = []
    seen: set[tuple[str, str]] = set()
    for name in [record.name, *record.former_names]:
        family = (name_key(name.family_name) or current_family)[:128]
        given = " ".join(name_tokens(name.given_names) or current_given)[:512]
        if (family, given) in seen:
            continue
        seen.add((family, given))
        rows.append(
            source_repo.MatchKeyRow(
                len(rows), family, given, dob, postcode_key(record.address.postcode), int(record.gender)
            )
        )
    return rows


def _require_organisation(organisation: str) -> None:
    if not organisation:
        raise PermissionDenied("the caller belongs to no organisation")


@dataclass
class _Prepared:
    """A valid record, normalised, with everything matching needs."""

    record: pb.SourceRecord
    key: SourceKey
    features: Features
    blocking: list[str]
    content_hash: str
    as_of: dt.datetime | None


@dataclass
class _Batch:
    """What one batch will write, gathered as its records are decided in order."""

    children: list[tuple[str, bool, dt.date | None]] = field(default_factory=list)
    sources: list[source_repo.NewSource] = field(default_factory=list)
    tasks: list[review_repo.NewTask] = field(default_factory=list)
    submissions: list[source_repo.NewSubmission] = field(default_factory=list)
    # Existing children that records of this batch joined, and every child whose record changed.
    linked: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)
    # New source records of this batch, as candidates for the batch's later records.
    local: dict[str, list[tuple[str, Candidate]]] = field(default_factory=lambda: defaultdict(list))
    new_children: set[str] = field(default_factory=set)
    new_keys: set[SourceKey] = field(default_factory=set)


def submit(
    conn: Connection,
    *,
    organisation: str,
    request_id: str,
    record: pb.SourceRecord,
    matcher: Matcher | None = None,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> Submitted:
    """Create or update one of `organisation`'s source records (CONTRACT §4 SubmitSourceRecord).

    A retry with the same `request_id` and record returns the first answer and changes nothing;
    the same `request_id` with another record is FailedPrecondition REQUEST_ID_REUSED. An invalid
    record is InvalidArgument with every problem, and nothing is stored."""
    [result] = submit_many(
        conn,
        organisation=organisation,
        submissions=[Submission(request_id, record)],
        matcher=matcher,
        limits=limits,
        now=now,
    )
    if isinstance(result, ContactPointError):
        raise result
    return result


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
    prepared: list[_Prepared | None]


def prepare_batch(
    *,
    organisation: str,
    submissions: Sequence[Submission],
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> PreparedBatch:
    """Check, normalise and key every record of a batch (no I/O)."""
    _require_organisation(organisation)
    now = now or dt.datetime.now(dt.UTC)
    violations: list[list[FieldViolation]] = []
    prepared: list[_Prepared | None] = []
    for s in submissions:
        normal, problems = checked_record(s.record, now=now, limits=limits)
        violations.append(problems)
        prepared.append(_prepare(organisation, normal) if normal is not None else None)
    return PreparedBatch(
        organisation=organisation,
        submissions=submissions,
        now=now,
        hashes=[request_hash(s.record) for s in submissions],
        rid_problems=[request_id_problem(s.request_id) for s in submissions],
        violations=violations,
        prepared=prepared,
    )


def submit_many(
    conn: Connection,
    *,
    organisation: str,
    submissions: Sequence[Submission],
    matcher: Matcher | None = None,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> list[Submitted | ContactPointError]:
    """Submit several records in one transaction; the answers in the same order (an error in the
    slot of a rejected record). ConcurrentChange when another transaction won a race on a key:
    the caller retries the whole batch."""
    batch = prepare_batch(organisation=organisation, submissions=submissions, limits=limits, now=now)
    return store_batch(conn, batch, matcher=matcher, limits=limits)


def store_batch(
    conn: Connection,
    prepared_batch: PreparedBatch,
    *,
    matcher: Matcher | None = None,
    limits: AgeLimits = DEFAULT_LIMITS,
) -> list[Submitted | ContactPointError]:
    """Match and store a prepared batch in one transaction (see `submit_many`)."""
    matcher = matcher or Matcher()
    organisation, submissions, now = (
        prepared_batch.organisation,
        prepared_batch.submissions,
        prepared_batch.now,
    )
    hashes, rid_problems = prepared_batch.hashes, prepared_batch.rid_problems
    violations, prepared = prepared_batch.violations, prepared_batch.prepared

    lock_names = [
        f"req:{organisation}:{s.request_id}" for s, p in zip(submissions, rid_problems, strict=True) if not p
    ]
    for p in prepared:
        if p is not None:
            lock_names.append(f"src:{p.key.organisation}:{p.key.source_system}:{p.key.source_record_id}")
            lock_names.extend(p.blocking)
    candidate_repo.serialise_on(conn, lock_names)

    valid_ids = {s.request_id for s, p in zip(submissions, rid_problems, strict=True) if not p}
    priors = {
        rid: (row.request_hash, Submitted(row.contactpoint_id, Outcome(row.outcome)))
        for rid, row in source_repo.submissions_of(
            conn, organisation=organisation, request_ids=valid_ids
        ).items()
    }
    ready = [p for p in prepared if p is not None]
    existing = source_repo.sources_by_key(conn, {p.key for p in ready})
    found = candidate_repo.candidates(conn, {k for p in ready if p.key not in existing for k in p.blocking})
    by_key = defaultdict(list)
    for row in found:
        by_key[row.key].append(row)

    batch = _Batch()
    cache = FeatureCache()
    results: list[Submitted | ContactPointError] = []
    for i, s in enumerate(submissions):
        if rid_problems[i]:
            results.append(
                InvalidArgument([FieldViolation("request_id", rid_problems[i] or ""), *violations[i]])
            )
            continue
        if s.request_id in priors:
            first_hash, answer = priors[s.request_id]
            if first_hash != hashes[i]:
                results.append(
                    FailedPrecondition(
                        "this request_id was already used for a different record", REQUEST_ID_REUSED
                    )
                )
            else:
                results.append(answer)
            continue
        p = prepared[i]
        if p is None:
            results.append(InvalidArgument(violations[i]))
            continue
        if p.key in batch.new_keys:
            # The same source record twice in one batch: write what came before, then read it back.
            _flush(conn, batch, limits=limits, now=now)
            existing.update(source_repo.sources_by_key(conn, [p.key]))
            batch = _Batch(local=batch.local, new_children=batch.new_children)
        held = existing.get(p.key)
        if held is not None:
            submitted = _update(conn, held, p, batch, now=now)
        else:
            candidates = cache.candidates(r for k in p.blocking for r in by_key.get(k, ()))
            submitted = _place(p, candidates, batch, matcher=matcher, limits=limits)
        batch.submissions.append(
            source_repo.NewSubmission(
                organisation, s.request_id, hashes[i], submitted.contactpoint_id, submitted.outcome.value
            )
        )
        priors[s.request_id] = (hashes[i], submitted)
        results.append(submitted)
    _flush(conn, batch, limits=limits, now=now)
    return results


def _prepare(organisation: str, normal: pb.SourceRecord) -> _Prepared:
    features = features_of(normal)
    return _Prepared(
        record=normal,
        key=SourceKey(organisation, normal.source_system, normal.source_record_id),
        features=features,
        blocking=sorted(set(blocking_keys(features))),
        content_hash=content_hash(normal),
        as_of=normal.as_of.ToDatetime(dt.UTC) if normal.HasField("as_of") else None,
    )


def _new_source(
    p: _Prepared,
    contactpoint_id: str,
    *,
    source_id: str,
    outcome: Outcome,
    score: float | None,
    reasons: Sequence[str],
) -> source_repo.NewSource:
    return source_repo.NewSource(
        id=source_id,
        key=p.key,
        contactpoint_id=contactpoint_id,
        record=p.record.SerializeToString(deterministic=True),
        features=p.features.to_json(),
        content_hash=p.content_hash,
        as_of=p.as_of,
        match_outcome=outcome.value,
        match_score=score,
        match_reasons=reasons,
        blocking=p.blocking,
        names=name_rows(p.record),
    )


def _place(
    p: _Prepared, candidates: list[Candidate], batch: _Batch, *, matcher: Matcher, limits: AgeLimits
) -> Submitted:
    """Decide a new source record's child among its candidates (the batch's own new records too)."""
    seen = {(c.organisation, c.source_system, c.source_record_id) for c in candidates}
    for k in p.blocking:
        for _, local in batch.local.get(k, ()):
            ident = (local.organisation, local.source_system, local.source_record_id)
            if ident not in seen:
                seen.add(ident)
                candidates.append(local)
    decision = matcher.decide(p.features, key=p.key, candidates=candidates)
    source_id = uuid.uuid4().hex
    if decision.action == Action.LINK and decision.candidate is not None:
        contactpoint_id = decision.candidate.contactpoint_id
        outcome = Outcome.LINKED
        if contactpoint_id not in batch.new_children:
            batch.linked.add(contactpoint_id)
        batch.touched.add(contactpoint_id)
    else:
        contactpoint_id = new_contactpoint_id()
        review = decision.action == Action.REVIEW and decision.candidate is not None
        outcome = Outcome.POSSIBLE_MATCH if review else Outcome.CREATED
        # A possible match of a shielded child is shown shielded until a data manager decides.
        provisional = bool(review and decision.candidate and decision.candidate.shielded)
        batch.children.append((contactpoint_id, provisional, archive_date([p.record], limits)))
        batch.new_children.add(contactpoint_id)
        if review and decision.candidate is not None:
            batch.tasks.append(
                review_repo.NewTask(
                    uuid.uuid4().hex,
                    contactpoint_id,
                    decision.candidate.contactpoint_id,
                    decision.score,
                    decision.reasons,
                )
            )
    score = decision.score if decision.candidate is not None else None
    batch.sources.append(
        _new_source(
            p, contactpoint_id, source_id=source_id, outcome=outcome, score=score, reasons=decision.reasons
        )
    )
    batch.new_keys.add(p.key)
    mine = Candidate(
        contactpoint_id=contactpoint_id,
        organisation=p.key.organisation,
        source_system=p.key.source_system,
        source_record_id=p.key.source_record_id,
        features=p.features,
        shielded=False,
    )
    for k in p.blocking:
        batch.local[k].append((source_id, mine))
    return Submitted(contactpoint_id, outcome)


def _update(conn: Connection, held: SourceRow, p: _Prepared, batch: _Batch, *, now: dt.datetime) -> Submitted:
    """A source record the organisation already holds: it stays with its child."""
    if not held.withdrawn:
        if held.content_hash == p.content_hash:
            if p.as_of is not None and (held.as_of is None or p.as_of > held.as_of):
                source_repo.set_as_of(conn, held.id, p.as_of)
            return Submitted(held.contactpoint_id, Outcome.UNCHANGED)
        if p.as_of is not None and held.as_of is not None and p.as_of < held.as_of:
            # An older snapshot than the one held (a late replay): the newer one stands.
            return Submitted(held.contactpoint_id, Outcome.UNCHANGED)
    source_repo.replace_source(
        conn,
        _new_source(
            p, held.contactpoint_id, source_id=held.id, outcome=Outcome.LINKED, score=None, reasons=()
        ),
        now=now,
    )
    batch.touched.add(held.contactpoint_id)
    return Submitted(held.contactpoint_id, Outcome.LINKED)


def _flush(conn: Connection, batch: _Batch, *, limits: AgeLimits, now: dt.datetime) -> None:
    """Write what a batch decided. Children it joined must still be active (not merged away or
    archived meanwhile): they are share-locked, and a lost race means retry."""
    if batch.linked:
        rows = child_repo.children_by_id(conn, batch.linked, share_lock=True)
        if any(r.status != ACTIVE for r in rows.values()) or len(rows) != len(batch.linked):
            raise ConcurrentChange("a child this batch joined changed meanwhile")
    child_repo.insert_children(conn, batch.children, now=now)
    source_repo.insert_sources(conn, batch.sources, now=now)
    review_repo.insert_tasks(conn, batch.tasks, now=now)
    source_repo.insert_submissions(conn, batch.submissions, now=now)
    if batch.touched:
        held: dict[str, list[SourceRow]] = defaultdict(list)
        for row in source_repo.active_sources(conn, batch.touched):
            held[row.contactpoint_id].append(row)
        child_repo.touch_many(
            conn, {cid: archive_date(in_order(held[cid]), limits) for cid in batch.touched}, now=now
        )
    if batch.sources:
        log.info("records.ingested", records=len(batch.sources), review_tasks=len(batch.tasks))


def withdraw(
    conn: Connection,
    *,
    organisation: str,
    source_system: str,
    source_record_id: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> None:
    """Withdraw one of `organisation`'s source records (idempotent). A child whose every source
    is withdrawn is no longer visible. A record is named by the caller's organisation, so another
    organisation's record cannot even be named: NotFound, whoever else holds that id."""
    _require_organisation(organisation)
    now = now or dt.datetime.now(dt.UTC)
    source_system, source_record_id = source_system.strip(), source_record_id.strip()
    violations = [
        FieldViolation(name, problem)
        for name, problem in (
            ("source_system", text_problem(source_system, max_length=64, required=True)),
            ("source_record_id", text_problem(source_record_id, max_length=128, required=True)),
        )
        if problem
    ]
    if violations:
        raise InvalidArgument(violations)
    key = SourceKey(organisation, source_system, source_record_id)
    candidate_repo.serialise_on(conn, [f"src:{organisation}:{source_system}:{source_record_id}"])
    row = source_repo.sources_by_key(conn, [key]).get(key)
    if row is None:
        raise NotFound("no such source record")
    if row.withdrawn:
        return
    source_repo.withdraw(conn, row.id, now=now)
    remaining = in_order(source_repo.active_sources(conn, [row.contactpoint_id]))
    child_repo.touch(conn, row.contactpoint_id, now=now, archive_on=archive_date(remaining, limits))
    log.info("records.withdrawn", contactpoint_id=row.contactpoint_id)
