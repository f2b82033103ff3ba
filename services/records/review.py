"""What data managers do (CONTRACT §4 "Data managers"): review possible matches one task at a
time, merge and unmerge children, shield and unshield. Each acts only on children that have an
active source record from the data manager's own organisation; anything else is NotFound."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.logging import get_logger
from services.records.children import archive_date, composed, in_order, resolve
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import ChildRow, ReviewTaskRow
from services.records.tables import ACTIVE, MERGED
from services.records.validation import text_problem

log = get_logger(__name__)

HOLD = dt.timedelta(minutes=10)
LINK = "LINK"
KEEP_APART = "KEEP_APART"
OBSOLETE = "OBSOLETE"  # a task whose children were merged, archived or withdrawn meanwhile
MAX_REASON = 500
_TASK_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Manager:
    """The data manager acting: their username and organisation."""

    name: str
    organisation: str


@dataclass(frozen=True)
class TaskView:
    """A review task as a data manager sees it."""

    task_id: str
    new_child: child_pb2.Child
    candidate: child_pb2.Child
    score: float
    reasons: tuple[str, ...]


def is_task_id(value: str) -> bool:
    """Whether `value` is shaped like a review task's id."""
    return bool(_TASK_ID.match(value))


def _id(name: str, value: str) -> list[FieldViolation]:
    problem = contactpoint_id_problem(value)
    return [FieldViolation(name, problem)] if problem else []


def _reason(value: str) -> list[FieldViolation]:
    problem = text_problem(value, max_length=MAX_REASON, required=True)
    return [FieldViolation("reason", problem)] if problem else []


