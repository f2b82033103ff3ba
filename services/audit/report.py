"""The subject-access report: every recorded access to one child's record, oldest first.

An access is an event that names the child, as its `contactpoint_id` or among its
`other_contactpoint_ids`: reads through the gateway, allowed or refused (a read through a retired
id is the survivor's access too), and data managers' actions (a review task shows two children, a
merge changes two); those of every child merged into it (by a merge or a review task decided
LINK), up to the merge (unless it was unmerged again); and those of every child it was merged
into, from the merge until it was unmerged (its record was part of that child's then). Reads of
the audit log about the child (ListEvents, earlier reports) name it in their detail only, so they
are not listed. The report is produced from
the hashed leaf data, not from the columns kept for filtering, in log order (the audit service
stamps each event's time as it appends it, so that is also time order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.errors import FieldViolation, InvalidArgument
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.redaction import redacted
from contactpoint.platform.text import says_something
from services.audit import domain, leafcodec, reading, repository
from services.audit.events import COMMAND_LINE, MAX_ACTOR, Reader, text_problem

ACTION = "AuditReport"


@dataclass(frozen=True)
class Access:
    """One recorded access to a child's record."""

    leaf_index: int
    time: datetime
    actor: str
    organisation: str
    roles: tuple[str, ...]
    action: str
    purpose: str  # the AccessPurpose value's name, e.g. ACCESS_PURPOSE_SAFEGUARDING
    outcome: str


def _purpose_name(value: int) -> str:
    # Events stored before purposes were checked may hold a number that names nothing.
    if value in child_pb2.AccessPurpose.values():
        return child_pb2.AccessPurpose.Name(value)  # type: ignore[arg-type]
    return str(value)


def _access(event: pb.AuditEvent) -> Access:
    return Access(
        leaf_index=event.leaf_index,
        time=event.time.ToDatetime(tzinfo=UTC),
        actor=event.actor,
        organisation=event.actor_organisation,
        roles=tuple(event.actor_roles),
        action=event.action,
        purpose=_purpose_name(event.purpose),
        outcome=event.outcome,
    )


MERGED = "MergeChildren"
RESOLVED = "ResolveReviewTask"
UNMERGED = "UnmergeChildren"
ALLOWED = "ALLOWED"
# How records' data managers' service describes a review task decided LINK (`data_managers`): its
# own words, then the data manager's reason. The new child joins the candidate, as a merge; not on
# a retry ("a retry: already decided so"), which joins nothing (found by re-probing: a retry after
# an unmerge, and a KEEP_APART whose reason said "decision LINK", were read as joins).
LINKED_BY_REVIEW = re.compile(r"task [^;]*; decision LINK(?:; reason: .*)?", re.DOTALL)


def _events_about(conn: Connection, contactpoint_id: str) -> list[pb.AuditEvent]:
    return [
        leafcodec.decode(data, index)
        for index, data in repository.leaves_about(conn, contactpoint_id=contactpoint_id)
    ]


def _joins(event: pb.AuditEvent) -> bool:
    """Whether `event` joined its other children into its child: a merge, or a review task decided
    LINK (found by probing: a child linked through its task lost its earlier reads from the
    report, which a merge kept)."""
    if event.outcome != ALLOWED:
        return False
    return event.action == MERGED or (
        event.action == RESOLVED and LINKED_BY_REVIEW.fullmatch(event.detail) is not None
    )


def _unmerged_after(
    events: dict[int, pb.AuditEvent], child: str, joined: int, before: int | None
) -> int | None:
    """Where `child`, joined into another at leaf `joined`, was unmerged again (before `before`)."""
    return next(
        (
            e.leaf_index
            for e in sorted(events.values(), key=lambda e: e.leaf_index)
            if e.action == UNMERGED
            and e.outcome == ALLOWED
            and e.contactpoint_id == child
            and e.leaf_index > joined
            and (before is None or e.leaf_index < before)
        ),
        None,
    )


