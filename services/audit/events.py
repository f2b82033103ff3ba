"""What an audit event may hold, and the events the audit service writes about its own use.

The log keeps whatever it is given for ever, and auditors read it in terminals and reports, so an
event is checked before it is stored: text without control characters (a NUL, an escape sequence
or a bidirectional override could hide or disguise what a line says), enums only by their known
values (an unknown number would be stored as a bare number no reader can name), bounded lengths.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from google.rpc import code_pb2

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.audited import MAX_OTHER_CHILDREN
from contactpoint.platform.auth import Principal
from contactpoint.platform.errors import FieldViolation, InvalidArgument
from contactpoint.platform.ids import contactpoint_id_problem

SEVERITIES = ("INFO", "WARNING", "HIGH")
MAX_TEXT = 1000
MAX_ACTOR = 128
MAX_ROLES = 32
# `appended_by` of the events the audit service and its command line write themselves. Neither can
# be a machine account's name (identity allows only lower-case letters, digits and . _ @ -).
SERVICE_ITSELF = "(audit service)"
COMMAND_LINE = "(audit command line)"
# Unicode categories refused in names and codes: controls (C0, DEL, C1), format characters
# (bidirectional overrides, zero-width characters) and line and paragraph separators.
_REFUSED_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Free text (`detail`) may hold tabs and line breaks, but no other control character.
_ALLOWED_IN_TEXT = frozenset("\t\n\r")
# Names and codes, with their length limits.
_NAMED_FIELDS = (
    ("actor", MAX_ACTOR),
    ("actor_organisation", MAX_TEXT),
    ("action", MAX_TEXT),
    ("outcome", MAX_TEXT),
    ("request_id", MAX_TEXT),
)


def severity_rank(severity: str) -> int:
    """The order of severities: INFO 0, WARNING 1, HIGH 2 (anything else below INFO)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def _refused_character(value: str, *, free_text: bool) -> str | None:
    """The first character `value` may not hold, or None."""
    for ch in value:
        if free_text:
            if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_IN_TEXT:
                return ch
        elif unicodedata.category(ch) in _REFUSED_IN_NAMES:
            return ch
    return None


def text_problem(value: str, *, limit: int, free_text: bool = False) -> str | None:
    """Why `value` cannot be stored as a text field of an event, or None."""
    if len(value) > limit:
        return f"at most {limit} characters"
    ch = _refused_character(value, free_text=free_text)
    if ch is not None:
        allowed = " other than tab and line breaks" if free_text else ""
        return f"must not contain control characters{allowed} (found U+{ord(ch):04X})"
    return None


def validate_event(event: pb.AuditEvent | None) -> None:
    """InvalidArgument (one violation per bad field) unless the event can be stored."""
    problems = event_problems(event, "event")
    if problems:
        raise InvalidArgument(problems)


def validate_events(events: Sequence[pb.AuditEvent], *, most: int) -> None:
    """InvalidArgument unless every one of `events` (at least one, at most `most`) can be stored;
    the violations name each bad event's fields (`events[i].actor`)."""
    if not events:
        raise InvalidArgument([FieldViolation("events", "at least one event is required")])
    if len(events) > most:
        raise InvalidArgument([FieldViolation("events", f"at most {most} events a call")])
    problems = [p for i, event in enumerate(events) for p in event_problems(event, f"events[{i}]")]
    if problems:
        raise InvalidArgument(problems)


