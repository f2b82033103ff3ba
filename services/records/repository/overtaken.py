"""Review tasks overtaken by events: the children they name left the registry's view (merged,
archived, every record withdrawn), so they ended OBSOLETE; found again when a child comes back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import Connection, exists, or_, select

from services.records.repository.review import CARRIED, OBSOLETE, OPEN, OVERTAKEN, RESOLVED
from services.records.repository.rows import ReviewTaskRow
from services.records.tables import ACTIVE, children, review_tasks, source_records


def overtaken_tasks_of(conn: Connection, contactpoint_id: str) -> list[ReviewTaskRow]:
    """Tasks naming the child that ended as overtaken by events (OBSOLETE) when a child left the
    registry's view (not those a merge carried)."""
    t = review_tasks.c
    names = or_(t.new_child == contactpoint_id, t.candidate == contactpoint_id)
    query = select(review_tasks).where(
        t.status == RESOLVED, t.decision == OBSOLETE, t.decision_reason == OVERTAKEN, names
    )
    return [ReviewTaskRow.of(r) for r in conn.execute(query).all()]


def ended_as_overtaken_since(
    conn: Connection, ids: Collection[str], since: dt.datetime
) -> list[ReviewTaskRow]:
    """Tasks naming any of `ids` that ended as overtaken by events (OBSOLETE) at or after `since`
    (those a merge ended include the pairs it did not carry, as its survivor had a task on them)."""
    t = review_tasks.c
    names = or_(t.new_child.in_(sorted(ids)), t.candidate.in_(sorted(ids)))
    query = select(review_tasks).where(
        t.status == RESOLVED,
        t.decision == OBSOLETE,
        t.decision_reason.in_((OVERTAKEN, CARRIED)),
        t.resolved_at >= since,
        names,
    )
    return [ReviewTaskRow.of(r) for r in conn.execute(query).all()]


def overtaken_children(conn: Connection) -> list[str]:
    """Children named by an open task that are no longer active, or have no record left."""
    t, c, s = review_tasks.c, children.c, source_records.c
    named = (
        select(t.new_child.label("cid"))
        .where(t.status == OPEN)
        .union(select(t.candidate.label("cid")).where(t.status == OPEN))
        .subquery()
    )
    live = exists().where(s.contactpoint_id == named.c.cid, s.withdrawn.is_(False))
    active = exists().where(c.contactpoint_id == named.c.cid, c.status == ACTIVE)
    query = select(named.c.cid).where(or_(~active, ~live))
    return sorted(r.cid for r in conn.execute(query).all())
