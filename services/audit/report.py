"""The subject-access report: every recorded access to one child's record, oldest first.

An access is an event that names the child, as its `contactpoint_id` or among its
`other_contactpoint_ids`: reads through the gateway, allowed or refused (a read through a retired
id is the survivor's access too), and data managers' actions (a review task shows two children, a
merge changes two), and those of every child merged into it, up to the merge (unless it was
unmerged again). Reads of the audit log about the child (ListEvents, earlier reports) name it in
their detail only, so they are not listed. The report is produced from
the hashed leaf data, not from the columns kept for filtering, in log order (the audit service
stamps each event's time as it appends it, so that is also time order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.errors import FieldViolation, InvalidArgument
from contactpoint.platform.ids import contactpoint_id_problem
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
UNMERGED = "UnmergeChildren"
ALLOWED = "ALLOWED"


def _events_about(conn: Connection, contactpoint_id: str) -> list[pb.AuditEvent]:
    return [
        leafcodec.decode(data, index)
        for index, data in repository.leaves_about(conn, contactpoint_id=contactpoint_id)
    ]


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
        if merge.action != MERGED or merge.outcome != ALLOWED or merge.contactpoint_id != contactpoint_id:
            continue
        for retired in merge.other_contactpoint_ids:
            if retired in seen:
                continue
            theirs = _with_merged(conn, retired, None, set(seen))
            unmerged = any(
                e.action == UNMERGED
                and e.outcome == ALLOWED
                and e.contactpoint_id == retired
                and e.leaf_index > merge.leaf_index
                and (before is None or e.leaf_index < before)
                for e in theirs.values()
            )
            if not unmerged:
                events.update({i: e for i, e in theirs.items() if i <= merge.leaf_index})
    return events


def accesses(conn: Connection, *, contactpoint_id: str) -> list[Access]:
    """Every recorded access to the child `contactpoint_id`, oldest first: its own, and those of
    the children merged into it, up to their merges."""
    if problem := contactpoint_id_problem(contactpoint_id):
        raise InvalidArgument([FieldViolation("contactpoint_id", problem)])
    events = _with_merged(conn, contactpoint_id, None, set())
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
        on_behalf = f"; asked for by {asked_by.strip()} (their name as the operator gave it)"
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
