"""Validation of submitted source records and of searches: pure functions that report every
problem at once, one `FieldViolation` per bad field, with full paths such as
`record.name.family_name` or `record.involvements[0].consent_recorded`."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.errors import FieldViolation
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.model import DEFAULT_LIMITS, AgeLimits, FindCriteria
from services.records.names import name_key, postcode_key
from services.records.sensitive import is_sensitive_service

MAX_NAME = 35
MAX_GIVEN_NAMES = 100
MAX_SOURCE_SYSTEM = 64
MAX_SOURCE_RECORD_ID = 128
MAX_REQUEST_ID = 128
MAX_TEXT = 100
MAX_FORMER_NAMES = 20
MAX_CARERS = 20
MAX_INVOLVEMENTS = 50
MAX_ADDRESS_LINES = 6
# Clocks differ a little between a council's system and ours.
AS_OF_CLOCK_SKEW = dt.timedelta(minutes=5)
WILDCARDS = frozenset("*%?_")
# The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
NANOS_PER_SECOND = 1_000_000_000

_POSTCODE = re.compile(r"^(?:[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][ABD-HJLNP-UW-Z]{2}|GIR0AA)$")
_PHONE = re.compile(r"^\+?[0-9(][0-9 ()-]{5,30}$")  # UK formats such as "(0131) 496 0506"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URN = re.compile(r"^[0-9]{6,7}$")
_ODS = re.compile(r"^[A-Z0-9]{3,10}$")
# Apostrophes (straight, curly, backtick), full stop, hyphen-minus and hyphen.
_NAME_PUNCTUATION = frozenset("'\u2019\u2018`.-\u2010")
# An ASCII name with at least one letter and only letters, spaces and name punctuation.
_ASCII_NAME = re.compile(r"[ '`.-]*[A-Za-z][A-Za-z '`.-]*")
_KNOWN_GENDERS = frozenset(child_pb2.Gender.values())


# --- single values ------------------------------------------------------------------------------


def nhs_number_problem(value: str) -> str | None:
    """Why `value` is not an NHS number (10 digits, spaces allowed, mod-11 check digit), or None."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return "must be 10 digits"
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(digits[9]):
        return "has a wrong check digit"
    return None


def postcode_problem(value: str) -> str | None:
    """Why `value` is not shaped like a UK postcode (e.g. "M1 1AE", "SW1A 2AA"), or None."""
    if not value.strip():
        return "is required"
    if not _POSTCODE.match(postcode_key(value)):
        return "must be a UK postcode, e.g. M1 1AE"
    return None


def canonical_postcode(value: str) -> str:
    """A well-formed postcode written the usual way: upper case, one space before the last three."""
    key = postcode_key(value)
    return f"{key[:-3]} {key[-3:]}"


def age_on(date_of_birth: dt.date, today: dt.date) -> int:
    """Age in whole years on `today`."""
    return (
        today.year
        - date_of_birth.year
        - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))
    )


def _has_control(value: str) -> bool:
    # isprintable() is False for every "Other" category (and separators but the space): only
    # then is it worth looking at each character.
    if value.isprintable():
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value)


def text_problem(value: str, *, max_length: int, required: bool = False) -> str | None:
    """Why a free-text field is unacceptable (missing, too long, control characters), or None."""
    if not value.strip():
        return "is required" if required else None
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    if _has_control(value):
        return "must not contain control characters"
    return None


def name_problem(value: str, *, required: bool = False, max_length: int = MAX_NAME) -> str | None:
    """Why a person's name (one field of `PersonName`) is unacceptable, or None."""
    problem = text_problem(value, max_length=max_length, required=required)
    if problem or not value.strip():
        return problem
    if _ASCII_NAME.fullmatch(value):  # nearly every name: letters, spaces and the usual punctuation
        return None
    for ch in value:
        if not (ch.isalpha() or unicodedata.category(ch).startswith(("M", "Zs")) or ch in _NAME_PUNCTUATION):
            return "may contain only letters, spaces, hyphens, apostrophes and full stops"
    if not name_key(value):
        return "must contain a letter"
    return None


def given_names_problem(value: str, *, required: bool = False) -> str | None:
    """Why a space-separated list of given names is unacceptable: each at most 35 characters."""
    problem = name_problem(value, required=required, max_length=MAX_GIVEN_NAMES)
    if problem:
        return problem
    if any(len(part) > MAX_NAME for part in value.split()):
        return f"each given name must be at most {MAX_NAME} characters"
    return None


def search_name_problem(value: str, *, required: bool = False) -> str | None:
    """Why a searched name is unacceptable (punctuation is allowed: matching ignores it), or None."""
    problem = text_problem(value, max_length=MAX_NAME, required=required)
    if problem or not value.strip():
        return problem
    if any(ch in WILDCARDS for ch in value):
        return "must not contain wildcards"
    if not name_key(value):
        return "must contain a letter"
    return None


def request_id_problem(value: str) -> str | None:
    """Why an idempotency key is unacceptable, or None."""
    return text_problem(value, max_length=MAX_REQUEST_ID, required=True)


def date_value(value: Any) -> dt.date | None:
    """A google.type.Date as a Python date, or None when it is not a complete, real date."""
    try:
        return dt.date(value.year, value.month, value.day)
    except (ValueError, OverflowError):  # a month of 13, a day of 0, a year past 9999 or before 1
        return None