def _with_merged(
    conn: Connection, contactpoint_id: str, before: int | None, seen: set[str]
) -> dict[int, pb.AuditEvent]:
    # The child's own events (before `before`, a leaf index, when given), and those of every child
    # a data manager merged into it before then, up to its merge: that child's record is part of
    # this one now, so who read it is this subject's business too (found by probing: reads through
    # a retired id before its merge were missing). A child unmerged again is left out, its
    # history its own.
    seen.add(contactpoint_id)
    events = {
        e.leaf_index: e
        for e in _events_about(conn, contactpoint_id)
        if before is None or e.leaf_index < before
    }
    for merge in list(events.values()):
        if not _joins(merge) or merge.contactpoint_id != contactpoint_id:
            continue
        for retired in merge.other_contactpoint_ids:
            if retired in seen:
                continue
            theirs = _with_merged(conn, retired, None, set(seen))
            if _unmerged_after(theirs, retired, merge.leaf_index, before) is None:
                events.update({i: e for i, e in theirs.items() if i <= merge.leaf_index})
    return events


def _while_merged(
    conn: Connection, own: dict[int, pb.AuditEvent], contactpoint_id: str, until: int | None, seen: set[str]
) -> dict[int, pb.AuditEvent]:
    """The events of the children `contactpoint_id` was merged into (its `own` events, up to
    `until`), from its merge until it was unmerged: its record was part of theirs then, so whoever
    read them read it (found by probing: reads of the survivor that showed a merged child's name
    were in that child's report neither while merged nor after the unmerge)."""
    found: dict[int, pb.AuditEvent] = {}
    for merge in sorted(own.values(), key=lambda e: e.leaf_index):
        survivor = merge.contactpoint_id
        if (
            not _joins(merge)
            or not survivor
            or survivor in seen
            or contactpoint_id not in merge.other_contactpoint_ids
            or (until is not None and merge.leaf_index >= until)
        ):
            continue
        # Until it was unmerged, or its own window closed (a child unmerged from the survivor
        # takes its record back, whatever the survivor was merged into meanwhile).
        unmerged = _unmerged_after(own, contactpoint_id, merge.leaf_index, until)
        end = unmerged if unmerged is not None else until
        theirs = {
            e.leaf_index: e
            for e in _events_about(conn, survivor)
            if e.leaf_index > merge.leaf_index and (end is None or e.leaf_index < end)
        }
        found.update(theirs)
        found.update(_while_merged(conn, theirs, survivor, end, seen | {contactpoint_id}))
    return found


def accesses(conn: Connection, *, contactpoint_id: str) -> list[Access]:
    """Every recorded access to the child `contactpoint_id`, oldest first: its own, those of the
    children merged into it, up to their merges, and those of the children it was merged into,
    while it was."""
    if problem := contactpoint_id_problem(contactpoint_id):
        raise InvalidArgument([FieldViolation("contactpoint_id", problem)])
    events = _with_merged(conn, contactpoint_id, None, set())
    events.update(_while_merged(conn, events, contactpoint_id, None, {contactpoint_id}))
    return [_access(events[index]) for index in sorted(events)]


def subject_access_report(
    conn: Connection,
    *,
    contactpoint_id: str,
    reader: Reader,
    signer: domain.Signer,
    asked_by: str | None = None,
) -> list[Access]:
    """The report for `contactpoint_id`, run by `reader` at the command line; running it is
    recorded in the log (action AuditReport, severity INFO) before it is returned. `asked_by` is
    whom the reader says it is for: it goes in the event's detail, as their word, while the
    event's actor stays the reader (an operator cannot record a report as somebody else's)."""
    if not reader.actor:
        # A subject-access report says who ran it.
        raise InvalidArgument([FieldViolation("actor", "is required")])
    on_behalf = ""
    if asked_by is not None:
        if problem := _asked_by_problem(asked_by):
            raise InvalidArgument([FieldViolation("actor", problem)])
        # Their name, but not their address or phone number (`redaction`: the log keeps it for ever).
        on_behalf = f"; asked for by {redacted(asked_by.strip())} (their name as the operator gave it)"
    return reading.audited(
        conn,
        reader=reader,
        action=ACTION,
        read=lambda c: accesses(c, contactpoint_id=contactpoint_id),
        describe=lambda found: (
            f"subject-access report: contactpoint_id={contactpoint_id}; accesses: {len(found)}" + on_behalf
        ),
        signer=signer,
        appended_by=COMMAND_LINE,
    )


def _asked_by_problem(name: str) -> str | None:
    """Why `name` cannot be recorded as whom a report was asked for, or None."""
    if not says_something(name):
        return "is required"
    return text_problem(name.strip(), limit=MAX_ACTOR)
