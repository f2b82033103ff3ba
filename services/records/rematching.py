"""A source record already held, sent again with new content or after it was withdrawn: it stays
with its child, and is matched once more against every other child, so that a data manager sees
the pair when it now looks like another child's too."""

from __future__ import annotations

from sqlalchemy import Connection

from contactpoint.platform.ids import RANDOM
from services.records import placement
from services.records.evidence import record_of
from services.records.linkage import Action
from services.records.matching import FeatureCache, Matcher
from services.records.repository import candidates as candidate_repo
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository.rows import SourceRow
from services.records.tables import ACTIVE
from services.records.task_carrying import raised_for_records


def rematch(
    conn: Connection, p: placement.Prepared, held: SourceRow, matcher: Matcher
) -> list[review_repo.NewTask]:
    """A held record revived or corrected stays with its child (one source record id, one child
    for life), but it may now be another child's too: a task pairs the two for a data manager
    (found by probing: a record withdrawn, the child fed meanwhile by another system, then sent
    again, or corrected to what another system holds, left two children alike and no task)."""
    own = held.contactpoint_id
    row = child_repo.child(conn, own)
    if row is None or row.status != ACTIVE:
        # An archived child is never a review task's (found checking the batch's locks: the
        # task named it, and the batch, expecting the child active, was refused for ever).
        return []
    found = {sid for _, sid in candidate_repo.key_hits(conn, p.blocking_hashes.values())} - {held.id}
    rows = [r for r in candidate_repo.candidates_of(conn, found).values() if r.contactpoint_id != own]
    candidates = FeatureCache({r.source_id: r for r in rows}).candidates(r.source_id for r in rows)
    decision = matcher.decide(p.features, key=p.key, candidates=candidates)
    other = decision.candidate
    if decision.action is Action.CREATE or other is None or other.archived:
        return []
    task = review_repo.NewTask(
        RANDOM.hex_id(),
        own,
        other.contactpoint_id,
        decision.score,
        decision.reasons,
        new_child_record=p.key,
        candidate_record=record_of(other),
    )
    return raised_for_records(conn, [task])