def timestamp_value(value: timestamp_pb2.Timestamp) -> dt.datetime | None:
    """A google.protobuf.Timestamp as an aware datetime, or None when it is not a valid one
    (nanos outside [0, 1e9), seconds outside 0001-01-01 to 9999-12-31): checked here rather than
    left to the protobuf runtime, whose versions differ in what they let through."""
    if not (
        0 <= value.nanos < NANOS_PER_SECOND
        and MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS
    ):
        return None
    try:
        return value.ToDatetime(dt.UTC)
    except (ValueError, OverflowError):
        return None


# --- whole messages -----------------------------------------------------------------------------


def strip_strings(message: Message) -> None:
    """Strip surrounding whitespace from every string in `message`, recursively, in place."""
    for field, value in message.ListFields():
        if field.type == field.TYPE_STRING:
            if field.is_repeated:
                stripped = [v.strip() for v in value]
                if stripped != list(value):
                    del value[:]
                    value.extend(stripped)
            elif value != (clean := value.strip()):
                setattr(message, field.name, clean)
        elif field.type == field.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                strip_strings(item)


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
    for i, line in enumerate(address.lines):
        v.add(f"{path}.lines[{i}]", text_problem(line, max_length=MAX_TEXT))
    v.add(f"{path}.town", text_problem(address.town, max_length=64))
    if postcode_required or address.postcode.strip():
        v.add(f"{path}.postcode", postcode_problem(address.postcode))


def _contact(v: _Violations, path: str, phone: str, email: str) -> None:
    if phone.strip() and not _PHONE.match(phone.strip()):
        v.add(f"{path}.phone", "must be a telephone number")
    if email.strip() and (len(email) > 254 or not _EMAIL.match(email.strip())):
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
    strip_strings(r)
    return r


def _problems(r: pb.SourceRecord, *, now: dt.datetime, limits: AgeLimits) -> list[FieldViolation]:
    v = _Violations()
    v.add("record.source_system", text_problem(r.source_system, max_length=MAX_SOURCE_SYSTEM, required=True))
    v.add(
        "record.source_record_id",
        text_problem(r.source_record_id, max_length=MAX_SOURCE_RECORD_ID, required=True),
    )
    _person_name(v, "record.name", r.name, required=True)
    if len(r.former_names) > MAX_FORMER_NAMES:
        v.add("record.former_names", f"must have at most {MAX_FORMER_NAMES} names")
    for i, former in enumerate(r.former_names):
        _optional_person_name(v, f"record.former_names[{i}]", former)

    today = now.date()
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
    for i, carer in enumerate(r.carers):
        path = f"record.carers[{i}]"
        _optional_person_name(v, f"{path}.name", carer.name)
        v.add(f"{path}.relationship", text_problem(carer.relationship, max_length=64))
        _contact(v, path, carer.phone, carer.email)
        _address(v, f"{path}.address", carer.address, postcode_required=False)

    if r.HasField("education_setting"):
        s = r.education_setting
        v.add("record.education_setting.name", text_problem(s.name, max_length=MAX_TEXT))
        if s.urn and not _URN.match(s.urn):
            v.add("record.education_setting.urn", "must be a 6 or 7 digit URN")
        _contact(v, "record.education_setting", s.phone, "")
        _address(v, "record.education_setting.address", s.address, postcode_required=False)
    if r.HasField("gp_practice"):
        g = r.gp_practice
        v.add("record.gp_practice.name", text_problem(g.name, max_length=MAX_TEXT))
        if g.ods_code and not _ODS.match(g.ods_code.upper()):
            v.add("record.gp_practice.ods_code", "must be an ODS code")
        _contact(v, "record.gp_practice", g.phone, "")
        _address(v, "record.gp_practice.address", g.address, postcode_required=False)

    if len(r.involvements) > MAX_INVOLVEMENTS:
        v.add("record.involvements", f"must have at most {MAX_INVOLVEMENTS} involvements")
    for i, inv in enumerate(r.involvements):
        path = f"record.involvements[{i}]"
        v.add(f"{path}.service_name", text_problem(inv.service_name, max_length=MAX_TEXT, required=True))
        v.add(f"{path}.practitioner_name", text_problem(inv.practitioner_name, max_length=70))
        v.add(f"{path}.organisation", text_problem(inv.organisation, max_length=MAX_TEXT))
        _contact(v, path, inv.phone, inv.email)
        start = _optional_date(v, path, inv, "start_date")
        end = _optional_date(v, path, inv, "end_date")
        if start and end and end < start:
            v.add(f"{path}.end_date", "must not be before start_date")
        if (inv.sensitive or is_sensitive_service(inv.service_name)) and not inv.consent_recorded:
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
        if is_sensitive_service(inv.service_name):
            inv.sensitive = True


def validate_find(criteria: FindCriteria) -> list[FieldViolation]:
    """Every problem with a search (CONTRACT §3 FindChild criteria), or an empty list."""
    v = _Violations()
    for name, value, required in (
        ("family_name", criteria.family_name, True),
        ("given_name", criteria.given_name, False),
        ("postcode", criteria.postcode, False),
    ):
        if name == "postcode":
            if any(ch in WILDCARDS for ch in value):
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
            dt.date(*criteria.date_of_birth)
        except (ValueError, OverflowError):
            v.add("date_of_birth", "must be a complete, real date")
    if criteria.gender not in _KNOWN_GENDERS:
        v.add("gender", "is not a known gender")
    return v.items
