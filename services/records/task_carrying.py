"""Review tasks carried through merges and their undoing, and raised again when a child comes back
in view.

A task pairs two children, and each side remembers the child it named when the task was raised
(`ReviewTaskRow.was`). A merge carries the retired child's open tasks to its survivor; undoing it
gives back each side carried from the child put back (or from a child still merged into it), and
shares with it only what its records may have raised (found by probing: the child put back was
paired with every child its survivor was, so a data manager could be shown two children that
never resembled each other, one of them another organisation's). A child back in view gets back
the tasks that ended when it left, each side naming the child it was raised for again if a merge
that carried it has been undone since. A task a merge carries keeps its place in the queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM
from services.records.children import resolve
from services.records.evidence import task_records
from services.records.repository import children as child_repo
from services.records.repository import merges as merge_repo
from services.records.repository import overtaken
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import ReviewTaskRow, SourceKey
from services.records.tables import ACTIVE
from services.records.task_upkeep import lift_provisional_shields, pair_shields, raise_pairs, recheck

UNMERGED = "rule: the child was put back by an unmerge (review again)"


@dataclass(frozen=True, slots=True)
class Holding:
    """A child that held another's records because of a merge, and since when."""

    contactpoint_id: str
    since: dt.datetime


def follow_merge(conn: Connection, *, retired: str, survivor: str, now: dt.datetime) -> None:
    """A merged child's open tasks end, and each is raised again, under a new id, naming its
    survivor (a task between the two was closed by the merge), shielding as the survivor now is:
    a data manager holding one of them is told it was overtaken rather than deciding a pair they
    were never shown. A pair the survivor already has a task about, or is kept apart from (it or
    any child merged into either), is not raised again: a pair kept apart is never proposed
    again."""
    tasks = review_repo.open_tasks_of(conn, retired)
    review_repo.close_tasks(conn, [t.task_id for t in tasks], now=now, reason=review_repo.CARRIED)
    raise_pairs(conn, [_naming(t, retired, instead=survivor, was=t.was(retired)) for t in tasks], now=now)
    pair_shields(conn, review_repo.open_tasks_of(conn, survivor), now=now)
    lift_provisional_shields(conn, sorted({*(t.other(retired) for t in tasks), survivor}), now=now)


def follow_unmerge(conn: Connection, *, retired: str, holders: Sequence[Holding], now: dt.datetime) -> None:
    """A merge undone: `retired` is back, and `holders` held its records (the merge's survivor,
    then each child that was merged into since; the last holds them now). Each of the holder's
    open tasks whose side was raised for the child put back (or for a child still merged into
    it: carried by the merge, or matched through one of its records since) goes back to it, and
    stays the holder's too only if a task kept waiting beside it was raised for the holder's own;
    a task kept waiting that was raised for the child put back gives it the pair too.
    A side raised for one of the holders is shared with the child put back only when it had the
    pair too (it or a child merged into it, when merged: one task stood for both), or, for a task
    that does not say which child it was raised for (older than migration 0008), when it was
    raised while that holder held the records. Anything else stays the holder's alone. Both are
    then shielded as their tasks now say."""
    holder = holders[-1].contactpoint_id
    since = {h.contactpoint_id: h.since for h in holders}
    family = child_repo.merged_family(conn, retired)
    had: dict[str, str] = {}  # a child the family had a task with → the family's child that had it
    for task in overtaken.ended_as_overtaken_since(conn, family, holders[0].since):
        for cid in (task.new_child, task.candidate):
            paired = task.other(cid)
            # ...while its other side's child still reads as it did (found by probing).
            if cid in family and task.was(cid) in family and _same_now(conn, task.was(paired), paired):
                had.setdefault(paired, task.was(cid))
    # The children the holder's side of tasks kept WAITING beside an open one was raised for.
    # Each counts while the child its other side was raised for still reads as that side (found
    # by probing: one kept for a child unmerged since gave its pair to the holder again).
    waiting: dict[str, list[str]] = {}
    for kept in review_repo.waiting_since(conn, holder, holders[0].since):
        paired = kept.other(holder)
        if _same_now(conn, kept.was(paired), paired):
            waiting.setdefault(paired, []).append(kept.was(holder))
    back: list[review_repo.NewTask] = []
    moved: list[str] = []
    for task in review_repo.open_tasks_of(conn, holder):
        was, also = task.was(holder), waiting.get(task.other(holder), [])
        theirs = next((w for w in also if w in family), None)
        if was in family:
            moved.append(task.task_id)
            back.append(_naming(task, holder, instead=retired, was=was))
            own = next((w for w in also if w not in family and _same_now(conn, w, holder)), None)
            if own is not None:  # the holder had the pair itself too: it keeps its own
                back.append(_naming(task, holder, instead=holder, was=own))
        elif theirs is not None:
            back.append(_naming(task, holder, instead=retired, was=theirs))
        elif was in since:
            # Which child's records raised it is known, but for a task older than that knowledge.
            raised_while_held = not task.remembers(holder) and task.created_at >= since[was]
            other = child_repo.merged_family(conn, task.other(holder))
            shared = retired if raised_while_held else next((had[c] for c in sorted(other) if c in had), None)
            if shared is not None:
                reasons = (*task.reasons, UNMERGED)
                back.append(_naming(task, holder, instead=retired, was=shared, reasons=reasons))
    review_repo.close_tasks(conn, moved, now=now, reason=review_repo.CARRIED)
    raise_pairs(conn, back, now=now)
    recheck(
        conn,
        [holder, retired, *(t.new_child if t.candidate == retired else t.candidate for t in back)],
        now=now,
    )


