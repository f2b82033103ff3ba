"""Review tasks: what data managers are asked to decide (kept-apart pairs: `kept_apart`; merges:
`merges`)."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from contactpoint.platform.db import dialect_of
from services.records.repository.rows import ReviewTaskRow, SourceKey
from services.records.tables import ACTIVE, children, review_tasks, source_records

OPEN = "open"
RESOLVED = "resolved"
OBSOLETE = "OBSOLETE"  # the decision on a task whose children were merged, archived or withdrawn
OVERTAKEN = "overtaken by events"  # a child archived, or every record of it withdrawn
CARRIED = "carried by a merge or an unmerge"  # raised again, naming the child that holds its side now
# Raised for other children than the open task about the same two (kept for an unmerge to share out).
WAITING = "waits on another task about the same two children"


@dataclass(frozen=True, slots=True)
class NewTask:
    """A possible match to put before a data manager."""

    task_id: str
    new_child: str
    candidate: str
    score: float
    reasons: Sequence[str]
    # The child each side was raised for (None: the child it names), and when it was raised: a
    # merge carries a task on to a survivor with both.
    new_child_was: str | None = None
    candidate_was: str | None = None
    raised_at: dt.datetime | None = None
    # The source record each side was matched through, if known: its child may hold it only
    # because of a merge (`task_carrying.raised_for_records`).
    new_child_record: SourceKey | None = None
    candidate_record: SourceKey | None = None


def insert_tasks(conn: Connection, tasks: Sequence[NewTask], *, now: dt.datetime) -> None:
    """Raise review tasks."""
    if tasks:
        conn.execute(insert(review_tasks), [{**_task_row(t, now), "status": OPEN} for t in tasks])


def insert_waiting(conn: Connection, tasks: Sequence[NewTask], *, now: dt.datetime) -> None:
    """Keep tasks that an open task about the same two children stands for, raised for other
    children than it (ended as WAITING: never offered; `task_carrying.follow_unmerge` reads them)."""
    if tasks:
        ended = _resolved(OBSOLETE, "", WAITING, "", now)
        conn.execute(insert(review_tasks), [{**_task_row(t, now), **ended} for t in tasks])


def _task_row(t: NewTask, now: dt.datetime) -> dict[str, object]:
    return {
        "task_id": t.task_id,
        "new_child": t.new_child,
        "candidate": t.candidate,
        "score": t.score,
        "reasons": list(t.reasons),
        "new_child_was": t.new_child_was or t.new_child,
        "candidate_was": t.candidate_was or t.candidate,
        "created_at": t.raised_at or now,
    }


def _held_by_org(child: ColumnElement[str], organisation: str) -> Exists:
    return exists().where(
        source_records.c.contactpoint_id == child,
        source_records.c.organisation == organisation,
        source_records.c.withdrawn.is_(False),
    )


def _decided_by(organisation: str) -> ColumnElement[bool]:
    """Tasks the organisation decides (`review._decides`): it holds the candidate, and the new
    child too unless no organisation holds both."""
    a, b = source_records.alias("held_a"), source_records.alias("held_b")
    someone_holds_both = exists().where(
        a.c.contactpoint_id == review_tasks.c.new_child,
        a.c.withdrawn.is_(False),
        b.c.contactpoint_id == review_tasks.c.candidate,
        b.c.withdrawn.is_(False),
        b.c.organisation == a.c.organisation,
    )
    return and_(
        _held_by_org(review_tasks.c.candidate, organisation),
        or_(_held_by_org(review_tasks.c.new_child, organisation), ~someone_holds_both),
    )


def next_open_task(
    conn: Connection, *, organisation: str, manager: str, now: dt.datetime
) -> ReviewTaskRow | None:
    """The oldest open task `organisation` decides (`_decided_by`), that no other data manager
    is holding (one already held by `manager` first), row-locked; others' locked rows are skipped.

    Two walks of an index in queue order, each stopping at its first task: the manager's own,
    then the free ones. (One query ordered by "held by this manager" first sorted every open
    task, and on PostgreSQL, where a comparison with no holder sorts before true, handed a
    manager who asked again a second task instead of the one they held.)"""
    _serialise_manager(conn, manager)
    mine = _first_open(conn, organisation, review_tasks.c.held_by == manager)
    if mine is not None:
        return mine
    free = or_(review_tasks.c.held_by.is_(None), review_tasks.c.held_until <= now)
    return _first_open(conn, organisation, free)


# One data manager's asks for a task go one at a time: advisory locks under a class id of their
# own, apart from the blocking keys' (`candidates.LOCK_CLASS`).
MANAGER_LOCK_CLASS = 0x434D  # "CM"
_LOCK_MANAGER = text("SELECT pg_advisory_xact_lock(CAST(:c AS integer), CAST(:k AS integer))")


def _serialise_manager(conn: Connection, manager: str) -> None:
    """Hold a lock on the manager until commit: two asks at once (a client retrying after a
    timeout, or asking two replicas) would each see no task held by them yet, and hold two (found
    by probing, on two records replicas and on one). The second now waits, then finds the first's
    task. SQLite needs nothing: its writers hold the one database lock."""
    if dialect_of(conn) != "postgresql":
        return
    key = zlib.crc32(manager.encode()) - (1 << 31)  # a signed 32-bit integer
    conn.execute(_LOCK_MANAGER, {"c": MANAGER_LOCK_CLASS, "k": key})


def _first_open(conn: Connection, organisation: str, which: ColumnElement[bool]) -> ReviewTaskRow | None:
    query = (
        select(review_tasks)
        .where(
            review_tasks.c.status == OPEN,
            which,
            # Never the one whose new record raised the task alone (`review._decides`).
            _decided_by(organisation),
        )
        .order_by(review_tasks.c.created_at, review_tasks.c.task_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = conn.execute(query).first()
    return ReviewTaskRow.of(row) if row is not None else None


def task(conn: Connection, task_id: str, *, lock: bool = False) -> ReviewTaskRow | None:
    """One task."""
    query = select(review_tasks).where(review_tasks.c.task_id == task_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return ReviewTaskRow.of(row) if row is not None else None


def hold_task(conn: Connection, task_id: str, *, manager: str, until: dt.datetime) -> None:
    """Hold a task for one data manager."""
    conn.execute(
        update(review_tasks)
        .where(review_tasks.c.task_id == task_id)
        .values(held_by=manager, held_until=until)
    )


def resolve_task(
    conn: Connection,
    task_id: str,
    *,
    decision: str,
    manager: str,
    reason: str,
    result_id: str,
    now: dt.datetime,
) -> None:
    """Record a data manager's decision on a task."""
    _resolve(conn, review_tasks.c.task_id == task_id, decision, manager, reason, result_id, now)


