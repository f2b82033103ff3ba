"""The lifecycle rules (CONTRACT §4): a record is archived at 18 (25 when extended) or a year
after the child's death, and purged six years after archiving — its personal data deleted, its
ContactPoint ID reserved for ever. Work is done in small batches, one transaction each, so that
the job never holds a long lock and replicas running it at once share it (SKIP LOCKED)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

from sqlalchemy import Connection

from contactpoint.platform.logging import get_logger
from services.records.children import add_years, archive_date, in_order
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository import children as child_repo
from services.records.repository import holdings
from services.records.repository import lifecycle as lifecycle_repo
from services.records.repository import shields as shield_repo
from services.records.repository import sources as source_repo
from services.records.repository.lifecycle import month_of
from services.records.repository.rows import SourceRow
from services.records.task_upkeep import close_tasks_of
from services.records.values import day_in_england

log = get_logger(__name__)

PURGE_AFTER_YEARS = 6
by_order = attrgetter("order")  # a source record's place among its child's, oldest first
BATCH = 500


@dataclass(frozen=True)
class LifecycleReport:
    """How many records one run archived and purged."""

    archived: int
    purged: int


def dating_records(conn: Connection, held: Mapping[str, Sequence[SourceRow]]) -> dict[str, list[SourceRow]]:
    """The records each child's archive date is worked out from (child id → its active records):
    those, or, for a child whose every record is withdrawn, the withdrawn ones. Such a child is
    seen by no one, but its records still hold personal data: it is archived and purged on the
    same dates as any other (found by review: its archive date was cleared, so it was kept for
    ever)."""
    bare = [cid for cid, rows in held.items() if not rows]
    dating = {cid: list(rows) for cid, rows in held.items()}
    for row in source_repo.withdrawn_sources(conn, bare):
        dating[row.contactpoint_id].append(row)
    return dating


def refile(
    conn: Connection, held: Mapping[str, Sequence[SourceRow]], *, limits: AgeLimits, now: dt.datetime
) -> None:
    """Children whose records changed (child id → the active records it holds now): each one's
    archive date from those records (from its withdrawn ones when it holds none: `dating_records`),
    and an archived child whose date they moved on (a care leaver's extended record, a date of
    death withdrawn or unmerged away) active again. A child archived by a run dated ahead of today
    (`contactpoint records lifecycle --today`) stays archived unless its date moved on past the
    day it was archived (`lifecycle_repo.reactivate`)."""
    dates = {cid: archive_date(in_order(rows), limits) for cid, rows in dating_records(conn, held).items()}
    child_repo.touch_many(conn, dates, now=now)
    today = day_in_england(now)
    lifecycle_repo.reactivate(
        conn,
        {cid: day for cid, day in dates.items() if held[cid] and (day is None or day > today)},
    )


def refile_reordered(
    conn: Connection, ids: set[str], as_of: Mapping[str, dt.datetime], *, limits: AgeLimits, now: dt.datetime
) -> None:
    """Children whose records get newer `as_of` dates (source id → its new date), nothing else
    changed, before the dates are written: one holding several records whose order those change
    is refiled (`refile`), as its record as composed (whose date of birth, whose address) and its
    archive date may change with it. Found by probing: after a merge, the retired child's record
    sent again with another date moved the child's date of birth but not its archive date, so it
    stayed visible a year past its 18th birthday, or stayed archived when its date moved later."""
    several = holdings.children_with_several_records(conn, sorted(ids))
    if not several:
        return
    held: dict[str, list[SourceRow]] = {cid: [] for cid in several}
    for row in source_repo.active_sources(conn, sorted(several)):
        held[row.contactpoint_id].append(row)
    reordered = {}
    for cid, rows in held.items():
        dated = [replace(row, as_of=as_of[row.id]) if row.id in as_of else row for row in rows]
        if [r.id for r in sorted(rows, key=by_order)] != [r.id for r in sorted(dated, key=by_order)]:
            reordered[cid] = dated
    if reordered:
        refile(conn, reordered, limits=limits, now=now)


def archive_as_its_holder(
    conn: Connection,
    contactpoint_id: str,
    holders: Sequence[str],
    *,
    limits: AgeLimits,
    now: dt.datetime,
) -> None:
    """A child an unmerge put back, beside `holders` (children, some perhaps archived): a
    lifecycle run has reached an archived holder's archive date, so the child is archived too if
    its own date is not later (found by re-probing: after a run dated ahead of today, the child
    put back was read in full)."""
    archived = [cid for cid in holders if (row := child_repo.child(conn, cid)) and row.archived_at]
    reached = [day for day in archived_on(conn, archived, limits).values() if day is not None]
    day = archive_date(in_order(source_repo.active_sources(conn, [contactpoint_id])), limits)
    if day is not None and reached and day <= max(reached):
        close_tasks_of(conn, [contactpoint_id], now=now)
        lifecycle_repo.archive(conn, {contactpoint_id: day})


def archive_dates(conn: Connection, ids: Sequence[str], limits: AgeLimits) -> dict[str, dt.date | None]:
    """Each child's archive date by the rules, from its sealed records (`dating_records`). Only
    the month of it is kept in the clear (`archive_on`, `archived_at`): the day is a child's
    birthday or the anniversary of its death (found by probing: a stolen database gave each
    archived child's exact date of birth, kept after its purge)."""
    by_child: dict[str, list[SourceRow]] = {cid: [] for cid in ids}
    for row in source_repo.active_sources(conn, list(ids)):
        by_child[row.contactpoint_id].append(row)
    return {cid: archive_date(in_order(rows), limits) for cid, rows in dating_records(conn, by_child).items()}


def archived_on(conn: Connection, ids: Sequence[str], limits: AgeLimits) -> dict[str, dt.date | None]:
    """The day each archived child was archived on: from its keyed check (`archived_days`), else,
    for a child archived before the check was kept, its archive date by its records now."""
    days: dict[str, dt.date | None] = dict(lifecycle_repo.archived_days(conn, ids))
    return {**archive_dates(conn, [cid for cid in ids if cid not in days], limits), **days}


def midnight(day: dt.date) -> dt.datetime:
    """The start of a day, UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def archive_batch(
    conn: Connection,
    *,
    today: dt.date,
    limits: AgeLimits = DEFAULT_LIMITS,
    after: tuple[dt.date, str] | None = None,
    limit: int = BATCH,
) -> tuple[int, tuple[dt.date, str] | None]:
    """Archive those of the next `limit` children whose archive month has come (after `after`)
    whose exact archive date, from their sealed records, is on or before `today`: (how many
    were archived, where the next batch starts, None when none is left)."""
    candidates = lifecycle_repo.due_for_archiving(conn, today=today, limit=limit, after=after)
    # Each archived as of its own archive date, so that its purge comes six years after that day
    # however late a run reaches it.
    dates = archive_dates(conn, [cid for _, cid in candidates], limits)
    due = {cid: day for cid, day in dates.items() if day is not None and day <= today}
    # Their review tasks end first: tasks before children, the order a data manager's decision
    # takes its locks in. As of the month, as the archiving is: the day would be a birthday (found
    # by re-probing: a task's resolved time kept it after the purge).
    close_tasks_of(conn, list(due), now=month_of(today))
    lifecycle_repo.archive(conn, due)
    return len(due), (candidates[-1] if len(candidates) == limit else None)


def purge_batch(
    conn: Connection,
    *,
    today: dt.date,
    limits: AgeLimits = DEFAULT_LIMITS,
    after: tuple[dt.datetime, str] | None = None,
    limit: int = BATCH,
) -> tuple[int, tuple[dt.datetime, str] | None]:
    """Purge those of the next `limit` children archived in a month six years or more before
    `today` (after `after`) archived on a day six years or more before it (`archived_on`): their
    source records (and those of ids merged into them) are deleted, and data managers' reasons
    about them; the ids stay reserved. (How many were purged, where the next batch starts, None
    when none is left.)"""
    cutoff = add_years(today, -PURGE_AFTER_YEARS)
    candidates = lifecycle_repo.due_for_purging(
        conn, archived_before=midnight(cutoff), limit=limit, after=after
    )
    # Six years from the day it was archived, though a record corrected since may give another.
    dates = archived_on(conn, [cid for _, cid in candidates], limits)
    # A child whose records no longer give a date (none should) goes by the month it was archived in.
    ids = [cid for cid, day in dates.items() if day is None or day <= cutoff]
    if ids:
        retired = lifecycle_repo.retired_into(conn, ids)
        source_repo.delete_sources_of(conn, ids + retired)
        lifecycle_repo.mark_purged(conn, ids + retired, at=dt.datetime(today.year, 1, 1, tzinfo=dt.UTC))
        lifecycle_repo.forget_reasons(conn, ids + retired)
        # Who shielded a purged child, and when, goes with it (found by review: it outlived the purge).
        shield_repo.clear(conn, ids + retired)
    return len(ids), (candidates[-1] if len(candidates) == limit else None)