def _check(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(violations)


def _held(conn: Connection, manager: Manager, *ids: str) -> bool:
    return source_repo.held_by_organisation(conn, set(ids), manager.organisation) == set(ids)


def _active(conn: Connection, contactpoint_id: str, manager: Manager) -> ChildRow:
    """A child the manager may act on, row-locked: active and held by their organisation."""
    row = child_repo.child(conn, contactpoint_id, lock=True)
    if row is None or row.status != ACTIVE or not _held(conn, manager, contactpoint_id):
        raise NotFound("no child with this ContactPoint ID is managed by your organisation")
    return row


# --- review tasks -------------------------------------------------------------------------------


def next_task(
    conn: Connection, *, manager: Manager, limits: AgeLimits = DEFAULT_LIMITS, now: dt.datetime
) -> TaskView:
    """The oldest waiting task about a child of the manager's organisation, held for them for 10
    minutes. Tasks overtaken by events (a child merged, archived or withdrawn) are closed on the
    way. NotFound when none is waiting."""
    while True:
        row = review_repo.next_open_task(
            conn, organisation=manager.organisation, manager=manager.name, now=now
        )
        if row is None:
            raise NotFound("no review task is waiting")
        view = _view(conn, row, limits=limits, today=now.date())
        if view is None:
            review_repo.resolve_task(
                conn,
                row.task_id,
                decision=OBSOLETE,
                manager="",
                reason="overtaken by events",
                result_id="",
                now=now,
            )
            continue
        review_repo.hold_task(conn, row.task_id, manager=manager.name, until=now + HOLD)
        return view


def _view(conn: Connection, row: ReviewTaskRow, *, limits: AgeLimits, today: dt.date) -> TaskView | None:
    new, candidate = child_repo.child(conn, row.new_child), child_repo.child(conn, row.candidate)
    if new is None or candidate is None or new.status != ACTIVE or candidate.status != ACTIVE:
        return None
    new_child = composed(conn, new, limits=limits, today=today)
    candidate_child = composed(conn, candidate, limits=limits, today=today)
    if new_child is None or candidate_child is None:
        return None
    return TaskView(row.task_id, new_child, candidate_child, row.score, row.reasons)


def resolve_task(
    conn: Connection,
    *,
    manager: Manager,
    task_id: str,
    decision: str,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> str:
    """LINK (the new child joins the candidate; the candidate's id is returned) or KEEP_APART
    (remembered for ever; the new child's id is returned). A retry of the same decision returns
    the same answer."""
    violations = [] if is_task_id(task_id) else [FieldViolation("task_id", "must be a task id")]
    if decision not in (LINK, KEEP_APART):
        violations.append(FieldViolation("decision", "must be LINK or KEEP_APART"))
    _check(violations + _reason(reason))
    row = review_repo.task(conn, task_id, lock=True)
    if row is None or not (
        source_repo.held_by_organisation(conn, {row.new_child, row.candidate}, manager.organisation)
    ):
        raise NotFound("no such review task for your organisation")
    if row.status != review_repo.OPEN:
        if row.decision == decision and row.result_id:
            return row.result_id
        raise FailedPrecondition("this task was already decided", "TASK_ALREADY_RESOLVED")
    if row.held_by and row.held_by != manager.name and row.held_until and row.held_until > now:
        raise FailedPrecondition("another data manager holds this task", "TASK_HELD")
    new, candidate = resolve(conn, row.new_child), resolve(conn, row.candidate)
    if new is None or candidate is None or new.status != ACTIVE or candidate.status != ACTIVE:
        review_repo.resolve_task(
            conn, task_id, decision=OBSOLETE, manager=manager.name, reason=reason, result_id="", now=now
        )
        raise FailedPrecondition("a child of this task was archived or withdrawn meanwhile", "TASK_OBSOLETE")
    if decision == LINK:
        if new.contactpoint_id != candidate.contactpoint_id:
            _merge(
                conn,
                manager=manager,
                survivor_id=candidate.contactpoint_id,
                retired_id=new.contactpoint_id,
                reason=reason,
                limits=limits,
                now=now,
            )
        result = candidate.contactpoint_id
    else:
        review_repo.keep_apart(
            conn, row.new_child, row.candidate, manager=manager.name, reason=reason, now=now
        )
        result = row.new_child
        review_repo.close_tasks_between(
            conn,
            row.new_child,
            row.candidate,
            manager=manager.name,
            reason=reason,
            result_id=result,
            decision=KEEP_APART,
            now=now,
        )
        _lift_provisional_shield(conn, row.new_child, now=now)
    review_repo.resolve_task(
        conn, task_id, decision=decision, manager=manager.name, reason=reason, result_id=result, now=now
    )
    log.info("records.task_resolved", task_id=task_id, decision=decision)
    return result


def _lift_provisional_shield(conn: Connection, contactpoint_id: str, *, now: dt.datetime) -> None:
    """Lift a provisional shield once no open task pairs the child with a shielded child."""
    for task in review_repo.open_tasks_of(conn, contactpoint_id):
        other = child_repo.child(
            conn, task.candidate if task.new_child == contactpoint_id else task.new_child
        )
        if other is not None and other.shown_shielded:
            return
    child_repo.set_shielding(conn, contactpoint_id, provisional=False, now=now)


# --- merges -------------------------------------------------------------------------------------


def merge(
    conn: Connection,
    *,
    manager: Manager,
    survivor_id: str,
    retired_id: str,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> child_pb2.Child:
    """Merge two children of the manager's organisation: the retired id reads as the survivor."""
    violations = _id("survivor_id", survivor_id) + _id("retired_id", retired_id) + _reason(reason)
    if not violations and survivor_id == retired_id:
        violations.append(FieldViolation("retired_id", "must differ from survivor_id"))
    _check(violations)
    retired = child_repo.child(conn, retired_id)
    if retired is not None and retired.status == MERGED and retired.merged_into == survivor_id:
        survivor = _active(conn, survivor_id, manager)  # a retry: the same answer
    else:
        for cid in sorted((survivor_id, retired_id)):
            _active(conn, cid, manager)
        _merge(
            conn,
            manager=manager,
            survivor_id=survivor_id,
            retired_id=retired_id,
            reason=reason,
            limits=limits,
            now=now,
        )
        survivor = _active(conn, survivor_id, manager)
    child = composed(conn, survivor, limits=limits, today=now.date(), visible_only=False)
    if child is None:
        raise NotFound("the merged child has no active source record")
    return child


def _merge(
    conn: Connection,
    *,
    manager: Manager,
    survivor_id: str,
    retired_id: str,
    reason: str,
    limits: AgeLimits,
    now: dt.datetime,
) -> None:
    rows = {cid: child_repo.child(conn, cid, lock=True) for cid in sorted((survivor_id, retired_id))}
    survivor, retired = rows[survivor_id], rows[retired_id]
    if survivor is None or retired is None or survivor.status != ACTIVE or retired.status != ACTIVE:
        raise FailedPrecondition("both children must be active to merge", "NOT_ACTIVE")
    moved = [s.id for s in source_repo.all_sources(conn, retired_id)]
    review_repo.insert_merge(
        conn,
        review_repo.NewMerge(
            uuid.uuid4().hex,
            survivor_id,
            retired_id,
            moved,
            survivor.shielded,
            retired.shielded,
            manager.name,
            reason,
        ),
        now=now,
    )
    source_repo.move_sources(conn, moved, to=survivor_id, now=now)
    child_repo.retire(conn, retired_id, into=survivor_id, now=now)
    # Fail safe: if either was shielded, the one child now is.
    child_repo.set_shielding(conn, survivor_id, shielded=survivor.shielded or retired.shielded, now=now)
    review_repo.close_tasks_between(
        conn,
        survivor_id,
        retired_id,
        manager=manager.name,
        reason=reason,
        result_id=survivor_id,
        decision=LINK,
        now=now,
    )
    _refresh_archive_date(conn, survivor_id, limits=limits, now=now)
    log.info("records.merged", survivor_id=survivor_id, retired_id=retired_id, sources=len(moved))


def unmerge(
    conn: Connection,
    *,
    manager: Manager,
    retired_id: str,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> None:
    """Undo the merge that retired `retired_id`: both children as before it, and the pair kept
    apart for ever. Records submitted to the survivor since the merge stay with it."""
    _check(_id("retired_id", retired_id) + _reason(reason))
    merge_row = review_repo.live_merge_of(conn, retired_id)
    if merge_row is None:
        raise NotFound("no merge of this child to undo")
    holder = resolve(conn, merge_row.survivor_id)
    if holder is None or not _held(conn, manager, holder.contactpoint_id):
        raise NotFound("no merge of this child to undo")
    survivor = child_repo.child(conn, merge_row.survivor_id, lock=True)
    assert survivor is not None
    holders = {merge_row.survivor_id, holder.contactpoint_id}
    source_repo.move_sources(conn, merge_row.moved_sources, to=retired_id, now=now)
    child_repo.reinstate(conn, retired_id, shielded=merge_row.retired_shielded, now=now)
    if survivor.shielded and not merge_row.survivor_shielded and merge_row.retired_shielded:
        # The survivor was shielded only because of the merge.
        child_repo.set_shielding(conn, merge_row.survivor_id, shielded=False, now=now)
    review_repo.undo_merge(conn, merge_row.merge_id, manager=manager.name, reason=reason, now=now)
    review_repo.keep_apart(
        conn, merge_row.survivor_id, retired_id, manager=manager.name, reason=reason, now=now
    )
    for cid in sorted(holders | {retired_id}):
        _refresh_archive_date(conn, cid, limits=limits, now=now)
    log.info("records.unmerged", survivor_id=merge_row.survivor_id, retired_id=retired_id)


def _refresh_archive_date(
    conn: Connection, contactpoint_id: str, *, limits: AgeLimits, now: dt.datetime
) -> None:
    sources = in_order(source_repo.active_sources(conn, [contactpoint_id]))
    child_repo.touch(conn, contactpoint_id, now=now, archive_on=archive_date(sources, limits))


# --- shielding ----------------------------------------------------------------------------------


def set_shielded(
    conn: Connection, *, manager: Manager, contactpoint_id: str, shielded: bool, reason: str, now: dt.datetime
) -> str:
    """Shield or unshield a child (a retired id acts on its survivor); the child's id."""
    _check(_id("contactpoint_id", contactpoint_id) + _reason(reason))
    current = resolve(conn, contactpoint_id)
    if current is None:
        raise NotFound("no child with this ContactPoint ID is managed by your organisation")
    row = _active(conn, current.contactpoint_id, manager)
    # Unshielding is a data manager's decision: it lifts a provisional shield too.
    child_repo.set_shielding(
        conn, row.contactpoint_id, shielded=shielded, provisional=None if shielded else False, now=now
    )
    if shielded:
        # Possible matches of a newly shielded child are shown shielded until decided.
        for task in review_repo.open_tasks_of(conn, row.contactpoint_id):
            if task.candidate == row.contactpoint_id:
                child_repo.set_shielding(conn, task.new_child, provisional=True, now=now)
    log.info("records.shielding_set", contactpoint_id=row.contactpoint_id, shielded=shielded)
    return row.contactpoint_id
