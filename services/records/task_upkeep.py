"""Review tasks kept true as their children change, and the shields they cause.

A child an open task pairs with a shielded child is shown shielded until the task ends (the
original ContactPoint's leak was an unshielded copy of a shielded child). So: a task raised, or a
child shielded, shields the other side of each of its open tasks (`pair_shields`); a task ending,
however it ends, lifts what only it caused (`lift_provisional_shields`); a child archived, or with
every record withdrawn, ends its open tasks as overtaken by events (`close_tasks_of`). Tasks carried
through merges and unmerges, and raised again when a child comes back in view: `task_carrying`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import replace

from sqlalchemy import Connection

from services.records.repository import children as child_repo
from services.records.repository import kept_apart as kept_apart_repo
from services.records.repository import overtaken
from services.records.repository import review as review_repo
from services.records.repository.rows import ReviewTaskRow
from services.records.tables import ACTIVE


def kept_apart(conn: Connection, a: str, b: str) -> bool:
    """Whether a data manager kept two children apart, or any child merged into one of them from
    any merged into the other: a pair kept apart stays apart through later merges."""
    if kept_apart_repo.are_kept_apart(conn, a, b):
        return True
    family_a, family_b = child_repo.merged_family(conn, a), child_repo.merged_family(conn, b)
    if len(family_a) == len(family_b) == 1:
        return False
    apart = kept_apart_repo.kept_apart_from(conn, family_a)
    return any(not ids.isdisjoint(family_b) for ids in apart.values())


def pair_shields(
    conn: Connection, tasks: Iterable[ReviewTaskRow | review_repo.NewTask], *, now: dt.datetime
) -> None:
    """For each task whose one child is shielded in its own right, show the other shielded too
    (as `lift_provisional_shields` keeps it: a child shown shielded only for another's sake passes
    nothing on, found by re-probing: the shield spread through a chain of look-alikes and stayed
    after its cause was decided). The children are share-locked, so a shield given meanwhile waits
    for this transaction and then sees its tasks."""
    pairs = [(t.new_child, t.candidate) for t in tasks]
    if not pairs:
        return
    rows = child_repo.children_by_id(conn, {c for pair in pairs for c in pair}, share_lock=True)
    for a_id, b_id in pairs:
        a, b = rows.get(a_id), rows.get(b_id)
        if a is None or b is None or a.status != ACTIVE or b.status != ACTIVE:
            continue
        if a.shielded != b.shielded:
            hidden = b if a.shielded else a
            if not hidden.shown_shielded:
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


def _raised_for(task: review_repo.NewTask) -> tuple[tuple[str, str | None], ...]:
    return ((task.new_child, task.new_child_was), (task.candidate, task.candidate_was))


def close_tasks_of(conn: Connection, ids: Collection[str], *, now: dt.datetime) -> None:
    """End the open tasks of children that left the registry's view (archived, or every record
    withdrawn), and lift the shields only they caused."""
    closed = review_repo.close_open_tasks_of(conn, ids, now=now)
    lift_provisional_shields(conn, sorted({c for pair in closed for c in pair}), now=now)


def close_overtaken(conn: Connection, *, now: dt.datetime) -> int:
    """The sweep behind the events above (a task raised against a child merged or withdrawn while
    the batch that raised it was deciding): how many children's tasks it ended."""
    ids = overtaken.overtaken_children(conn)
    close_tasks_of(conn, ids, now=now)
    return len(ids)


def _shielded_as_candidate(conn: Connection, tasks: list[review_repo.NewTask]) -> list[review_repo.NewTask]:
    # A task's candidate's organisations decide it, shown both children in full: a child shielded
    # in its own right is the candidate beside one that is not, so that only its own organisations
    # see it (found by re-probing: a task a merge carried on to a shielded survivor, as the new
    # child beside another organisation's child, showed that organisation the shielded child's
    # carers and let it merge the child away and lift its shield).
    rows = child_repo.children_by_id(conn, {c for t in tasks for c in (t.new_child, t.candidate)})
    out = []
    for task in tasks:
        new, candidate = rows.get(task.new_child), rows.get(task.candidate)
        if new is not None and candidate is not None and new.shielded and not candidate.shielded:
            task = replace(
                task,
                new_child=task.candidate,
                candidate=task.new_child,
                new_child_was=task.candidate_was,
                candidate_was=task.new_child_was,
                new_child_record=task.candidate_record,
                candidate_record=task.new_child_record,
            )
        out.append(task)
    return out


def lock_with_their_tasks(conn: Connection, ids: Collection[str]) -> None:
    """Lock these children, and every child an open task pairs one of them with, in one id order,
    before a data manager's change to them: the change goes on to those tasks' children (carrying,
    closing, shielding), and locking them one by one on the way, in its own order, deadlocked with
    a decision or merge locking the same set in another (found by re-probing)."""
    others = {t.other(cid) for cid in ids for t in review_repo.open_tasks_of(conn, cid)}
    child_repo.children_by_id(conn, set(ids) | others, update_lock=True)


def raise_pairs(conn: Connection, tasks: Iterable[review_repo.NewTask], *, now: dt.datetime) -> int:
    """Raise these tasks, one a pair, leaving out pairs a data manager kept apart or that a task
    already waits on, each child shown shielded while the other is; how many were raised. A task
    left out for one waiting, raised for other children than it, is kept as WAITING, so that an
    unmerge can give each child put back its own (found by probing: a child's own possible match
    dropped beside one a merge carried was lost when the merge was undone)."""
    raised: list[review_repo.NewTask] = []
    waiting: list[review_repo.NewTask] = []
    seen: set[frozenset[str]] = set()
    candidates = _shielded_as_candidate(conn, list(tasks))
    # Before each pair's kept-apart check: a decision on the pair under way is waited for.
    kept_apart_repo.lock_pairs(conn, [(t.new_child, t.candidate) for t in candidates])
    for task in candidates:
        pair = frozenset((task.new_child, task.candidate))
        if len(pair) < 2 or pair in seen:
            continue
        seen.add(pair)
        if kept_apart(conn, task.new_child, task.candidate):
            continue
        open_task = review_repo.open_task_of_pair(conn, task.new_child, task.candidate)
        if open_task is None:
            raised.append(task)
        elif any(open_task.was(child) != (was or child) for child, was in _raised_for(task)):
            waiting.append(task)
    review_repo.insert_tasks(conn, raised, now=now)
    review_repo.insert_waiting(conn, waiting, now=now)
    pair_shields(conn, raised, now=now)
    return len(raised)
