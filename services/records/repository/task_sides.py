"""Which side of a review task a child stands on: a child shielded in its own right is the
candidate beside one that is not, so that only its own organisations decide the task and see it in
full (`review._decides`; `task_upkeep._shielded_as_candidate` when a task is raised)."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from services.records.repository.review import OPEN
from services.records.tables import children, review_tasks


def shielded_as_candidate(conn: Connection, contactpoint_id: str) -> int:
    """Turn the open tasks naming a child just shielded as their new child, beside a candidate not
    shielded in its own right, the other way round; any hold on them ends (another organisation
    now decides them). How many were turned. The shielded child is locked by the caller, as a
    decision on one of its tasks locks it before the task."""
    t = review_tasks.c
    unshielded = select(children.c.contactpoint_id).where(children.c.shielded.is_(False))
    turned = conn.execute(
        update(review_tasks)
        .where(t.status == OPEN, t.new_child == contactpoint_id, t.candidate.in_(unshielded))
        .values(
            new_child=t.candidate,
            candidate=t.new_child,
            new_child_was=t.candidate_was,
            candidate_was=t.new_child_was,
            held_by=None,
            held_until=None,
        )
    )
    return int(turned.rowcount or 0)
