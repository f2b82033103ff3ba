"""Ingestion: source records in (SubmitSourceRecord, StreamSourceRecords, `contactpoint seed`),
matched to children as they arrive (withdrawals: `withdrawal`).

`submit_many` takes a batch of one organisation's submissions in one transaction: it serialises on
the batch's blocking keys (two councils sending the same new child at once end with one child),
reads everything it needs in a few queries, decides each record in order (a later record of the
batch sees the earlier ones), and writes in bulk. One bad record is an error in its own slot of
the answer and stores nothing; it never fails the batch.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from contactpoint.platform.errors import (
    ContactPointError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from contactpoint.platform.logging import get_logger
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import placement, record_keys
from services.records.linkage import Features
from services.records.matching import Matcher
from services.records.model import DEFAULT_LIMITS, AgeLimits, Outcome, Submitted
from services.records.preparing import PreparedBatch, Submission, prepare_batch
from services.records.rematching import rematch
from services.records.repository import candidates as candidate_repo
from services.records.repository import sources as source_repo
from services.records.repository import submissions as submission_repo
from services.records.repository.rows import SourceKey, SourceRow
from services.records.repository.sealing import vault_of
from services.records.staged_candidates import StagedCandidates
from services.records.values import day_in_england

log = get_logger(__name__)

REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
# A held source record sent with content that is another child (`Matcher.still_its_child`).
SOURCE_RECORD_REUSED = "SOURCE_RECORD_REUSED"


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
    the same `request_id` with another record is FailedPrecondition REQUEST_ID_REUSED. A record
    already held (or withdrawn) sent as another child altogether is FailedPrecondition
    SOURCE_RECORD_REUSED: one source record id is one child's for life, as a ContactPoint ID is
    (found by probing: Alice's record sent as Bartholomew kept her id and school). An invalid
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
    batch = prepare_batch(
        organisation=organisation,
        submissions=submissions,
        index_key=vault_of(conn).ring.index,
        limits=limits,
        now=now,
    )
    return store_batch(conn, batch, matcher=matcher, limits=limits)


def _raw_hashes(conn: Connection, record: pb.SourceRecord) -> tuple[str, str]:
    # A request answered before its hash was taken of the record normalised (keyed), or before it
    # was keyed at all: a retry of it is still recognised.
    raw = record_keys.request_hash(record, vault_of(conn).ring.index)
    return raw, record_keys.unkeyed_request_hash(record)


def store_batch(
    conn: Connection,
    prepared_batch: PreparedBatch,
    *,
    matcher: Matcher | None = None,
    limits: AgeLimits = DEFAULT_LIMITS,
    before_locks: Callable[[], None] = lambda: None,
) -> list[Submitted | ContactPointError]:
    """Match and store a prepared batch in one transaction (see `submit_many`).

    Decided before the locks, checked after them: the batch reads its candidates and decides every
    record, then takes the locks on its keys and looks again at which records are filed under
    them. Only if a concurrent writer filed one meanwhile (the same child from another council at
    the same moment) is the batch decided again, now under the locks. So two batches' matching
    overlaps, and only their writes are serialised. `before_locks` is called before the locks are
    taken, with nothing locked or written yet (a turn: `admin.store`)."""
    matcher = matcher or Matcher()
    ready = [p for p in prepared_batch.prepared if p is not None]
    hashes = {h: k for p in ready for k, h in p.blocking_hashes.items()}
    lock_names = [
        f"req:{prepared_batch.organisation}:{s.record.source_system.strip()}:{s.request_id}"
        for s, problem in zip(prepared_batch.submissions, prepared_batch.rid_problems, strict=True)
        if not problem and s.request_id
    ]
    for p in ready:
        lock_names.append(f"src:{p.key.organisation}:{p.key.source_system}:{p.key.source_record_id}")
        lock_names.extend(p.blocking)
    # A source record twice in one batch is written between its two arrivals: locks first.
    locked = len({p.key for p in ready}) < len(ready)
    if locked:
        before_locks()
        candidate_repo.serialise_on(conn, lock_names)
    hits, decided = _decide(conn, prepared_batch, ready, hashes, matcher=matcher, limits=limits)
    if not locked:
        before_locks()
        candidate_repo.serialise_on(conn, lock_names)
        if candidate_repo.hits_changed(conn, hashes.keys(), hits):
            hits, decided = _decide(conn, prepared_batch, ready, hashes, matcher=matcher, limits=limits)
    results, batch = decided
    placement.flush(conn, batch, limits=limits, now=prepared_batch.now)
    return results


def _decide(
    conn: Connection,
    prepared_batch: PreparedBatch,
    ready: list[placement.Prepared],
    hashes: dict[int, str],
    *,
    matcher: Matcher,
    limits: AgeLimits,
) -> tuple[candidate_repo.Hits, tuple[list[Submitted | ContactPointError], placement.Batch]]:
    """Read what the batch needs and decide each record in order; nothing is written, except
    between the two arrivals of one source record in the batch."""
    organisation, submissions, now = (
        prepared_batch.organisation,
        prepared_batch.submissions,
        prepared_batch.now,
    )
    request_hashes, rid_problems = prepared_batch.hashes, prepared_batch.rid_problems
    violations, prepared = prepared_batch.violations, prepared_batch.prepared

    # A request is named by its source system and its id: each feeding system numbers its own.
    # A request without an id has no earlier answer to give.
    valid = {
        _request_key(s) for s, p in zip(submissions, rid_problems, strict=True) if not p and s.request_id
    }
    priors = {
        key: (row.request_hash, Submitted(row.contactpoint_id, Outcome(row.outcome)))
        for key, row in submission_repo.submissions_of(
            conn, organisation=organisation, requests=valid
        ).items()
    }
    existing = source_repo.sources_by_key(conn, {p.key for p in ready})
    wanted = {h for p in ready if p.key not in existing for h in p.blocking_hashes.values()}
    hits = candidate_repo.read_hits(conn, hashes.keys())
    by_key: dict[str, list[str]] = defaultdict(list)
    for h, source_id in sorted(hits.pairs):
        if h in wanted:
            by_key[hashes[h]].append(source_id)
    today = day_in_england(now)
    candidates = StagedCandidates(
        conn, [p for p in ready if p.key not in existing], by_key, matcher=matcher, limits=limits, today=today
    )

    batch = placement.Batch()
    # The source records this batch has placed or updated and not yet written, and the held ones
    # changed that are to be matched again (together, before the batch is written).
    pending: set[SourceKey] = set()
    changed: list[tuple[placement.Prepared, SourceRow, int]] = []
    results: list[Submitted | ContactPointError] = []
    for i, s in enumerate(submissions):
        if rid_problems[i]:
            results.append(
                InvalidArgument([FieldViolation("request_id", rid_problems[i] or ""), *violations[i]])
            )
            continue
        if _request_key(s) in priors:  # only requests with an id are ever kept there
            first_hash, answer = priors[_request_key(s)]
            same = first_hash == request_hashes[i] or first_hash in _raw_hashes(conn, s.record)
            if not same:
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
        if p.key in pending:
            # The same source record twice in one batch (new or held): write what came before,
            # then read it back. Found by probing: a held record's second version was compared
            # with the row as the batch first read it, so the newest was answered UNCHANGED and
            # lost, or an older snapshot overwrote a newer one.
            _rematched(conn, batch, changed, matcher, limits=limits, today=today)
            placement.flush(conn, batch, limits=limits, now=now)
            existing.update(source_repo.sources_by_key(conn, pending))
            batch = placement.Batch(local=batch.local, new_children=batch.new_children)
            pending.clear()
        held = existing.get(p.key)
        if held is not None and _another_child(held, p, matcher):
            results.append(
                FailedPrecondition(
                    "this source record names another child: a source record id is one child's for "
                    "life; withdraw it and send the other child under an id of its own",
                    SOURCE_RECORD_REUSED,
                )
            )
            continue
        if held is not None:
            submitted = placement.update(held, p, batch)
            if submitted.outcome is Outcome.LINKED:
                changed.append((p, held, len(batch.splits)))
        else:
            submitted = placement.place(p, candidates.decide(p, batch), batch, limits=limits, today=today)
        pending.add(p.key)
        if s.request_id:  # without one, nothing is kept to answer a retry by
            batch.submissions.append(
                submission_repo.NewSubmission(
                    organisation,
                    p.key.source_system,
                    s.request_id,
                    request_hashes[i],
                    submitted.contactpoint_id,
                    submitted.outcome.value,
                )
            )
            priors[_request_key(s)] = (request_hashes[i], submitted)
        results.append(submitted)
    _rematched(conn, batch, changed, matcher, limits=limits, today=today)
    if candidates.stats:
        log.debug("records.candidates", **candidates.stats)  # counts only
    return hits, (results, batch)


def _rematched(
    conn: Connection,
    batch: placement.Batch,
    changed: list[tuple[placement.Prepared, SourceRow, int]],
    matcher: Matcher,
    *,
    limits: AgeLimits,
    today: dt.date,
) -> None:
    # The batch's held records changed, matched again together; each task goes where the record
    # came among the batch's split tasks, since the first task raised for a pair is the one kept
    # (`task_upkeep.raise_pairs`: found by review, a later record's split task for the same pair
    # took the correction's place once they were matched at the end).
    tasks = rematch(conn, [(p, held) for p, held, _ in changed], matcher, limits=limits, today=today)
    for (_, _, at), task in reversed(list(zip(changed, tasks, strict=True))):
        if task is not None:
            batch.splits.insert(at, task)
    changed.clear()


def _request_key(s: Submission) -> tuple[str, str]:
    # The source system as the record is stored (stripped): " social-care" is social-care's
    # request (found by probing: padding the name reused an id for another record).
    return s.record.source_system.strip(), s.request_id


def _another_child(held: SourceRow, p: placement.Prepared, matcher: Matcher) -> bool:
    # Unchanged content, or an older snapshot than the one held (`placement.update`), is not
    # decided at all.
    if not held.withdrawn and (held.content_hash == p.content_hash or held.newer_than(p.as_of)):
        return False
    return not matcher.still_its_child(Features.from_json(held.features), p.features)
