"""What data managers do (CONTRACT §4 "Data managers"): review possible matches one task at a
time, merge and unmerge children, shield and unshield. Each acts only on children that have an
active source record from the data manager's own organisation, a review task on its candidate
(the child the new record may be, whose organisation decides); anything else is NotFound."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.disclosure import disclose
from contactpoint.platform.errors import FailedPrecondition, FieldViolation, NotFound
from contactpoint.platform.logging import get_logger
from services.records import task_upkeep
from services.records.children import composed, resolve
from services.records.merging import merge_children
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository import children as child_repo
from services.records.repository import holdings
from services.records.repository import kept_apart as kept_apart_repo
from services.records.repository import review as review_repo
from services.records.repository.review import OBSOLETE, OVERTAKEN
from services.records.repository.rows import ReviewTaskRow
from services.records.stewardship import (
    KEEP_APART,
    LINK,
    Manager,
    check,
    is_task_id,
    live,
    reason_violations,
)
from services.records.tables import ACTIVE
from services.records.values import day_in_england

log = get_logger(__name__)

HOLD = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class TaskView:
    """A review task as a data manager sees it."""

    task_id: str
    new_child: child_pb2.Child
    candidate: child_pb2.Child
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    """A decided task: the child that remains, and every child the task concerned (the two it
    named, and what they had been merged into since)."""

    contactpoint_id: str
    children: tuple[str, ...]
    retry: bool = False  # the same data manager's decision again: nothing changed


# --- review tasks -------------------------------------------------------------------------------


def next_task(
    conn: Connection, *, manager: Manager, limits: AgeLimits = DEFAULT_LIMITS, now: dt.datetime
) -> TaskView:
    """The oldest waiting task whose candidate is a child of the manager's organisation (the new
    child may be another organisation's: `resolve_task`), held for them for 10
    minutes. Tasks overtaken by events (a child merged, archived or withdrawn, or the pair kept
    apart meanwhile) are closed on the way. NotFound when none is waiting."""
    while True:
        row = review_repo.next_open_task(
            conn, organisation=manager.organisation, manager=manager.name, now=now
        )
        if row is None:
            raise NotFound("no review task is waiting")
        # A pair kept apart is never proposed again, whatever raised its task meanwhile (found by
        # probing: a record raised it as the decision was being made; `kept_apart.lock_pairs`
        # now serialises the two, and this stays as the queue's own guarantee).
        apart = task_upkeep.kept_apart(conn, row.new_child, row.candidate)
        view = None if apart else _view(conn, row, limits=limits, today=day_in_england(now))
        if view is None:
            review_repo.resolve_task(
                conn,
                row.task_id,
                decision=OBSOLETE,
                manager="",
                reason=OVERTAKEN,
                result_id="",
                now=now,
            )
            task_upkeep.lift_provisional_shields(conn, (row.new_child, row.candidate), now=now)
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
    # As the gateway shows them to a shield-override reader: sensitive services keep their dates only.
    return TaskView(
        row.task_id,
        disclose(new_child, may_override_shield=True),
        disclose(candidate_child, may_override_shield=True),
        row.score,
        row.reasons,
    )


def organisations_of(conn: Connection, contactpoint_id: str) -> set[str]:
    """The organisations a task's child is held by: as it is now (a child merged away, by its
    survivor), those of its active source records, or, when every one was withdrawn, those of
    its records (the task is then obsolete, which the data manager is told)."""
    current = resolve(conn, contactpoint_id)
    sources = holdings.source_organisations(conn, current.contactpoint_id if current else contactpoint_id)
    active = {org for org, withdrawn in sources if not withdrawn}
    return active or {org for org, _ in sources}


def _ours(conn: Connection, contactpoint_id: str, organisation: str) -> bool:
    """Whether a task's child is the organisation's (`organisations_of`)."""
    return organisation in organisations_of(conn, contactpoint_id)


def _decides(conn: Connection, row: ReviewTaskRow, organisation: str) -> bool:
    """Whether the organisation decides a task: it holds both children, or, when no organisation
    does, it holds the candidate (the child the new record may be). The organisation that sent the
    new record never decides alone: a record crafted to look like another council's child would
    otherwise show its sender that child, shielded or not, and let them join it. And a data
    manager acts on children of their own organisation: where one organisation holds both, no
    other is shown the child it does not hold (found by probing: a council holding only the
    candidate was handed the new child, another council's, address and all)."""
    candidate = organisations_of(conn, row.candidate)
    if organisation not in candidate:
        return False
    new_child = organisations_of(conn, row.new_child)
    return organisation in new_child or not candidate & new_child


def resolve_task(
    conn: Connection,
    *,
    manager: Manager,
    task_id: str,
    decision: str,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> Resolution:
    """LINK (the new child joins the candidate; the candidate's id remains) or KEEP_APART
    (remembered for ever; the new child's id is the answer). A retry of the same decision returns
    the same answer."""
    violations = [] if task_id.strip() else [FieldViolation("task_id", "is required")]
    if decision not in (LINK, KEEP_APART):
        violations.append(FieldViolation("decision", "must be LINK or KEEP_APART"))
    check(violations + reason_violations(reason, required=True))
    # An id this service never hands out is no task of anyone's: NOT_FOUND, as an unknown one is
    # (found by review: "no-such-task" was INVALID_ARGUMENT, only 32 hex digits NOT_FOUND).
    # The task's two children (and their other tasks' children) are locked before the task, in
    # id order, as a merge or a record's batch locks them before the tasks it changes (found by
    # probing: a decision and a merge of one of its children each held what the other wanted, a
    # deadlock in about half such races).
    peek = review_repo.task(conn, task_id) if is_task_id(task_id) else None
    if peek is not None:
        task_upkeep.lock_with_their_tasks(conn, (peek.new_child, peek.candidate))
    row = review_repo.task(conn, task_id, lock=True) if peek is not None else None
    if row is None or not _decides(conn, row, manager.organisation):
        raise NotFound("no such review task for your organisation")
    if row.status != review_repo.OPEN:
        if row.decision == decision and row.result_id and row.decided_by == manager.name:
            return Resolution(row.result_id, tuple(sorted({row.new_child, row.candidate})), retry=True)
        if row.decision == OBSOLETE:
            raise FailedPrecondition(
                "this task was overtaken by events (a child of it was merged, archived or withdrawn)",
                "TASK_OBSOLETE",
            )
        raise FailedPrecondition("this task was already decided", "TASK_ALREADY_RESOLVED")
    if row.held_by and row.held_by != manager.name and row.held_until and row.held_until > now:
        raise FailedPrecondition("another data manager holds this task", "TASK_HELD")
    if row.held_by != manager.name:
        # One task at a time, as the queue hands them out: a data manager decides a task they were
        # shown (found by probing: a task id read elsewhere was decided unseen). Their hold may
        # have lapsed, if no one took the task since.
        raise FailedPrecondition(
            "this task was not handed to you: ask NextReviewTask for it", "TASK_NOT_HANDED_OUT"
        )
    new, candidate = resolve(conn, row.new_child), resolve(conn, row.candidate)
    # A child whose archive date has come is gone, as it is from the queue and the gateway, before
    # the hourly lifecycle run archives it (found by probing: a task held before a death was
    # reported was then linked, merging a living child into one hidden as dead).
    if (
        new is None
        or candidate is None
        or not live(conn, new, limits=limits, now=now)
        or not live(conn, candidate, limits=limits, now=now)
    ):
        review_repo.resolve_task(
            conn, task_id, decision=OBSOLETE, manager=manager.name, reason=reason, result_id="", now=now
        )
        raise FailedPrecondition("a child of this task was archived or withdrawn meanwhile", "TASK_OBSOLETE")
    if (
        decision == LINK
        and new.contactpoint_id != candidate.contactpoint_id
        and task_upkeep.kept_apart(conn, new.contactpoint_id, candidate.contactpoint_id)
    ):
        # A merge since the task was handed out brought together children a data manager kept
        # apart: linking would undo that decision unseen (found by review). The queue offers such
        # a task no more (`next_task`).
        review_repo.resolve_task(
            conn, task_id, decision=OBSOLETE, manager=manager.name, reason=reason, result_id="", now=now
        )
        raise FailedPrecondition(
            "children of this task were kept apart by a data manager meanwhile", "TASK_OBSOLETE"
        )
    if decision == LINK:
        if new.contactpoint_id != candidate.contactpoint_id:
            merge_children(
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
        kept_apart_repo.keep_apart(
            conn, row.new_child, row.candidate, manager=manager.name, reason=reason, now=now
        )
        # The children the task was raised for, too, when a merge had carried it to a survivor:
        # an unmerge gives each side back to its child, and the decision must stay with them
        # (else the child put back could be proposed with the other child again).
        raised_for = (row.was(row.new_child), row.was(row.candidate))
        if raised_for != (row.new_child, row.candidate) and raised_for[0] != raised_for[1]:
            kept_apart_repo.keep_apart(conn, *raised_for, manager=manager.name, reason=reason, now=now)
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
    review_repo.resolve_task(
        conn, task_id, decision=decision, manager=manager.name, reason=reason, result_id=result, now=now
    )
    # Either child may have been shown shielded only for this pair; after a merge, the survivor
    # is shielded if either was.
    task_upkeep.lift_provisional_shields(conn, (row.new_child, row.candidate), now=now)
    log.info("records.task_resolved", task_id=task_id, decision=decision)
    concerned = {row.new_child, row.candidate, new.contactpoint_id, candidate.contactpoint_id}
    return Resolution(result, tuple(sorted(concerned)))
