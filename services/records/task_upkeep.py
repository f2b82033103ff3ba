"""Review tasks kept true as their children change, and the shields they cause.

A child an open task pairs with a shielded child is shown shielded until the task ends (the
original ContactPoint's leak was an unshielded copy of a shielded child). So: a task raised, or a
child shielded, shields the other side of each of its open tasks (`pair_shields`); a task ending,
however it ends, lifts what only it caused (`lift_provisional_shields`); a child merged away hands
its open tasks to its survivor (`follow_merge`); a child archived, or with every record withdrawn,
ends its open tasks as overtaken by events (`close_tasks_of`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository.rows import ReviewTaskRow
from services.records.tables import ACTIVE

UNMERGED = "rule: the child was put back by an unmerge (review again)"


def kept_apart(conn: Connection, a: str, b: str) -> bool:
    """Whether a data manager kept two children apart, or any child merged into one of them from
    any merged into the other: a pair kept apart stays apart through later merges."""
    if review_repo.are_kept_apart(conn, a, b):
        return True
    family_a, family_b = child_repo.merged_family(conn, a), child_repo.merged_family(conn, b)
    if len(family_a) == len(family_b) == 1:
        return False
    apart = review_repo.kept_apart_from(conn, family_a)
    return any(not ids.isdisjoint(family_b) for ids in apart.values())


def pair_shields(
    conn: Connection, tasks: Iterable[ReviewTaskRow | review_repo.NewTask], *, now: dt.datetime
) -> None:
    """For each task whose one child is shown shielded, show the other shielded too. The children
    are share-locked, so a shield given meanwhile waits for this transaction and then sees its
    tasks."""
    pairs = [(t.new_child, t.candidate) for t in tasks]
    if not pairs:
        return
    rows = child_repo.children_by_id(conn, {c for pair in pairs for c in pair}, share_lock=True)
    for a_id, b_id in pairs:
        a, b = rows.get(a_id), rows.get(b_id)
        if a is None or b is None or a.status != ACTIVE or b.status != ACTIVE:
            continue
        if a.shown_shielded != b.shown_shielded:
            hidden = b if a.shown_shielded else a
            child_repo.set_shielding(conn, hidden.contactpoint_id, provisional=True, now=now)
            rows[hidden.contactpoint_id] = replace(hidden, provisional_shield=True)


def lift_provisional_shields(conn: Connection, ids: Iterable[str], *, now: dt.datetime) -> None:
    """Lift each child's provisional shield once no open task pairs it with a shielded child.
    Only a child shielded in its own right keeps another's shield up: two children shown shielded
    for each other alone would otherwise stay so for ever."""
    for contactpoint_id in ids:
        row = child_repo.child(conn, contactpoint_id)
        if row is None or not row.provisional_shield:
            continue
        if not review_repo.paired_with_shielded(conn, contactpoint_id):
            child_repo.set_shielding(conn, contactpoint_id, provisional=False, now=now)


def recheck(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> None:
    """After a child's own shield changed (unshielded, or a merge undone): its open tasks shield
    the other side, or itself, as they now should, and lift what they no longer should."""
    tasks = [t for cid in sorted(ids) for t in review_repo.open_tasks_of(conn, cid)]
    pair_shields(conn, tasks, now=now)
    lift_provisional_shields(
        conn, sorted({*ids, *(c for t in tasks for c in (t.new_child, t.candidate))}), now=now
    )


def close_tasks_of(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> None:
    """End the open tasks of children that left the registry's view (archived, or every record
    withdrawn), and lift the shields only they caused."""
    closed = review_repo.close_open_tasks_of(conn, ids, now=now)
    lift_provisional_shields(conn, sorted({c for pair in closed for c in pair}), now=now)


def close_overtaken(conn: Connection, *, now: dt.datetime) -> int:
    """The sweep behind the events above (a task raised against a child merged or withdrawn while
    the batch that raised it was deciding): how many children's tasks it ended."""
    ids = review_repo.overtaken_children(conn)
    close_tasks_of(conn, ids, now=now)
    return len(ids)


