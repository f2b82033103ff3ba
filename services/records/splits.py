"""Children split in two: a new record that links to one child but would have linked to another as
well says the two are likely one child held twice (each made before the records that join them
arrived). Matching cannot join them itself — merging children is a data manager's decision, and
about one pair in ten such pairs on simulated feeds is two children — so it raises a review task
pairing them (LINK merges the other child into the one the record joined; KEEP_APART is
remembered), and, failing safe, shows each shielded while the other is shielded.

A child merged or withdrawn after this read it leaves a task that a data manager is never
handed (`review.next_task` skips it) and that the lifecycle's sweep ends
(`task_upkeep.close_overtaken`). Two batches that
share no blocking key may, rarely, both raise the same pair; the second task closes with the first
(KEEP_APART closes every task between the pair; after a LINK the other is obsolete). The pairs
come from the candidates the matcher read: on a decision settled by the strong keys, not the weak
keys' (reading those as well found the same 24 pairs on the 20,000 children's feed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.tables import ACTIVE
from services.records.task_upkeep import pair_shields


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
    rows = child_repo.children_by_id(conn, {c for s in splits for c in (s.other, s.joined)})
    tasks: list[review_repo.NewTask] = []
    seen: set[frozenset[str]] = set()
    for split in splits:
        pair = frozenset((split.other, split.joined))
        other, joined = rows.get(split.other), rows.get(split.joined)
        if pair in seen or other is None or joined is None:
            continue
        seen.add(pair)
        if other.status != ACTIVE or joined.status != ACTIVE:
            continue  # merged or archived since the batch read it
        if review_repo.are_kept_apart(conn, split.other, split.joined):
            continue
        if review_repo.open_task_between(conn, split.other, split.joined):
            continue
        tasks.append(
            review_repo.NewTask(RANDOM.hex_id(), split.other, split.joined, split.score, split.reasons)
        )
    review_repo.insert_tasks(conn, tasks, now=now)
    # Either may be the copy of a shielded child: its address must not show meanwhile.
    pair_shields(conn, tasks, now=now)
    return len(tasks)
