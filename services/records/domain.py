"""Records' domain: ingesting source records, withdrawing them, and composing one child from its
linked source records for the gateway's single-record reads.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc. The record data is the contract's protobuf (`SourceRecord` in, `Child` out).

A child is never stored as such: it is composed, on every read, from the active source records
linked to it. Today every new source record gets its own child; matching a new record to an
existing child (LINKED across sources, POSSIBLE_MATCH for review) only has to link the source to
another ContactPoint ID.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy import Connection, RowMapping

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.convert import timestamp
from contactpoint.platform.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from contactpoint.platform.ids import contactpoint_id_problem, new_contactpoint_id
from contactpoint.platform.logging import get_logger
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import repository
from services.records.names import (
    given_name_matches,
    is_sensitive_service,
    name_key,
    name_tokens,
    postcode_key,
    similar,
)
from services.records.model import DEFAULT_LIMITS, AgeLimits, FindCriteria, Outcome, Submitted
from services.records.tables import ACTIVE
from services.records.validation import (
    age_on,
    date_value,
    normalise_record,
    request_id_problem,
    text_problem,
    validate_find,
    validate_record,
)

log = get_logger(__name__)

REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
TOO_MANY_MATCHES = "TOO_MANY_MATCHES"
# A fresh random ID collides with an issued one about once in 10^11 draws; ten tries is plenty.
_ID_ATTEMPTS = 10
K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Message)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _content(record: pb.SourceRecord) -> dict[str, Any]:
    return json_format.MessageToDict(record, preserving_proto_field_name=True)


def fingerprint(record: pb.SourceRecord) -> str:
    """SHA-256 of a record's canonical JSON: equal for equal records."""
    canonical = json.dumps(_content(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def content_hash(record: pb.SourceRecord) -> str:
    """The fingerprint of what a record says about the child (everything but `as_of`)."""
    copy = pb.SourceRecord()
    copy.CopyFrom(record)
    copy.ClearField("as_of")
    return fingerprint(copy)


def _require_organisation(organisation: str) -> None:
    if not organisation:
        raise PermissionDenied("the caller belongs to no organisation")


# --- ingestion ----------------------------------------------------------------------------------


def submit(
    conn: Connection,
    *,
    organisation: str,
    request_id: str,
    record: pb.SourceRecord,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> Submitted:
    """Create or update one of `organisation`'s source records (CONTRACT §4 SubmitSourceRecord).

    A retry with the same `request_id` and record returns the first answer and changes nothing;
    the same `request_id` with another record is FailedPrecondition REQUEST_ID_REUSED. An invalid
    record is InvalidArgument with every problem, and nothing is stored. This is the one ingestion
    path: the RPCs and `contactpoint seed` both come through here.
    """
    _require_organisation(organisation)
    now = _now(now)
    violations: list[FieldViolation] = []
    problem = request_id_problem(request_id)
    request_hash = fingerprint(record)
    if problem:
        violations.append(FieldViolation("request_id", problem))
    else:
        prior = repository.submission(conn, organisation=organisation, request_id=request_id)
        if prior is not None:
            if prior["request_hash"] != request_hash:
                raise FailedPrecondition(
                    "this request_id was already used for a different record", REQUEST_ID_REUSED
                )
            return Submitted(prior["contactpoint_id"], Outcome(prior["outcome"]))
    violations += validate_record(record, now=now, limits=limits)
    if violations:
        raise InvalidArgument(violations)

    submitted = _store(conn, organisation=organisation, record=normalise_record(record), now=now)
    repository.insert_submission(
        conn,
        organisation=organisation,
        request_id=request_id,
        request_hash=request_hash,
        contactpoint_id=submitted.contactpoint_id,
        outcome=submitted.outcome.value,
        created_at=now,
    )
    log.info("records.submitted", contactpoint_id=submitted.contactpoint_id, outcome=submitted.outcome.value)
    return submitted


def _store(conn: Connection, *, organisation: str, record: pb.SourceRecord, now: dt.datetime) -> Submitted:
    key = {
        "organisation": organisation,
        "source_system": record.source_system,
        "source_record_id": record.source_record_id,
    }
    chash = content_hash(record)
    as_of = record.as_of.ToDatetime(dt.UTC) if record.HasField("as_of") else None
    existing = repository.source_for_update(conn, **key)

    if existing is None:
        contactpoint_id = _new_child(conn, now=now)
        source_id = uuid.uuid4().hex
        repository.insert_source(
            conn,
            id=source_id,
            **key,
            contactpoint_id=contactpoint_id,
            content=_content(record),
            content_hash=chash,
            as_of=as_of,
            withdrawn=False,
            created_at=now,
            updated_at=now,
        )
        repository.replace_match_keys(conn, source_id, match_key_rows(source_id, contactpoint_id, record))
        return Submitted(contactpoint_id, Outcome.CREATED)

    contactpoint_id = existing["contactpoint_id"]
    held_as_of = _aware(existing["as_of"])
    if not existing["withdrawn"]:
        if existing["content_hash"] == chash:
            if as_of is not None and (held_as_of is None or as_of > held_as_of):
                repository.update_source(conn, existing["id"], as_of=as_of)
            return Submitted(contactpoint_id, Outcome.UNCHANGED)
        if as_of is not None and held_as_of is not None and as_of < held_as_of:
            # An older snapshot than the one held (a late replay): the newer one stands.
            return Submitted(contactpoint_id, Outcome.UNCHANGED)
    repository.update_source(
        conn,
        existing["id"],
        content=_content(record),
        content_hash=chash,
        as_of=as_of,
        withdrawn=False,
        withdrawn_at=None,
        updated_at=now,
    )
    repository.replace_match_keys(
        conn, existing["id"], match_key_rows(existing["id"], contactpoint_id, record)
    )
    repository.touch_child(conn, contactpoint_id, now=now)
    return Submitted(contactpoint_id, Outcome.LINKED)


def _new_child(conn: Connection, *, now: dt.datetime) -> str:
    for _ in range(_ID_ATTEMPTS):
        contactpoint_id = new_contactpoint_id()
        if not repository.child_exists(conn, contactpoint_id):
            repository.insert_child(
                conn,
                contactpoint_id=contactpoint_id,
                status=ACTIVE,
                shielded=False,
                created_at=now,
                updated_at=now,
            )
            return contactpoint_id
    raise RuntimeError("could not draw an unused ContactPoint ID")


def match_key_rows(source_id: str, contactpoint_id: str, record: pb.SourceRecord) -> list[dict[str, Any]]:
    """The rows that make a (valid) source record findable: one per distinct name, the current
    name first, then former names (a former name lacking a part borrows the current one)."""
    current_family = name_key(record.name.family_name)
    current_given = name_tokens(record.name.given_names)
    dob = date_value(record.date_of_birth)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for name in [record.name, *record.former_names]:
        family = (name_key(name.family_name) or current_family)[:128]
        given = " ".join(name_tokens(name.given_names) or current_given)[:512]
        if (family, given) in seen:
            continue
        seen.add((family, given))
        rows.append(
            {
                "source_id": source_id,
                "position": len(rows),
                "contactpoint_id": contactpoint_id,
                "family_key": family,
                "given_keys": given,
                "date_of_birth": dob,
                "postcode_key": postcode_key(record.address.postcode),
                "gender": int(record.gender),
            }
        )
    return rows


def withdraw(
    conn: Connection,
    *,
    organisation: str,
    source_system: str,
    source_record_id: str,
    now: dt.datetime | None = None,
) -> None:
    """Withdraw one of `organisation`'s source records (idempotent). A child whose every source
    is withdrawn is no longer visible. Another organisation's record is PermissionDenied; a
    record no organisation holds is NotFound."""
    _require_organisation(organisation)
    now = _now(now)
    source_system, source_record_id = source_system.strip(), source_record_id.strip()
    violations = [
        FieldViolation(name, problem)
        for name, problem in (
            ("source_system", text_problem(source_system, max_length=64, required=True)),
            ("source_record_id", text_problem(source_record_id, max_length=128, required=True)),
        )
        if problem
    ]
    if violations:
        raise InvalidArgument(violations)
    key = {"organisation": organisation, "source_system": source_system, "source_record_id": source_record_id}
    row = repository.source_for_update(conn, **key)
    if row is None:
        if repository.held_by_another_organisation(conn, **key):
            raise PermissionDenied("a council system may withdraw only its own organisation's records")
        raise NotFound("no such source record")
    if row["withdrawn"]:
        return
    repository.update_source(conn, row["id"], withdrawn=True, withdrawn_at=now, updated_at=now)
    repository.delete_match_keys(conn, row["id"])
    repository.touch_child(conn, row["contactpoint_id"], now=now)
    log.info("records.withdrawn", contactpoint_id=row["contactpoint_id"])


# --- reading one child --------------------------------------------------------------------------


def get_child(
    conn: Connection,
    *,
    contactpoint_id: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> child_pb2.Child:
    """One child's full record (the gateway filters it). NotFound when unknown, archived, past
    the archiving age, or when every source record was withdrawn."""
    problem = contactpoint_id_problem(contactpoint_id)
    if problem:
        raise InvalidArgument([FieldViolation("contactpoint_id", problem)])
    child = _visible_child(conn, contactpoint_id, limits=limits, today=today or _today())
    if child is None:
        raise NotFound("no child has this ContactPoint ID")
    return child


def find_child(
    conn: Connection,
    *,
    criteria: FindCriteria,
    limits: AgeLimits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> child_pb2.Child:
    """The one child matching `criteria` (CONTRACT §3). None is NotFound; more than one is
    FailedPrecondition TOO_MANY_MATCHES, saying nothing about the candidates."""
    violations = validate_find(criteria)
    if violations:
        raise InvalidArgument(violations)
    assert criteria.date_of_birth is not None  # validated above
    family = name_key(criteria.family_name)
    postcode = postcode_key(criteria.postcode) or None
    rows = repository.match_candidates(
        conn,
        date_of_birth=dt.date(*criteria.date_of_birth),
        family_key=None if criteria.fuzzy else family,
        postcode_key=postcode,
        # A search by postcode must never reveal where a shielded child lives.
        exclude_shielded=postcode is not None,
    )
    matched = sorted(
        {
            row["contactpoint_id"]
            for row in rows
            if similar(family, row["family_key"], fuzzy=criteria.fuzzy)
            and (
                not criteria.given_name.strip()
                or given_name_matches(criteria.given_name, row["given_keys"].split(), fuzzy=criteria.fuzzy)
            )
            and (not criteria.gender or row["gender"] == criteria.gender)
        }
    )
    found: list[child_pb2.Child] = []
    for contactpoint_id in matched:
        child = _visible_child(conn, contactpoint_id, limits=limits, today=today or _today())
        if child is not None:
            found.append(child)
        if len(found) > 1:
            break
    log.info("records.find", candidates=len(rows), matches=len(matched), fuzzy=criteria.fuzzy)
    if not found:
        raise NotFound("no child matches")
    if len(found) > 1:
        raise FailedPrecondition("more than one child matches; give more criteria", TOO_MANY_MATCHES)
    return found[0]


def _visible_child(
    conn: Connection, contactpoint_id: str, *, limits: AgeLimits, today: dt.date
) -> child_pb2.Child | None:
    row = repository.child(conn, contactpoint_id)
    if row is None or row["status"] != ACTIVE:
        return None
    sources = _in_order(repository.active_sources(conn, contactpoint_id))
    if not sources:
        return None
    child = compose(
        contactpoint_id,
        sources,
        shielded=bool(row["shielded"]),
        update_time=_aware(row["updated_at"]) or dt.datetime.now(dt.UTC),
    )
    # Archived at 18 (25 when extended) even before the archiving job has run.
    dob = date_value(child.date_of_birth)
    extended = any(s.extended for s in sources)
    if dob is not None and age_on(dob, today) >= limits.limit(extended=extended):
        return None
    return child


def _in_order(rows: Sequence[RowMapping]) -> list[pb.SourceRecord]:
    """Source records oldest first: by `as_of` (or when received), then by when stored."""

    def when(row: RowMapping) -> tuple[dt.datetime, dt.datetime, str]:
        updated = _aware(row["updated_at"])
        assert updated is not None
        return (_aware(row["as_of"]) or updated, updated, str(row["id"]))

    return [
        json_format.ParseDict(row["content"], pb.SourceRecord(), ignore_unknown_fields=True)
        for row in sorted(rows, key=when)
    ]


def _person_key(name: child_pb2.PersonName) -> tuple[str, str]:
    return (" ".join(name_tokens(name.given_names)), name_key(name.family_name))


def _latest(
    sources: Sequence[pb.SourceRecord], present: Callable[[pb.SourceRecord], bool]
) -> pb.SourceRecord | None:
    return next((s for s in reversed(sources) if present(s)), None)


def _merged(items: Iterable[M], key: Callable[[M], K]) -> list[M]:
    """Items with duplicates (by `key`) dropped, the first seen kept."""
    seen: set[K] = set()
    out: list[M] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def compose(
    contactpoint_id: str,
    sources: Sequence[pb.SourceRecord],
    *,
    shielded: bool,
    update_time: dt.datetime,
) -> child_pb2.Child:
    """A child composed from its source records, given oldest first: for each single field the
    latest source that has it wins; former names, carers and involvements are merged, the latest
    source's version of each kept."""
    latest = sources[-1]
    child = child_pb2.Child(contactpoint_id=contactpoint_id, shielded=shielded)
    child.name.CopyFrom(latest.name)
    child.date_of_birth.CopyFrom(latest.date_of_birth)
    child.update_time.CopyFrom(timestamp(update_time))
    if source := _latest(sources, lambda s: s.gender != child_pb2.GENDER_UNSPECIFIED):
        child.gender = source.gender
    if source := _latest(sources, lambda s: s.HasField("address")):
        child.address.CopyFrom(source.address)
    if source := _latest(sources, lambda s: s.HasField("education_setting")):
        child.education_setting.CopyFrom(source.education_setting)
    if source := _latest(sources, lambda s: s.HasField("gp_practice")):
        child.gp_practice.CopyFrom(source.gp_practice)

    newest_first = list(reversed(sources))
    current = _person_key(child.name)
    names = [n for s in newest_first for n in [*s.former_names, s.name]]
    child.former_names.extend(_merged((n for n in names if _person_key(n) != current), _person_key))
    child.carers.extend(
        _merged(
            (c for s in newest_first for c in s.carers),
            lambda c: (_person_key(c.name), c.relationship.casefold()),
        )
    )
    involvements = _merged(
        (i for s in newest_first for i in s.involvements),
        lambda i: (
            name_key(i.service_name),
            name_key(i.organisation),
            (i.start_date.year, i.start_date.month, i.start_date.day),
        ),
    )
    child.involvements.extend(_involvement(i) for i in involvements)
    return child


def _involvement(source: pb.SourceInvolvement) -> child_pb2.Involvement:
    out = child_pb2.Involvement(
        service_name=source.service_name,
        practitioner_name=source.practitioner_name,
        organisation=source.organisation,
        phone=source.phone,
        email=source.email,
        lead_professional=source.lead_professional,
        assessment_held=source.assessment_held,
        # The gateway strips a sensitive involvement down to its dates; we only flag it.
        sensitive=source.sensitive or is_sensitive_service(source.service_name),
    )
    if source.HasField("start_date"):
        out.start_date.CopyFrom(source.start_date)
    if source.HasField("end_date"):
        out.end_date.CopyFrom(source.end_date)
    return out
