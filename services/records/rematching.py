"""A source record already held, sent again with new content or after it was withdrawn: it stays
with its child, and is matched once more against every other child, so that a data manager sees
the pair when it now looks like another child's too."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM
from services.records import placement
from services.records.children import due_children
from services.records.evidence import record_of
from services.records.linkage import Action
from services.records.matching import FeatureCache, Matcher, candidate_rows
from services.records.model import AgeLimits
from services.records.repository import candidates as candidate_repo
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository.rows import SourceRow
from services.records.tables import ACTIVE
from services.records.task_carrying import raised_for_records


def rematch(
    conn: Connection,
    held_records: Sequence[tuple[placement.Prepared, SourceRow]],
    matcher: Matcher,
    *,
    limits: AgeLimits,
    today: dt.date,
) -> list[review_repo.NewTask | None]:
    """Held records revived or corrected stay with their child (one source record id, one child
    for life), but each may now be another child's too: a task pairs the two for a data manager
    (found by probing: a record withdrawn, the child fed meanwhile by another system, then sent
    again, or corrected to what another system holds, left two children alike and no task).

    A batch's records at once: their children, key hits and candidates are each one read, not
    one a record (a feed sent again with changes, a move each, ran at a fifth of the rate of new
    records: `docs/benchmarks.md`). The task each record raises, or None, in their order."""
    if not held_records:
        return []
    # An archived child is never a review task's (found checking the batch's locks: the task named
    # it, and the batch, expecting the child active, was refused for ever).
    rows = child_repo.children_by_id(conn, {held.contactpoint_id for _, held in held_records})
    active = {cid for cid, row in rows.items() if row.status == ACTIVE}
    # One whose archive date has come is as good as archived (no data manager may see it).
    active -= due_children(conn, {cid: rows[cid].archive_on for cid in active}, limits=limits, today=today)
    hashes = {h for p, _ in held_records for h in p.blocking_hashes.values()}
    filed: dict[int, set[str]] = defaultdict(set)
    for h, source_id in candidate_repo.key_hits(conn, hashes):
        filed[h].add(source_id)
    # The records each active child's record finds, by its place in the batch.
    found = {
        i: set().union(*(filed[h] for h in p.blocking_hashes.values())) - {held.id}
        for i, (p, held) in enumerate(held_records)
        if held.contactpoint_id in active
    }
    cache = FeatureCache(candidate_rows(conn, set().union(*found.values()), limits=limits, today=today))
    tasks: list[review_repo.NewTask | None] = []
    for i, (p, held) in enumerate(held_records):
        own, ids = held.contactpoint_id, found.get(i)
        if ids is None:
            tasks.append(None)
            continue
        candidates = [c for c in cache.candidates(sorted(ids)) if c.contactpoint_id != own]
        decision = matcher.decide(p.features, key=p.key, candidates=candidates)
        other = decision.candidate
        if decision.action is Action.CREATE or other is None or other.gone:
            tasks.append(None)
            continue
        tasks.append(
            review_repo.NewTask(
                RANDOM.hex_id(),
                own,
                other.contactpoint_id,
                decision.score,
                decision.reasons,
                new_child_record=p.key,
                candidate_record=record_of(other),
            )
        )
    raised = iter(raised_for_records(conn, [t for t in tasks if t is not None]))
    return [None if t is None else next(raised) for t in tasks]
