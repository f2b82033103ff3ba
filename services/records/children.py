"""A child, composed from its source records, and read one at a time (GetChild, FindChild).

A child is never stored as such: on every read it is composed from the active source records
linked to it. A retired id (merged away) reads as its survivor. Functions take a connection (one
transaction, owned by the caller) and keyword arguments; none imports grpc.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy import Connection

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.audited import MAX_OTHER_CHILDREN
from contactpoint.platform.errors import (
    MATCHED_ARCHIVED,
    MATCHED_TOO_MANY,
    WITHHELD_SHIELDED,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.logging import get_logger
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.composing import compose
from services.records.model import DEFAULT_LIMITS, AgeLimits, FindCriteria
from services.records.names import fold_key, given_name_matches, name_key, postcode_key, similar
from services.records.repository import children as child_repo
from services.records.repository import remembered_services as remembered_repo
from services.records.repository import search
from services.records.repository import sources as source_repo
from services.records.repository.rows import ChildRow, SourceRow
from services.records.sensitive_memory import FlaggedService
from services.records.tables import ACTIVE, MERGED
from services.records.validation import validate_find
from services.records.values import date_value, today_in_england

log = get_logger(__name__)

TOO_MANY_MATCHES = "TOO_MANY_MATCHES"
# A chain of merges longer than this is a bug, not a registry.
MAX_MERGE_HOPS = 16
K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Message)


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later; 29 February becomes 1 March in a year that has none (the day
    an age is reached, as `values.age_on` counts it) — or 28 February counting back, so that
    `add_years(add_years(d, n), -n) <= d` and a deadline is never reached a day early."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return dt.date(day.year + years, 3, 1) if years >= 0 else dt.date(day.year + years, 2, 28)


def parse(row: SourceRow) -> pb.SourceRecord:
    """A stored source record."""
    record = pb.SourceRecord()
    record.ParseFromString(row.record)
    return record


def in_order(rows: Iterable[SourceRow]) -> list[pb.SourceRecord]:
    """Source records oldest first (by `as_of`, or when received), as `compose` wants them."""
    return [parse(r) for r in sorted(rows, key=lambda r: r.order)]


def archive_date(sources: Sequence[pb.SourceRecord], limits: AgeLimits = DEFAULT_LIMITS) -> dt.date | None:
    """When a child's record is archived: at 18 (25 when any source says extended), or a year
    after death if that comes first. `sources` oldest first; the latest date of birth wins."""
    if not sources:
        return None
    due: dt.date | None = None
    dob = date_value(sources[-1].date_of_birth)
    if dob is not None:
        due = add_years(dob, limits.limit(extended=any(s.extended for s in sources)))
    died = next(
        (d for s in reversed(sources) if s.HasField("date_of_death") and (d := date_value(s.date_of_death))),
        None,
    )
    if died is not None:
        after_death = add_years(died, 1)
        due = after_death if due is None else min(due, after_death)
    return due


def due_children(
    conn: Connection, months: Mapping[str, dt.date | None], *, limits: AgeLimits, today: dt.date
) -> set[str]:
    """Which of some active children (id → the month their archive date falls in, as stored)
    have reached their archive date by `today`. Such a child is gone, for the gateway, data
    managers and matching alike, though the hourly lifecycle run has not archived it yet. Only
    the children whose month has come have their sealed records read (the day is in them)."""
    near = [cid for cid, month in months.items() if month is not None and month <= today]
    if not near:
        return set()
    held: dict[str, list[SourceRow]] = {}
    for row in source_repo.active_sources(conn, near):
        held.setdefault(row.contactpoint_id, []).append(row)
    return {
        cid
        for cid, rows in held.items()
        if (day := archive_date(in_order(rows), limits)) is not None and day <= today
    }


def resolve(conn: Connection, contactpoint_id: str) -> ChildRow | None:
    """The child an id names now: a retired id leads to the child it was merged into."""
    row = child_repo.child(conn, contactpoint_id)
    hops = 0
    while row is not None and row.status == MERGED and row.merged_into and hops < MAX_MERGE_HOPS:
        row = child_repo.child(conn, row.merged_into)
        hops += 1
    return row


def locked_chain(conn: Connection, contactpoint_id: str) -> list[ChildRow]:
    """The child and each it has been merged into since, up to the one that reads for it now
    (`resolve`), each row locked before it is read: a merge committed while this waited is seen
    (found by probing: an unmerge racing a merge of its survivor moved nothing back, leaving the
    child active with no record and its record on the other child). Empty for an unknown id."""
    chain: list[ChildRow] = []
    current: str | None = contactpoint_id
    while current is not None and len(chain) <= MAX_MERGE_HOPS:
        row = child_repo.child(conn, current, lock=True)
        if row is None:
            break
        chain.append(row)
        current = row.merged_into if row.status == MERGED else None
    return chain


def composed(
    conn: Connection, row: ChildRow, *, limits: AgeLimits, today: dt.date, visible_only: bool = True
) -> child_pb2.Child | None:
    """The child's full record, or None when it has no active source — or, with `visible_only`,
    when it is not active or has reached its archive date (even before the archiving job ran)."""
    if visible_only and row.status != ACTIVE:
        return None
    sources = in_order(source_repo.active_sources(conn, [row.contactpoint_id]))
    remembered = remembered_repo.remembered_by_child(conn, row.contactpoint_id)
    return composed_from(
        row, sources, limits=limits, today=today, visible_only=visible_only, remembered_sensitive=remembered
    )


def composed_from(
    row: ChildRow,
    sources: Sequence[pb.SourceRecord],
    *,
    limits: AgeLimits,
    today: dt.date,
    visible_only: bool = True,
    remembered_sensitive: Sequence[FlaggedService] = (),
) -> child_pb2.Child | None:
    """`composed`, from the child's row, its active source records (oldest first) and the
    services its source records (withdrawn ones too) remember as sensitive."""
    if visible_only and row.status != ACTIVE:
        return None
    if not sources:
        return None
    due = archive_date(sources, limits)
    if visible_only and due is not None and due <= today:
        return None
    return compose(
        row.contactpoint_id,
        sources,
        shielded=row.shown_shielded,
        update_time=row.updated_at,
        remembered_sensitive=remembered_sensitive,
    )


def get_child(
    conn: Connection,
    *,
    contactpoint_id: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> child_pb2.Child:
    """One child's full record (the gateway filters it). A retired id reads as its survivor.
    NotFound when unknown, archived, purged, past the archiving date, or all withdrawn."""
    problem = contactpoint_id_problem(contactpoint_id)
    if problem:
        raise InvalidArgument([FieldViolation("contactpoint_id", problem)])
    row = resolve(conn, contactpoint_id)
    child = composed(conn, row, limits=limits, today=today or today_in_england()) if row else None
    if child is None:
        raise NotFound("no child has this ContactPoint ID")
    return child


def criteria_of(request: pb.FindChildRecordRequest) -> FindCriteria:
    """The search a gateway's request asks for."""
    dob = request.date_of_birth
    return FindCriteria(
        family_name=request.family_name,
        given_name=request.given_name,
        date_of_birth=(dob.year, dob.month, dob.day) if request.HasField("date_of_birth") else None,
        postcode=request.postcode,
        gender=int(request.gender),
        fuzzy=request.fuzzy,
    )


