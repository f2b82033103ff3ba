"""Validation of submitted source records and of searches: pure functions that report every
problem at once, one `FieldViolation` per bad field, with full paths such as
`record.name.family_name` or `record.involvements[0].consent_recorded` (each value checked by
`values`)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from google.protobuf.message import Message

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.errors import FieldViolation
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.model import DEFAULT_LIMITS, AgeLimits, FindCriteria
from services.records.sensitive import is_sensitive_involvement, is_sensitive_service
from services.records.values import (
    age_on,
    canonical_postcode,
    date_value,
    day_in_england,
    given_names_problem,
    has_wildcard,
    name_problem,
    nhs_number_problem,
    postcode_problem,
    search_name_problem,
    text_problem,
    timestamp_value,
)

MAX_SOURCE_SYSTEM = 64
MAX_SOURCE_RECORD_ID = 128
MAX_TEXT = 100
MAX_FORMER_NAMES = 20
MAX_CARERS = 20
MAX_INVOLVEMENTS = 50
MAX_ADDRESS_LINES = 6
# Clocks differ a little between a council's system and ours.
AS_OF_CLOCK_SKEW = dt.timedelta(minutes=5)

_PHONE = re.compile(r"^\+?[0-9(][0-9 ()-]{5,30}$")  # UK formats such as "(0131) 496 0506"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URN = re.compile(r"^[0-9]{6,7}$")
_ODS = re.compile(r"^[A-Z0-9]{3,10}$")
_KNOWN_GENDERS = frozenset(child_pb2.Gender.values())


def tidy_text(value: str) -> str:
    """A string as records stores it: stripped, and composed (NFC)."""
    value = value.strip()
    return (
        value
        if value.isascii() or unicodedata.is_normalized("NFC", value)
        else unicodedata.normalize("NFC", value)
    )


def tidy_strings(message: Message) -> None:
    """Strip surrounding whitespace from every string in `message`, recursively, in place, and
    write each in composed form (NFC): "Zoë" sent with its diaeresis as a separate mark is the
    same name, not a change to store and show as sent (found by probing)."""
    for field, value in message.ListFields():
        if field.type == field.TYPE_STRING:
            if field.is_repeated:
                tidied = [tidy_text(v) for v in value]
                if tidied != list(value):
                    del value[:]
                    value.extend(tidied)
            elif value != (clean := tidy_text(value)):
                setattr(message, field.name, clean)
        elif field.type == field.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                tidy_strings(item)


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, path: str, problem: str | None) -> None:
        if problem:
            self.items.append(FieldViolation(path, problem))


def _person_name(v: _Violations, path: str, name: child_pb2.PersonName, *, required: bool) -> None:
    v.add(f"{path}.family_name", name_problem(name.family_name, required=required))
    v.add(f"{path}.given_names", given_names_problem(name.given_names, required=required))


def _optional_person_name(v: _Violations, path: str, name: child_pb2.PersonName) -> None:
    if not (name.family_name.strip() or name.given_names.strip()):
        v.add(path, "is required")
        return
    _person_name(v, path, name, required=False)


def _address(v: _Violations, path: str, address: child_pb2.Address, *, postcode_required: bool) -> None:
    if len(address.lines) > MAX_ADDRESS_LINES:
        v.add(f"{path}.lines", f"must have at most {MAX_ADDRESS_LINES} lines")
    for i, line in enumerate(address.lines[:MAX_ADDRESS_LINES]):  # each of as many as may be
        v.add(f"{path}.lines[{i}]", text_problem(line, max_length=MAX_TEXT))
    v.add(f"{path}.town", text_problem(address.town, max_length=64))
    if postcode_required or address.postcode.strip():
        v.add(f"{path}.postcode", postcode_problem(address.postcode))


def _contact(v: _Violations, path: str, phone: str, email: str) -> None:
    if phone.strip() and not _PHONE.fullmatch(phone.strip()):
        v.add(f"{path}.phone", "must be a telephone number")
    if email.strip() and (len(email) > 254 or not _EMAIL.fullmatch(email.strip())):
        v.add(f"{path}.email", "must be an email address")


def _optional_date(v: _Violations, path: str, message: Message, name: str) -> dt.date | None:
    if not message.HasField(name):
        return None
    value = date_value(getattr(message, name))
    if value is None:
        v.add(f"{path}.{name}", "must be a complete, real date")
    return value


def validate_record(
    record: pb.SourceRecord, *, now: dt.datetime, limits: AgeLimits = DEFAULT_LIMITS
) -> list[FieldViolation]:
    """Every problem with a submitted record (CONTRACT §4 rules), or an empty list."""
    return _problems(_stripped(record), now=now, limits=limits)


def checked_record(
    record: pb.SourceRecord, *, now: dt.datetime, limits: AgeLimits = DEFAULT_LIMITS
) -> tuple[pb.SourceRecord | None, list[FieldViolation]]:
    """`validate_record` and `normalise_record` in one pass (ingestion's hot path): the record as
    it is stored, or None and every problem."""
    r = _stripped(record)
    problems = _problems(r, now=now, limits=limits)
    if problems:
        return None, problems
    _normalise(r)
    return r, []


def _stripped(record: pb.SourceRecord) -> pb.SourceRecord:
    r = pb.SourceRecord()
    r.CopyFrom(record)
    # Fields the contract does not name are no field of ours: dropped before anything is checked
    # or stored (found by probing: text in an unknown field of a name or a carer's name passed
    # every check, was stored, and was shown even in a shielded child's view).
    r.DiscardUnknownFields()
    tidy_strings(r)
    # An optional date set but left empty (`Date{}`, as some builders send an unset field) is no
    # date, as an empty date of birth is a missing one.
    _clear_empty_date(r, "date_of_death")
    for involvement in r.involvements:
        _clear_empty_date(involvement, "start_date")
        _clear_empty_date(involvement, "end_date")
    return r


def _clear_empty_date(message: Message, name: str) -> None:
    if message.HasField(name) and getattr(message, name).ByteSize() == 0:
        message.ClearField(name)


def _problems(r: pb.SourceRecord, *, now: dt.datetime, limits: AgeLimits) -> list[FieldViolation]:
    v = _Violations()
    v.add(
        "record.source_system",
        text_problem(r.source_system, max_length=MAX_SOURCE_SYSTEM, required=True, in_column=True),
    )
    v.add(
        "record.source_record_id",
        text_problem(r.source_record_id, max_length=MAX_SOURCE_RECORD_ID, required=True, in_column=True),
    )
    _person_name(v, "record.name", r.name, required=True)
    if len(r.former_names) > MAX_FORMER_NAMES:
        v.add("record.former_names", f"must have at most {MAX_FORMER_NAMES} names")
    for i, former in enumerate(r.former_names[:MAX_FORMER_NAMES]):
        _optional_person_name(v, f"record.former_names[{i}]", former)

    today = day_in_england(now)
    if not r.HasField("date_of_birth") or (
        r.date_of_birth.year,
        r.date_of_birth.month,
        r.date_of_birth.day,
    ) == (
        0,
        0,
        0,
    ):
        v.add("record.date_of_birth", "is required")
    else:
        dob = date_value(r.date_of_birth)
        limit = limits.limit(extended=r.extended)
        if dob is None:
            v.add("record.date_of_birth", "must be a complete, real date")
        elif dob > today:
            v.add("record.date_of_birth", "must not be in the future")
        elif age_on(dob, today) >= limit:
            kind = "an extended record" if r.extended else "a child"
            v.add("record.date_of_birth", f"{kind} must be under {limit}")

    died = _optional_date(v, "record", r, "date_of_death")
    if died is not None:
        born = date_value(r.date_of_birth)
        if died > today:
            v.add("record.date_of_death", "must not be in the future")
        elif born is not None and died < born:
            v.add("record.date_of_death", "must not be before date_of_birth")

    if r.gender not in _KNOWN_GENDERS:
        v.add("record.gender", "is not a known gender")
    _address(v, "record.address", r.address, postcode_required=True)

    if len(r.carers) > MAX_CARERS:
        v.add("record.carers", f"must have at most {MAX_CARERS} carers")
    for i, carer in enumerate(r.carers[:MAX_CARERS]):
        path = f"record.carers[{i}]"
        _optional_person_name(v, f"{path}.name", carer.name)
        v.add(f"{path}.relationship", text_problem(carer.relationship, max_length=64))
        _contact(v, path, carer.phone, carer.email)
        _address(v, f"{path}.address", carer.address, postcode_required=False)

    if r.HasField("education_setting"):
        s = r.education_setting
        v.add("record.education_setting.name", text_problem(s.name, max_length=MAX_TEXT))
        if s.urn and not _URN.fullmatch(s.urn):
            v.add("record.education_setting.urn", "must be a 6 or 7 digit URN")
        _contact(v, "record.education_setting", s.phone, "")
        _address(v, "record.education_setting.address", s.address, postcode_required=False)
    if r.HasField("gp_practice"):
        g = r.gp_practice
        v.add("record.gp_practice.name", text_problem(g.name, max_length=MAX_TEXT))
        if g.ods_code and not _ODS.fullmatch(g.ods_code.upper()):
            v.add("record.gp_practice.ods_code", "must be an ODS code")
        _contact(v, "record.gp_practice", g.phone, "")
        _address(v, "record.gp_practice.address", g.address, postcode_required=False)

    if len(r.involvements) > MAX_INVOLVEMENTS:
        v.add("record.involvements", f"must have at most {MAX_INVOLVEMENTS} involvements")
    for i, inv in enumerate(r.involvements[:MAX_INVOLVEMENTS]):
        path = f"record.involvements[{i}]"
        service_problem = text_problem(inv.service_name, max_length=MAX_TEXT, required=True)
        v.add(f"{path}.service_name", service_problem)
        v.add(f"{path}.practitioner_name", text_problem(inv.practitioner_name, max_length=70))
        v.add(f"{path}.organisation", text_problem(inv.organisation, max_length=MAX_TEXT))
        _contact(v, path, inv.phone, inv.email)
        start = _optional_date(v, path, inv, "start_date")
        end = _optional_date(v, path, inv, "end_date")
        if start and end and end < start:
            v.add(f"{path}.end_date", "must not be before start_date")
        # A name is read for a sensitive service only once it is known to be valid: reading costs
        # more than linear time in its length (found by probing: eight 200 kB names held the
        # service's every thread for 40 s before their INVALID_ARGUMENT).
        sensitive = inv.sensitive or (service_problem is None and is_sensitive_service(inv.service_name))
        if sensitive and not inv.consent_recorded:
            v.add(f"{path}.consent_recorded", "is required for a sensitive service")

    if r.nhs_number:
        v.add("record.nhs_number", nhs_number_problem(r.nhs_number))
    if r.HasField("as_of"):
        as_of = timestamp_value(r.as_of)
        if as_of is None:
            v.add("record.as_of", "must be a valid time")
        elif as_of > now + AS_OF_CLOCK_SKEW:
            v.add("record.as_of", "must not be in the future")
    return v.items


def normalise_record(record: pb.SourceRecord) -> pb.SourceRecord:
    """A valid record as it is stored: strings stripped, postcodes and NHS number in their usual
    form, and any involvement with a clearly sensitive service name marked sensitive."""
    r = _stripped(record)
    _normalise(r)
    return r


def _normalise(r: pb.SourceRecord) -> None:
    addresses = [r.address] + [c.address for c in r.carers]
    addresses += [r.education_setting.address, r.gp_practice.address]
    for address in addresses:
        if address.postcode:
            address.postcode = canonical_postcode(address.postcode)
    r.nhs_number = r.nhs_number.replace(" ", "")
    if r.HasField("gp_practice"):
        r.gp_practice.ods_code = r.gp_practice.ods_code.upper()
    for inv in r.involvements:
        if is_sensitive_involvement(inv.service_name, inv.organisation, inv.practitioner_name):
            inv.sensitive = True


def validate_find(criteria: FindCriteria, *, today: dt.date | None = None) -> list[FieldViolation]:
    """Every problem with a search (CONTRACT §3 FindChild criteria), or an empty list; a date of
    birth after `today` (when given) is one."""
    v = _Violations()
    for name, value, required in (
        ("family_name", criteria.family_name, True),
        ("given_name", criteria.given_name, False),
        ("postcode", criteria.postcode, False),
    ):
        if name == "postcode":
            if has_wildcard(value):
                v.add(name, "must not contain wildcards")
            elif value.strip():
                v.add(name, postcode_problem(value))
        else:
            v.add(name, search_name_problem(value, required=required))
    if not criteria.given_name.strip() and not criteria.postcode.strip():
        v.add("given_name", "given_name or postcode is required")
    if criteria.date_of_birth is None or criteria.date_of_birth == (0, 0, 0):
        v.add("date_of_birth", "is required")
    else:
        try:
            born = dt.date(*criteria.date_of_birth)
        except (ValueError, OverflowError):
            v.add("date_of_birth", "must be a complete, real date")
        else:
            if today is not None and born > today:
                v.add("date_of_birth", "must not be in the future")
    if criteria.gender not in _KNOWN_GENDERS:
        v.add("gender", "is not a known gender")
    return v.items