def event_problems(event: pb.AuditEvent | None, field: str) -> list[FieldViolation]:
    """Why `event` (sent as the request's `field`) cannot be stored: one violation per bad field."""
    if event is None:
        return [FieldViolation(field, "is required")]
    problems: list[FieldViolation] = []
    for name, limit in _NAMED_FIELDS:
        value = getattr(event, name)
        problem = "is required" if name in ("action", "outcome") and not value else None
        problem = problem or text_problem(value, limit=limit)
        if problem:
            problems.append(FieldViolation(f"{field}.{name}", problem))
    if len(event.actor_roles) > MAX_ROLES:
        problems.append(FieldViolation(f"{field}.actor_roles", f"at most {MAX_ROLES} roles"))
    else:
        role_problems = (text_problem(r, limit=MAX_ACTOR) for r in event.actor_roles)
        if role_problem := next((p for p in role_problems if p), None):
            problems.append(FieldViolation(f"{field}.actor_roles", f"each role: {role_problem}"))
    if problem := text_problem(event.detail, limit=MAX_TEXT, free_text=True):
        problems.append(FieldViolation(f"{field}.detail", problem))
    if event.severity not in SEVERITIES:
        problems.append(FieldViolation(f"{field}.severity", f"one of {', '.join(SEVERITIES)}"))
    if event.contactpoint_id and (problem := contactpoint_id_problem(event.contactpoint_id)):
        problems.append(FieldViolation(f"{field}.contactpoint_id", problem))
    if problem := _others_problem(event):
        problems.append(FieldViolation(f"{field}.other_contactpoint_ids", problem))
    if event.purpose not in child_pb2.AccessPurpose.values():
        problems.append(FieldViolation(f"{field}.purpose", "is not a value of AccessPurpose"))
    if event.status_code not in code_pb2.Code.values():
        problems.append(FieldViolation(f"{field}.status_code", "is not a value of google.rpc.Code"))
    return problems


def _others_problem(event: pb.AuditEvent) -> str | None:
    """Why the other children `event` names cannot be stored (each is indexed, so that the log can
    be searched by them), or None."""
    others = list(event.other_contactpoint_ids)
    if len(others) > MAX_OTHER_CHILDREN:
        return f"at most {MAX_OTHER_CHILDREN} children"
    for value in others:
        if problem := contactpoint_id_problem(value):
            return f"each id: {problem}"
    if len(set(others)) != len(others):
        return "names a child twice"
    if event.contactpoint_id in others:
        return "names the event's contactpoint_id again"
    return None


@dataclass(frozen=True)
class Reader:
    """Someone reading the log: an auditor through the service, or an operator at the command line."""

    actor: str
    organisation: str
    roles: tuple[str, ...]
    request_id: str

    @classmethod
    def of(cls, principal: Principal, *, request_id: str) -> Reader:
        """The reader that a verified token names."""
        return cls(principal.name, principal.organisation, tuple(sorted(principal.roles)), request_id)


def read_event(reader: Reader, *, action: str, detail: str) -> pb.AuditEvent:
    """The event that records one read of the log. A child asked about is named in `detail` only,
    so that reading the log is not listed as an access to that child's record."""
    return pb.AuditEvent(
        actor=reader.actor,
        actor_organisation=reader.organisation,
        actor_roles=reader.roles,
        action=action,
        outcome="ALLOWED",
        request_id=reader.request_id,
        severity="INFO",
        detail=detail,
    )


def refusal_event(caller: Principal, *, action: str, code_name: str, request_id: str) -> pb.AuditEvent:
    """The event that records an authenticated caller refused one of the audit service's RPCs
    (e.g. a practitioner trying to read the log), or whose revoked, expired or suspended token
    was correctly signed (DENIED, as every service records it). Anonymous refusals are not logged
    here: they would let anyone fill the log without a token."""
    denied = code_name in ("PERMISSION_DENIED", "UNAUTHENTICATED")
    return pb.AuditEvent(
        actor=caller.name,
        actor_organisation=caller.organisation,
        actor_roles=sorted(caller.roles),
        action=action,
        outcome="DENIED" if denied else "INVALID",
        status_code=code_pb2.Code.Value(code_name),
        request_id=request_id,
        severity="WARNING",
        detail=(
            "refused: the caller's roles do not allow this"
            if code_name == "PERMISSION_DENIED"
            else f"refused: {code_name}"
        ),
    )