def raise_pairs(conn: Connection, tasks: Iterable[review_repo.NewTask], *, now: dt.datetime) -> int:
    """Raise these tasks, one a pair, leaving out pairs a data manager kept apart or that a task
    already waits on, each child shown shielded while the other is; how many were raised."""
    raised: list[review_repo.NewTask] = []
    seen: set[frozenset[str]] = set()
    for task in tasks:
        pair = frozenset((task.new_child, task.candidate))
        if len(pair) < 2 or pair in seen:
            continue
        seen.add(pair)
        if kept_apart(conn, task.new_child, task.candidate):
            continue
        if review_repo.open_task_between(conn, task.new_child, task.candidate):
            continue
        raised.append(task)
    review_repo.insert_tasks(conn, raised, now=now)
    pair_shields(conn, raised, now=now)
    return len(raised)


def reopen_overtaken(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> None:
    """Children back in view (a withdrawn record sent again): the tasks that ended when they left
    are raised again, where the other child is still active."""
    tasks: list[review_repo.NewTask] = []
    for cid in sorted(ids):
        for task in review_repo.overtaken_tasks_of(conn, cid):
            other = child_repo.child(conn, task.other(cid))
            if other is not None and other.status == ACTIVE:
                tasks.append(
                    review_repo.NewTask(
                        RANDOM.hex_id(),
                        task.new_child,
                        task.candidate,
                        task.score,
                        task.reasons,
                        new_child_was=task.new_child_was,
                        candidate_was=task.candidate_was,
                        raised_at=task.created_at,
                    )
                )
    raise_pairs(conn, tasks, now=now)


def follow_unmerge(
    conn: Connection,
    *,
    retired: str,
    holders: Sequence[str],
    merged_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """A merge undone: `retired` is back, and `holders` held its records since `merged_at` (the
    merge's survivor, and each child that was merged into since; the last holds them now). Each
    of the holder's open tasks whose side the merge carried from the child put back (or from a
    child merged into it) goes back to it alone. A task the holder's side was raised for stays
    the holder's alone, unless the child put back's records may have raised it too: raised while
    they were held (or before the column that says which side was carried existed), or a pair the
    child put back had before the merge as well (one task stood for both). Both children are
    then shielded as their tasks now say."""
    holder = holders[-1]
    family = child_repo.merged_family(conn, retired)
    had = {
        task.other(cid)
        for task in review_repo.ended_as_overtaken_since(conn, family, merged_at)
        for cid in family
        if cid in (task.new_child, task.candidate)
    }
    back: list[review_repo.NewTask] = []
    both: list[review_repo.NewTask] = []
    moved: list[str] = []
    for task in review_repo.open_tasks_of(conn, holder):
        was = task.was(holder)
        if was in family:
            moved.append(task.task_id)
            back.append(_naming(task, holder, instead=retired, was=was))
        elif was in holders and (
            task.created_at >= merged_at or had & child_repo.merged_family(conn, task.other(holder))
        ):
            both.append(
                _naming(task, holder, instead=retired, was=retired, reasons=(*task.reasons, UNMERGED))
            )
    review_repo.close_tasks(conn, moved, now=now)
    raise_pairs(conn, back + both, now=now)
    recheck(
        conn,
        [holder, retired, *(t.new_child if t.candidate == retired else t.candidate for t in back)],
        now=now,
    )


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


def follow_merge(conn: Connection, *, retired: str, survivor: str, now: dt.datetime) -> None:
    """A merged child's open tasks end, and each is raised again, under a new id, naming its
    survivor (a task between the two was closed by the merge), shielding as the survivor now is:
    a data manager holding one of them is told it was overtaken rather than deciding a pair they
    were never shown. A pair the survivor already has a task about, or is kept apart from (it or
    any child merged into either), is not raised again: a pair kept apart is never proposed
    again."""
    tasks = review_repo.open_tasks_of(conn, retired)
    review_repo.close_tasks(conn, [t.task_id for t in tasks], now=now)
    carried = [_naming(t, retired, instead=survivor, was=t.was(retired)) for t in tasks]
    raise_pairs(conn, carried, now=now)
    pair_shields(conn, review_repo.open_tasks_of(conn, survivor), now=now)
    lift_provisional_shields(conn, sorted({*(t.other(retired) for t in tasks), survivor}), now=now)
