"""Placing each record of a batch: deciding its child among the candidates (the batch's own
earlier records included), updating a record already held, and writing the batch's rows in bulk.
`ingestion.store_batch` drives it inside one transaction."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM, new_contactpoint_id
from contactpoint.platform.logging import get_logger
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.children import archive_date
from services.records.evidence import check_still_filed, record_of, task_records
from services.records.lifecycle import refile, refile_reordered
from services.records.linkage import Action, Also, Candidate, Decision, Features, blocking_keys, features_of
from services.records.model import AgeLimits, ConcurrentChange, Outcome, Submitted
from services.records.record_keys import content_hash, name_rows
from services.records.repository import children as child_repo
from services.records.repository import kept_shields, source_updates
from services.records.repository import remembered_services as remembered_repo
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.repository import submissions as submission_repo
from services.records.repository.rows import SourceKey, SourceRow
from services.records.repository.source_keys import MatchKeyRow
from services.records.repository.writes import key_hash
from services.records.sensitive_memory import remembered, told_sensitive
from services.records.splits import split_tasks
from services.records.tables import ACTIVE, ARCHIVED
from services.records.task_carrying import raised_for_records, reopen_overtaken
from services.records.task_upkeep import pair_shields, raise_pairs

log = get_logger(__name__)


@dataclass
class Prepared:
    """A valid record, normalised, with everything matching needs and what storing it writes that
    depends on the record alone (worked out in the prepare worker, beside the service's Python)."""

    record: pb.SourceRecord
    key: SourceKey
    features: Features
    blocking: list[str]
    blocking_hashes: dict[str, int]  # each blocking key as it is stored and looked up
    content_hash: str
    as_of: dt.datetime | None
    serialised: bytes  # the record as stored
    features_json: str  # the features as stored
    names: list[MatchKeyRow]  # FindChild's rows (`name_rows`)


@dataclass
class Batch:
    """What one batch will write, gathered as its records are decided in order."""

    children: list[tuple[str, bool, dt.date | None]] = field(default_factory=list)
    sources: list[source_repo.NewSource] = field(default_factory=list)
    tasks: list[review_repo.NewTask] = field(default_factory=list)
    # Tasks pairing a child a record joined with another it would have joined too (`splits`).
    splits: list[review_repo.NewTask] = field(default_factory=list)
    submissions: list[submission_repo.NewSubmission] = field(default_factory=list)
    # Existing children that records of this batch joined, and every child whose record changed.
    linked: set[str] = field(default_factory=set)
    archived_linked: set[str] = field(default_factory=set)  # of `linked`, those read as archived
    touched: set[str] = field(default_factory=set)
    # New source records of this batch, as candidates for the batch's later records.
    local: dict[str, list[tuple[str, Candidate]]] = field(default_factory=lambda: defaultdict(list))
    new_children: set[str] = field(default_factory=set)
    new_keys: set[SourceKey] = field(default_factory=set)
    # Records already held: a newer `as_of` for an unchanged one, or new content.
    as_of: list[tuple[str, dt.datetime]] = field(default_factory=list)
    # Children one of whose records is now newer than it was: which record is the newest (whose
    # date of birth counts) may have changed.
    reordered: set[str] = field(default_factory=set)
    # New content for a record already held, and that content (what it now flags as sensitive).
    replaced: list[tuple[source_repo.NewSource, pb.SourceRecord]] = field(default_factory=list)
    revived: set[str] = field(default_factory=set)  # children of withdrawn records sent again
    evidence: list[tuple[str, SourceKey]] = field(default_factory=list)  # each link's record


def prepare(organisation: str, normal: pb.SourceRecord, index_key: bytes) -> Prepared:
    """A valid record with its features and blocking keys (keyed with the data keys' index key)."""
    features = features_of(normal)
    blocking = sorted(set(blocking_keys(features)))
    return Prepared(
        record=normal,
        key=SourceKey(organisation, normal.source_system, normal.source_record_id),
        features=features,
        blocking=blocking,
        blocking_hashes={k: key_hash(k, index_key) for k in blocking},
        content_hash=content_hash(normal, index_key),
        as_of=normal.as_of.ToDatetime(dt.UTC) if normal.HasField("as_of") else None,
        serialised=normal.SerializeToString(deterministic=True),
        features_json=features.to_json(),
        names=name_rows(normal),
    )


def new_source(
    p: Prepared,
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
        record=p.serialised,
        features=p.features_json,
        content_hash=p.content_hash,
        as_of=p.as_of,
        match_outcome=outcome.value,
        match_score=score,
        match_reasons=reasons,
        blocking_hashes=list(p.blocking_hashes.values()),
        names=p.names,
        sensitive_services=told_sensitive(p.record),
    )


def with_locals(p: Prepared, candidates: list[Candidate], batch: Batch) -> list[Candidate]:
    """The candidates with the batch's own earlier new records that share a key with `p` added
    (after them, in key order)."""
    out = list(candidates)
    seen = {(c.organisation, c.source_system, c.source_record_id) for c in candidates}
    for k in p.blocking:
        for _, local in batch.local.get(k, ()):
            ident = (local.organisation, local.source_system, local.source_record_id)
            if ident not in seen:
                seen.add(ident)
                out.append(local)
    return out


def place(p: Prepared, decision: Decision, batch: Batch, *, limits: AgeLimits, today: dt.date) -> Submitted:
    """File a new source record under the child `decision` chose (a new child unless it links)."""
    source_id = RANDOM.hex_id()
    archive_on = archive_date([p.record], limits)
    # As the batch's later records will see it: archived, or due to be, as its child is.
    archived, due = False, archive_on is not None and archive_on <= today
    if decision.action == Action.LINK and decision.candidate is not None:
        archived, due = decision.candidate.archived, decision.candidate.due or due
        contactpoint_id = decision.candidate.contactpoint_id
        outcome = Outcome.LINKED
        if contactpoint_id not in batch.new_children:
            batch.linked.add(contactpoint_id)
        if decision.candidate.archived:
            batch.archived_linked.add(contactpoint_id)
        batch.evidence.append((contactpoint_id, record_of(decision.candidate)))
        batch.touched.add(contactpoint_id)
        batch.splits += split_tasks(decision, contactpoint_id)
    else:
        contactpoint_id = new_contactpoint_id()
        review = decision.action == Action.REVIEW and decision.candidate is not None
        outcome = Outcome.POSSIBLE_MATCH if review else Outcome.CREATED
        # A possible match of a shielded child is shown shielded until a data manager decides.
        provisional = bool(
            review and decision.candidate and (decision.candidate.shielded or decision.shielded_alike)
        )
        batch.children.append((contactpoint_id, provisional, archive_on))
        batch.new_children.add(contactpoint_id)
        if review and decision.candidate is not None:
            # Each shielded child it is like as well is put to its own data managers too.
            alike = [Also(decision.candidate, decision.score, decision.reasons), *decision.shielded_alike]
            for other in alike:
                batch.tasks.append(
                    review_repo.NewTask(
                        RANDOM.hex_id(),
                        contactpoint_id,
                        other.candidate.contactpoint_id,
                        other.score,
                        other.reasons,
                        candidate_record=record_of(other.candidate),
                    )
                )
    score = decision.score if decision.candidate is not None else None
    batch.sources.append(
        new_source(
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
        archived=archived,
        due=due,
    )
    for k in p.blocking:
        batch.local[k].append((source_id, mine))
    return Submitted(contactpoint_id, outcome)


def update(held: SourceRow, p: Prepared, batch: Batch) -> Submitted:
    """A source record the organisation already holds: it stays with its child (written by
    `flush`)."""
    if not held.withdrawn:
        if held.content_hash == p.content_hash:
            # A newer date for the same content. An older one than the version held (which counts
            # as of when it was stored, if sent undated) is a late replay and changes nothing
            # (found by probing: an undated record sent again dated years ago became its child's
            # oldest, which moved the child's date of birth and not its archive date).
            if p.as_of is not None and not held.newer_than(p.as_of) and p.as_of != held.as_of:
                batch.as_of.append((held.id, p.as_of))
                batch.reordered.add(held.contactpoint_id)
            return Submitted(held.contactpoint_id, Outcome.UNCHANGED)
        if held.newer_than(p.as_of):
            # An older snapshot than the one held (a late replay): the newer one stands.
            return Submitted(held.contactpoint_id, Outcome.UNCHANGED)
    replacement = new_source(
        p, held.contactpoint_id, source_id=held.id, outcome=Outcome.LINKED, score=None, reasons=()
    )
    batch.replaced.append((replacement, p.record))
    if held.withdrawn:
        batch.revived.add(held.contactpoint_id)
    batch.touched.add(held.contactpoint_id)
    return Submitted(held.contactpoint_id, Outcome.LINKED)


def flush(conn: Connection, batch: Batch, *, limits: AgeLimits, now: dt.datetime) -> None:
    """Write what a batch decided. Children it joined must still be active or archived as they
    were read (not merged away, archived or purged meanwhile), and children its review tasks name
    active: they are locked, and a lost race means retry."""
    # Children a review task will name, too: a task naming a child merged away meanwhile would
    # lose the pairing (and the shield it brings).
    named = {t.candidate for t in batch.tasks} | {c for t in batch.splits for c in (t.new_child, t.candidate)}
    kept = batch.linked | (named - batch.new_children)
    # Every existing child the batch will write to or name is locked first, in id order, as a
    # merge locks its two before it moves their records: else a record's new version (its source
    # row, then its name keys' check of the child) and a merge of its child (the child, then the
    # source rows) each held what the other wanted (found by probing: a deadlock in most such
    # races, each costing PostgreSQL's second-long deadlock check before the retry).
    locked = (kept | batch.touched) - batch.new_children
    if locked:
        rows = child_repo.children_by_id(conn, locked, update_lock=True)
        # An archived child is joined as archived (never named by a task), any other as active.
        expected = {cid: ARCHIVED if cid in batch.archived_linked else ACTIVE for cid in kept}
        if not kept <= rows.keys() or any(rows[cid].status != expected[cid] for cid in kept):
            raise ConcurrentChange("a child this batch joined or names changed meanwhile")
    claims = [
        *batch.evidence,
        *((c, r) for t in (*batch.tasks, *batch.splits) for c, r in task_records(t) if r),
    ]
    check_still_filed(conn, claims, written_now=batch.new_keys)
    child_repo.insert_children(conn, batch.children, now=now)
    if batch.reordered - batch.touched:  # before the dates are written: the order they change
        refile_reordered(conn, batch.reordered - batch.touched, dict(batch.as_of), limits=limits, now=now)
    source_updates.set_as_of(conn, batch.as_of)
    # What each flagged before stays remembered: one read for the batch (a record sent twice is
    # written between its two arrivals, so a batch replaces each record once).
    before = remembered_repo.remembered_services(conn, [replacement.id for replacement, _ in batch.replaced])
    source_updates.replace_sources(
        conn,
        [
            replace(replacement, sensitive_services=remembered(before.get(replacement.id, ()), record))
            for replacement, record in batch.replaced
        ],
        now=now,
    )
    if batch.revived:
        reopen_overtaken(conn, batch.revived, now=now)
    # A record received while its child was one with a shielded child, sent again: the child that
    # holds it now is shielded in its own right (`unmerge_shields`).
    for cid in sorted(kept_shields.holders_of_marked(conn, [r.id for r, _ in batch.replaced])):
        child_repo.set_shielding(conn, cid, shielded=True, now=now)
    source_repo.insert_sources(conn, batch.sources, now=now)
    tasks = raised_for_records(conn, batch.tasks) if batch.tasks else []
    review_repo.insert_tasks(conn, tasks, now=now)
    pair_shields(conn, tasks, now=now)  # a candidate shielded since the batch read it
    splits = raise_pairs(conn, raised_for_records(conn, batch.splits), now=now) if batch.splits else 0
    submission_repo.insert_submissions(conn, batch.submissions, now=now)
    if batch.touched:
        refile(conn, _held_now(conn, batch, now=now), limits=limits, now=now)
    if batch.sources:
        log.info("records.ingested", records=len(batch.sources), review_tasks=len(batch.tasks) + splits)


def _held_now(conn: Connection, batch: Batch, *, now: dt.datetime) -> dict[str, list[SourceRow]]:
    """The active source records of each child the batch touched, as now written. A child this
    batch made holds only the batch's own records, known without reading them back (and opening
    them)."""
    made = batch.touched & batch.new_children
    held: dict[str, list[SourceRow]] = {cid: [] for cid in batch.touched}
    for row in source_repo.active_sources(conn, batch.touched - made):
        held[row.contactpoint_id].append(row)
    for s in batch.sources:
        if s.contactpoint_id in made:
            row = SourceRow(
                id=s.id,
                key=s.key,
                contactpoint_id=s.contactpoint_id,
                record=s.record,
                features=s.features,
                content_hash=s.content_hash,
                as_of=s.as_of,
                withdrawn=False,
                updated_at=now,  # as insert_sources wrote it
            )
            held[s.contactpoint_id].append(row)
    return held