def check_search(criteria: FindCriteria, *, today: dt.date | None = None) -> None:
    """InvalidArgument naming every problem with `criteria` (CONTRACT §3), if it has any."""
    if violations := validate_find(criteria, today=today or today_in_england()):
        raise InvalidArgument(violations)


def find_child(
    conn: Connection,
    *,
    criteria: FindCriteria,
    limits: AgeLimits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> child_pb2.Child:
    """The one child matching `criteria` (CONTRACT §3). None is NotFound; more than one is
    FailedPrecondition TOO_MANY_MATCHES, saying nothing about the candidates."""
    return search_child(conn, criteria=criteria, limits=limits, today=today).child


@dataclass(frozen=True)
class Found:
    """What a search found: the one child, the shielded children it matched and withheld (a search
    by postcode never shows one), and the archived children it matched (never shown), for the
    gateway's audit event only."""

    child: child_pb2.Child
    withheld: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()


def search_child(
    conn: Connection,
    *,
    criteria: FindCriteria,
    limits: AgeLimits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> Found:
    """`find_child`, with the shielded children withheld. NotFound and TOO_MANY_MATCHES carry those
    in their ErrorInfo metadata (`WITHHELD_SHIELDED`), and the archived children matched
    (`MATCHED_ARCHIVED`), for the gateway to log and strip."""
    check_search(criteria, today=today)
    assert criteria.date_of_birth is not None  # validated above
    family = name_key(criteria.family_name)
    # Rows keyed before "Ł" was folded to "L" hold the letter itself: found by a search that
    # gives it (their keys are folded here, to be compared).
    families = sorted({family, name_key(criteria.family_name, fold_letters=False)})
    postcode = postcode_key(criteria.postcode) or None
    rows = search.names_born_on(
        conn,
        date_of_birth=dt.date(*criteria.date_of_birth),
        family_keys=None if criteria.fuzzy else families,
        postcode_key=postcode,
    )
    matching = {
        (row.contactpoint_id, row.shielded, row.archived)
        for row in rows
        if similar(family, fold_key(row.family_key), fuzzy=criteria.fuzzy)
        and (
            not criteria.given_name.strip()
            or given_name_matches(
                criteria.given_name, [fold_key(k) for k in row.given_keys.split()], fuzzy=criteria.fuzzy
            )
        )
        and (not criteria.gender or row.gender == criteria.gender)
    }
    # An archived child is never shown, but a search that matched one is in its subject-access
    # report: named to the gateway for its log (before, such a search named no child).
    archived = {cid for cid, _, is_archived in matching if is_archived}
    # A search by postcode must never reveal where a shielded child lives: such a child is
    # withheld, and named to the gateway for its log (found by probing: such searches were in
    # no child's subject-access report).
    withheld = (
        tuple(sorted({cid for cid, shielded, _ in matching if shielded} - archived)) if postcode else ()
    )
    matched = sorted({cid for cid, _, _ in matching} - set(withheld) - archived)
    found: list[child_pb2.Child] = []
    for contactpoint_id in matched:
        row = child_repo.child(conn, contactpoint_id)
        child = composed(conn, row, limits=limits, today=today or today_in_england()) if row else None
        if child is not None:
            found.append(child)
        elif row is not None and row.status == ACTIVE:
            archived.add(contactpoint_id)  # past its archive date, before the lifecycle run archived it
        if len(found) > 1:
            break
    log.info("records.find", candidates=len(rows), matches=len(matched), fuzzy=criteria.fuzzy)
    held = {
        **({WITHHELD_SHIELDED: ",".join(withheld)} if withheld else {}),
        **({MATCHED_ARCHIVED: ",".join(sorted(archived))} if archived else {}),
    }
    if not found:
        raise NotFound("no child matches", held or None)
    if len(found) > 1:
        # Every child it matched is named to the gateway's log (up to what one event names): a
        # search that confirmed they exist is in their subject-access reports (found by probing).
        named = matched[:MAX_OTHER_CHILDREN]
        raise FailedPrecondition(
            "more than one child matches; give more criteria",
            TOO_MANY_MATCHES,
            {**held, MATCHED_TOO_MANY: ",".join(named)},
        )
    return Found(found[0], withheld, tuple(sorted(archived)))
