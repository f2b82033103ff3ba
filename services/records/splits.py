"""Children split in two: a new record that links to one child but would have linked to another as
well says the two are likely one child held twice (each made before the records that join them
arrived). Matching cannot join them itself — merging children is a data manager's decision, and
about one pair in ten such pairs on simulated feeds is two children — so it raises a review task
pairing them (LINK merges the other child into the one the record joined; KEEP_APART is
remembered), and, failing safe, shows each shielded while the other is shielded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo


@dataclass(frozen=True, slots=True)
class Split:
    """A child (`other`) that a record joining `joined` would have joined too."""

    other: str
    joined: str
    score: float
    reasons: tuple[str, ...]


def raise_tasks(conn: Connection, splits: Sequence[Split], *, now: dt.datetime) -> int:
    """One review task for each pair not already waiting for review nor kept apart by a data
    manager; the number raised."""
    tasks: list[review_repo.NewTask] = []
    seen: set[frozenset[str]] = set()
    for split in splits:
        pair = frozenset((split.other, split.joined))
        if pair in seen:
            continue
        seen.add(pair)
        if review_repo.are_kept_apart(conn, split.other, split.joined):
            continue
        if review_repo.open_task_between(conn, split.other, split.joined):
            continue
        tasks.append(
            review_repo.NewTask(RANDOM.hex_id(), split.other, split.joined, split.score, split.reasons)
        )
    if not tasks:
        return 0
    review_repo.insert_tasks(conn, tasks, now=now)
    rows = child_repo.children_by_id(conn, {c for t in tasks for c in (t.new_child, t.candidate)})
    for task in tasks:
        a, b = rows.get(task.new_child), rows.get(task.candidate)
        if a is None or b is None or a.shown_shielded == b.shown_shielded:
            continue
        # Either may be the copy of a shielded child: its address must not show meanwhile.
        hidden = b if a.shown_shielded else a
        child_repo.set_shielding(conn, hidden.contactpoint_id, provisional=True, now=now)
    return len(tasks)
