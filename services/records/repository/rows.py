"""The typed rows records' repository returns (never string-keyed mappings)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contactpoint.platform.vault import Vault
from contactpoint.platform.workers import pickled_by_fields
from services.records.repository.sealing import source_context


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def utc(value: dt.datetime) -> dt.datetime:
    """`aware` for a column that is never NULL."""
    out = aware(value)
    assert out is not None
    return out


@dataclass(frozen=True, slots=True)
class ChildRow:
    """A child as the registry holds it (its record is composed from its sources)."""

    contactpoint_id: str
    status: str
    shielded: bool
    provisional_shield: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    archive_on: dt.date | None
    archived_at: dt.datetime | None
    purged_at: dt.datetime | None
    merged_into: str | None

    @property
    def shown_shielded(self) -> bool:
        """Shielded, or held shielded while a review pairs it with a shielded child."""
        return self.shielded or self.provisional_shield

    @classmethod
    def of(cls, row: Any) -> ChildRow:
        return cls(
            contactpoint_id=row.contactpoint_id,
            status=row.status,
            shielded=bool(row.shielded),
            provisional_shield=bool(row.provisional_shield),
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
            archive_on=row.archive_on,
            archived_at=aware(row.archived_at),
            purged_at=aware(row.purged_at),
            merged_into=row.merged_into,
        )


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SourceKey:
    """How a source record is named: by its organisation, system and id in that system."""

    organisation: str
    source_system: str
    source_record_id: str


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One source record as stored, opened."""

    id: str
    key: SourceKey
    contactpoint_id: str
    record: bytes
    features: str
    content_hash: str
    as_of: dt.datetime | None
    withdrawn: bool
    updated_at: dt.datetime

    @property
    def order(self) -> tuple[dt.datetime, dt.datetime, str]:
        """Oldest first: by `as_of` (or when received), then by when stored."""
        return (self.as_of or self.updated_at, self.updated_at, self.id)

    def newer_than(self, as_of: dt.datetime | None) -> bool:
        """Whether the version held is newer than a version dated `as_of` (a late replay). A
        version without `as_of` counts as of when it was stored, and one sent without it as of
        now, so never older (found by probing: a version sent undated, then an older dated
        one, was overwritten by the older)."""
        return as_of is not None and as_of < (self.as_of or self.updated_at)

    @classmethod
    def of(cls, row: Any, vault: Vault) -> SourceRow:
        """A stored row, its record and features opened."""
        return cls(
            id=row.id,
            key=SourceKey(row.organisation, row.source_system, row.source_record_id),
            contactpoint_id=row.contactpoint_id,
            record=vault.open(row.record, source_context(row.id, "record")),
            features=vault.open_text(row.features, source_context(row.id, "features")),
            content_hash=row.content_hash,
            as_of=aware(row.as_of),
            withdrawn=bool(row.withdrawn),
            updated_at=utc(row.updated_at),
        )


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    """The first answer to one request (what a retry gets again)."""

    source_system: str
    request_id: str
    request_hash: str
    contactpoint_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class CandidateRow:
    """An active source record of an active or archived child, found by some of a new record's
    blocking keys; `archive_on` is the month of an active child's archive date, and `due` whether
    that date has come (the hourly lifecycle run has yet to archive it)."""

    source_id: str
    contactpoint_id: str
    source: SourceKey
    features: str
    shielded: bool
    archived: bool = False
    archive_on: dt.date | None = None
    due: bool = False
    # Shielded by a data manager (or a merge), not only shown so while a review task pairs it.
    shielded_itself: bool = False


@dataclass(frozen=True, slots=True)
class ReviewTaskRow:
    """A possible match for a data manager."""

    task_id: str
    new_child: str
    candidate: str
    score: float
    reasons: tuple[str, ...]
    status: str
    held_by: str | None
    held_until: dt.datetime | None
    decision: str | None
    decided_by: str | None
    result_id: str | None
    created_at: dt.datetime
    new_child_was: str | None = None
    candidate_was: str | None = None

    def other(self, contactpoint_id: str) -> str:
        """The child this task pairs `contactpoint_id` with."""
        return self.candidate if self.new_child == contactpoint_id else self.new_child

    def remembers(self, contactpoint_id: str) -> bool:
        """Whether the task says which child the side naming `contactpoint_id` was raised for
        (tasks raised before migration 0008 do not)."""
        return (self.new_child_was if self.new_child == contactpoint_id else self.candidate_was) is not None

    def was(self, contactpoint_id: str) -> str:
        """The child the side naming `contactpoint_id` named when the task was raised (a merge
        may have carried it to its survivor since)."""
        if self.new_child == contactpoint_id:
            return self.new_child_was or self.new_child
        return self.candidate_was or self.candidate

    @classmethod
    def of(cls, row: Any) -> ReviewTaskRow:
        return cls(
            task_id=row.task_id,
            new_child=row.new_child,
            candidate=row.candidate,
            score=float(row.score),
            reasons=tuple(row.reasons or ()),
            status=row.status,
            held_by=row.held_by,
            held_until=aware(row.held_until),
            decision=row.decision,
            decided_by=row.decided_by,
            result_id=row.result_id,
            created_at=utc(row.created_at),
            new_child_was=row.new_child_was,
            candidate_was=row.candidate_was,
        )


@dataclass(frozen=True, slots=True)
class MergeRow:
    """One merge, with what is needed to undo it."""

    merge_id: str
    survivor_id: str
    retired_id: str
    moved_sources: tuple[str, ...]
    survivor_shielded: bool
    retired_shielded: bool
    created_at: dt.datetime
    undone_at: dt.datetime | None
    undone_by: str | None = None
    merged_by: str = ""
    # The merging data manager's organisation (None for merges before 0015).
    merged_by_organisation: str | None = None
    # When each child's record last changed before the merge (None for merges before 0010).
    survivor_updated_at: dt.datetime | None = None
    retired_updated_at: dt.datetime | None = None
    # Keyed fingerprints of each child's record before the merge (`merge_snapshots`).
    survivor_fingerprint: str | None = None
    retired_fingerprint: str | None = None
    # Each active source record's content hash at the merge, by id (None for merges before 0014).
    held_at_merge: Mapping[str, str] | None = None

    @classmethod
    def of(cls, row: Any) -> MergeRow:
        return cls(
            merge_id=row.merge_id,
            survivor_id=row.survivor_id,
            retired_id=row.retired_id,
            moved_sources=tuple(row.moved_sources or ()),
            survivor_shielded=bool(row.survivor_shielded),
            retired_shielded=bool(row.retired_shielded),
            created_at=utc(row.created_at),
            undone_at=aware(row.undone_at),
            undone_by=row.undone_by,
            merged_by=row.merged_by,
            merged_by_organisation=row.merged_by_organisation,
            survivor_updated_at=aware(row.survivor_updated_at),
            retired_updated_at=aware(row.retired_updated_at),
            survivor_fingerprint=row.survivor_fingerprint,
            retired_fingerprint=row.retired_fingerprint,
            held_at_merge=row.held_at_merge,
        )
