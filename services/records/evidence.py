"""The source records decisions were matched through, and whether each is still filed under the
child it was matched to when the batch writes.

A merge committed while a batch decided shows in the children the batch share-locks (the child
merged away is no longer active); an unmerge does not (its survivor stays active), but it moves
the child put back's records back to it. A record matched through one of those would then be
joined to, or paired in a task with, a child its evidence no longer belongs to (found by probing:
a possible match raised through the retired child's record was filed as the survivor's), so the
batch decides again."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import Connection

from services.records.linkage import Candidate
from services.records.model import ConcurrentChange
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import SourceKey


def record_of(candidate: Candidate) -> SourceKey:
    """The source record a decision matched a child through."""
    return SourceKey(candidate.organisation, candidate.source_system, candidate.source_record_id)


def task_records(task: review_repo.NewTask) -> tuple[tuple[str, SourceKey | None], ...]:
    """Each side of a new task, and the record it was matched through (None: not known)."""
    return ((task.new_child, task.new_child_record), (task.candidate, task.candidate_record))


def check_still_filed(
    conn: Connection, claims: Iterable[tuple[str, SourceKey]], *, written_now: Collection[SourceKey]
) -> None:
    """ConcurrentChange unless each (child, record) claim's record is still filed under that
    child; records this batch writes itself (`written_now`) are not stored yet, and stand."""
    stored = {(child, record) for child, record in claims if record not in written_now}
    filed = source_repo.children_of_records(conn, {record for _, record in stored})
    if any(filed.get(record) != child for child, record in stored):
        raise ConcurrentChange("a record this batch matched was moved to another child meanwhile")
