"""Review tasks kept true as their children change, and the shields they cause.

A child an open task pairs with a shielded child is shown shielded until the task ends (the
original ContactPoint's leak was an unshielded copy of a shielded child). So: a task raised, or a
child shielded, shields the other side of each of its open tasks (`pair_shields`); a task ending,
however it ends, lifts what only it caused (`lift_provisional_shields`); a child merged away hands
its open tasks to its survivor (`follow_merge`); a child archived, or with every record withdrawn,
ends its open tasks as overtaken by events (`close_tasks_of`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from sqlalchemy import Connection

from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository.rows import ReviewTaskRow
from services.records.tables import ACTIVE


def pair_shields(
    conn: Connection, tasks: Iterable[ReviewTaskRow | review_repo.NewTask], *, now: dt.datetime
) -> None:
    """For each task whose one child is shown shielded, show the other shielded too."""
    pairs = [(t.new_child, t.candidate) for t in tasks]
    rows = child_repo.children_by_id(conn, {c for pair in pairs for c in pair})
    for a_id, b_id in pairs:
        a, b = rows.get(a_id), rows.get(b_id)
        if a is None or b is None or a.status != ACTIVE or b.status != ACTIVE:
            continue
        if a.shown_shielded != b.shown_shielded:
            hidden = b if a.shown_shielded else a
            child_repo.set_shielding(conn, hidden.contactpoint_id, provisional=True, now=now)
            rows[hidden.contactpoint_id] = child_repo.child(conn, hidden.contactpoint_id) or hidden


def lift_provisional_shields(conn: Connection, ids: Iterable[str], *, now: dt.datetime) -> None:
    """Lift each child's provisional shield once no open task pairs it with a shielded child.
    Only a child shielded in its own right keeps another's shield up: two children shown shielded
    for each other alone would otherwise stay so for ever."""
    for contactpoint_id in ids:
        row = child_repo.child(conn, contactpoint_id)
        if row is None or not row.provisional_shield or _paired_with_shielded(conn, contactpoint_id):
            continue
        child_repo.set_shielding(conn, contactpoint_id, provisional=False, now=now)


def _paired_with_shielded(conn: Connection, contactpoint_id: str) -> bool:
    for task in review_repo.open_tasks_of(conn, contactpoint_id):
        other_id = task.candidate if task.new_child == contactpoint_id else task.new_child
        other = child_repo.child(conn, other_id)
        if other is not None and other.status == ACTIVE and other.shielded:
            return True
    return False


def close_tasks_of(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> None:
    """End the open tasks of children that left the registry's view (archived, or every record
    withdrawn), and lift the shields only they caused."""
    tasks = review_repo.close_open_tasks_of(conn, ids, now=now)
    lift_provisional_shields(conn, sorted({c for t in tasks for c in (t.new_child, t.candidate)}), now=now)


def follow_merge(conn: Connection, *, retired: str, survivor: str, now: dt.datetime) -> None:
    """A merged child's open tasks name its survivor from now on (a task between the two was
    closed by the merge), shielding as the survivor now is."""
    review_repo.repoint_open_tasks(conn, retired, survivor)
    pair_shields(conn, review_repo.open_tasks_of(conn, survivor), now=now)