def raised_for_records(conn: Connection, tasks: Sequence[review_repo.NewTask]) -> list[review_repo.NewTask]:
    """New tasks, each side matched through a record that a merge moved to its child raised for
    the child the record came from: undoing the merge gives the side to that child alone (found
    by probing: a possible match raised through the retired child's record while merged was
    given to both, and the survivor's data managers shown a child only the other resembled)."""
    holders = {side for t in tasks for side, record in task_records(t) if record is not None}
    origins = merge_repo.record_origins(conn, holders) if holders else {}
    if not origins:
        return list(tasks)
    keys = {record for t in tasks for _, record in task_records(t) if record is not None}
    ids = {key: row.id for key, row in source_repo.sources_by_key(conn, keys).items()}

    def was(side: str, record: SourceKey | None, known: str | None) -> str | None:
        found = origins.get((side, ids[record])) if record in ids else None
        return known or found

    return [
        replace(
            t,
            new_child_was=was(t.new_child, t.new_child_record, t.new_child_was),
            candidate_was=was(t.candidate, t.candidate_record, t.candidate_was),
        )
        for t in tasks
    ]


def reopen_overtaken(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> None:
    """Children back in view (a withdrawn record sent again): the tasks that ended when they left
    are raised again, where both children are active. A side a merge carried names the child it
    was raised for again if that merge has been undone since (found by probing: a task ended
    while carried came back to the survivor after the unmerge, shown to a data manager beside a
    child it never resembled)."""
    tasks: list[review_repo.NewTask] = []
    for cid in sorted(ids):
        for task in overtaken.overtaken_tasks_of(conn, cid):
            (new_child, new_was), (candidate, candidate_was) = (
                _now_naming(conn, task.new_child, task.new_child_was),
                _now_naming(conn, task.candidate, task.candidate_was),
            )
            rows = child_repo.children_by_id(conn, {new_child, candidate})
            if all(row.status == ACTIVE for row in rows.values()) and len(rows) == 2:
                tasks.append(
                    review_repo.NewTask(
                        RANDOM.hex_id(),
                        new_child,
                        candidate,
                        task.score,
                        task.reasons,
                        new_child_was=new_was,
                        candidate_was=candidate_was,
                        raised_at=task.created_at,
                    )
                )
    raise_pairs(conn, tasks, now=now)


def _same_now(conn: Connection, a: str, b: str) -> bool:
    # Whether two ids read as one child now.
    now_a, now_b = resolve(conn, a), resolve(conn, b)
    return now_a is not None and now_b is not None and now_a.contactpoint_id == now_b.contactpoint_id


def _now_naming(conn: Connection, side: str, was: str | None) -> tuple[str, str | None]:
    # The child a side names now, and the child it was raised for: the child the task was raised
    # for reads as a survivor now if it was merged meanwhile (found by re-probing: a task ended
    # while its other child was out of view was lost when this child was merged meanwhile), and
    # as itself again if a merge that carried the side was undone.
    raised_for = was or side
    now = resolve(conn, raised_for)
    if now is None:
        return side, was
    return now.contactpoint_id, (raised_for if raised_for != now.contactpoint_id else None)


def _naming(
    task: ReviewTaskRow,
    child: str,
    *,
    instead: str,
    was: str,
    reasons: tuple[str, ...] | None = None,
) -> review_repo.NewTask:
    # The same pair as `task`, under a new id and in its place in the queue, with `instead` where
    # it named `child`, that side raised for `was`; the other side as it was.
    new_side, candidate_side = task.new_child == child, task.candidate == child
    return review_repo.NewTask(
        RANDOM.hex_id(),
        instead if new_side else task.new_child,
        instead if candidate_side else task.candidate,
        task.score,
        task.reasons if reasons is None else reasons,
        new_child_was=was if new_side else task.new_child_was,
        candidate_was=was if candidate_side else task.candidate_was,
        raised_at=task.created_at,
    )