def _resolved(
    decision: str, manager: str, reason: str, result_id: str, now: dt.datetime
) -> dict[str, object]:
    return {
        "status": RESOLVED,
        "decision": decision,
        "decided_by": manager,
        "decision_reason": reason,
        "result_id": result_id,
        "resolved_at": now,
        "held_by": None,
        "held_until": None,
    }


def _resolve(
    conn: Connection,
    which: ColumnElement[bool],
    decision: str,
    manager: str,
    reason: str,
    result_id: str,
    now: dt.datetime,
) -> None:
    conn.execute(
        update(review_tasks).where(which).values(_resolved(decision, manager, reason, result_id, now))
    )


def open_tasks_of(conn: Connection, contactpoint_id: str) -> list[ReviewTaskRow]:
    """Open tasks that name a child on either side."""
    query = select(review_tasks).where(
        review_tasks.c.status == OPEN,
        or_(review_tasks.c.new_child == contactpoint_id, review_tasks.c.candidate == contactpoint_id),
    )
    return [ReviewTaskRow.of(r) for r in conn.execute(query).all()]


def _between(a: str, b: str) -> ColumnElement[bool]:
    return or_(
        and_(review_tasks.c.new_child == a, review_tasks.c.candidate == b),
        and_(review_tasks.c.new_child == b, review_tasks.c.candidate == a),
    )


def open_task_between(conn: Connection, a: str, b: str) -> bool:
    """Whether an open task pairs these two children, whichever way round."""
    return open_task_of_pair(conn, a, b) is not None


def open_task_of_pair(conn: Connection, a: str, b: str) -> ReviewTaskRow | None:
    """The open task pairing these two children, whichever way round."""
    row = conn.execute(select(review_tasks).where(review_tasks.c.status == OPEN, _between(a, b))).first()
    return ReviewTaskRow.of(row) if row is not None else None


def waiting_since(conn: Connection, contactpoint_id: str, since: dt.datetime) -> list[ReviewTaskRow]:
    """Tasks naming the child kept as WAITING (`insert_waiting`) at or after `since`."""
    t = review_tasks.c
    names = or_(t.new_child == contactpoint_id, t.candidate == contactpoint_id)
    query = select(review_tasks).where(
        t.status == RESOLVED, t.decision_reason == WAITING, t.resolved_at >= since, names
    )
    return [ReviewTaskRow.of(r) for r in conn.execute(query).all()]


def close_open_tasks_of(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> list[tuple[str, str]]:
    """Close every open task naming any of `ids` as overtaken by events (OBSOLETE), in one
    statement (a decision committed meanwhile stands); each closed task's (new child, candidate)."""
    if not ids:
        return []
    names = or_(review_tasks.c.new_child.in_(sorted(ids)), review_tasks.c.candidate.in_(sorted(ids)))
    closed = conn.execute(
        update(review_tasks)
        .where(review_tasks.c.status == OPEN, names)
        .values(_resolved(OBSOLETE, "", OVERTAKEN, "", now))
        .returning(review_tasks.c.new_child, review_tasks.c.candidate)
    ).all()
    return [(r.new_child, r.candidate) for r in closed]


def paired_with_shielded(conn: Connection, contactpoint_id: str) -> bool:
    """Whether an open task pairs the child with an active child shielded in its own right."""
    t, c = review_tasks.c, children.c
    other = or_(
        and_(t.new_child == contactpoint_id, c.contactpoint_id == t.candidate),
        and_(t.candidate == contactpoint_id, c.contactpoint_id == t.new_child),
    )
    query = select(exists().where(t.status == OPEN, other, c.status == ACTIVE, c.shielded.is_(True)))
    return bool(conn.execute(query).scalar())


def close_tasks(
    conn: Connection, task_ids: Collection[str], *, now: dt.datetime, reason: str = OVERTAKEN
) -> None:
    """Close these open tasks as overtaken by events (OBSOLETE), for `reason`."""
    if task_ids:
        which = and_(review_tasks.c.status == OPEN, review_tasks.c.task_id.in_(sorted(task_ids)))
        _resolve(conn, which, OBSOLETE, "", reason, "", now)


def close_tasks_between(
    conn: Connection,
    a: str,
    b: str,
    *,
    manager: str,
    reason: str,
    result_id: str,
    decision: str,
    now: dt.datetime,
) -> None:
    """Resolve every open task about the pair (a, b), whichever way round."""
    _resolve(
        conn, and_(review_tasks.c.status == OPEN, _between(a, b)), decision, manager, reason, result_id, now
    )


def open_task_count(conn: Connection) -> int:
    """How many review tasks wait for a data manager (the review queue's length)."""
    query = select(func.count()).select_from(review_tasks).where(review_tasks.c.status == OPEN)
    return int(conn.execute(query).scalar_one())
