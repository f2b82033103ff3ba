"""Validation of source records and searches: pure functions, property-tested. Every problem is
reported at once, one violation per bad field, with the field's full path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.model import AgeLimits, FindCriteria
from services.records.validation import (
    age_on,
    canonical_postcode,
    nhs_number_problem,
    normalise_record,
    postcode_problem,
    validate_find,
    validate_record,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèëáöüçñ"

names = st.text(alphabet=LETTERS, min_size=1, max_size=12).map(str.capitalize)
given_names = st.lists(names, min_size=1, max_size=3).map(" ".join)
postcodes = st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][ABD-HJLNP-UW-Z]{2}\Z")
dobs = st.dates(min_value=TODAY - dt.timedelta(days=365 * 17), max_value=TODAY)


@st.composite
def nhs_numbers(draw: st.DrawFn) -> str:
    """Valid NHS numbers (the mod-11 check digit is never 10)."""
    body = draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11
    assume(check != 10)
    return body + str(0 if check == 11 else check)


@st.composite
def valid_records(draw: st.DrawFn) -> pb.SourceRecord:
    """Records that satisfy every rule."""
    born = draw(dobs)
    record = pb.SourceRecord(
        source_system=draw(st.sampled_from(["social-care", "education", "health"])),
        source_record_id=draw(st.text(alphabet="0123456789ABCDEF-", min_size=1, max_size=20)),
        name=child_pb2.PersonName(given_names=draw(given_names), family_name=draw(names)),
        former_names=draw(st.lists(st.builds(child_pb2.PersonName, family_name=names), max_size=2)),
        gender=draw(st.sampled_from(list(child_pb2.Gender.values()))),
        address=child_pb2.Address(lines=["1 High Street"], postcode=draw(postcodes)),
        involvements=[
            pb.SourceInvolvement(service_name="Youth Offending Team"),
            pb.SourceInvolvement(
                service_name=draw(st.sampled_from(["CAMHS", "Sexual Health", "Drug and Alcohol Team"])),
                sensitive=draw(st.booleans()),
                consent_recorded=True,
            ),
        ],
        nhs_number=draw(st.one_of(st.just(""), nhs_numbers())),
    )
    record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = (
        born.year,
        born.month,
        born.day,
    )
    return record


@settings(max_examples=150, deadline=None)
@given(valid_records())
def test_valid_records_have_no_violations(record: pb.SourceRecord) -> None:
    assert validate_record(record, now=NOW) == []
    normalised = normalise_record(record)
    assert validate_record(normalised, now=NOW) == []
    assert all(i.sensitive for i in normalised.involvements[1:])


def _breakers() -> dict[str, Callable[[pb.SourceRecord], None]]:
    def nested(path: str, value: object) -> Callable[[pb.SourceRecord], None]:
        def apply(record: pb.SourceRecord) -> None:
            *parents, leaf = path.split(".")
            target: object = record
            for p in parents:
                target = getattr(target, p)
            setattr(target, leaf, value)

        return apply

    def future_dob(record: pb.SourceRecord) -> None:
        record.date_of_birth.year = TODAY.year + 1

    def unconsented(record: pb.SourceRecord) -> None:
        record.involvements[1].consent_recorded = False

    def future_as_of(record: pb.SourceRecord) -> None:
        record.as_of.FromDatetime(NOW + dt.timedelta(days=1))

    def bad_former(record: pb.SourceRecord) -> None:
        record.former_names.add()

    return {
        "record.source_system": nested("source_system", " "),
        "record.source_record_id": nested("source_record_id", "x" * 129),
        "record.name.family_name": nested("name.family_name", "A" * 36),
        "record.name.given_names": nested("name.given_names", "Tab\tName"),
        "record.date_of_birth": future_dob,
        "record.address.postcode": nested("address.postcode", "12345"),
        "record.nhs_number": nested("nhs_number", "1234567890"),
        "record.involvements[1].consent_recorded": unconsented,
        "record.gender": nested("gender", 42),
        "record.as_of": future_as_of,
        "record.former_names[0]": bad_former,
    }


BREAKERS = _breakers()


@settings(max_examples=150, deadline=None)
@given(valid_records(), st.sets(st.sampled_from(sorted(BREAKERS)), min_size=1))
def test_every_broken_field_is_reported_at_once(record: pb.SourceRecord, broken: set[str]) -> None:
    del record.former_names[:]
    for field in broken:
        BREAKERS[field](record)
    found = validate_record(record, now=NOW)
    assert {v.field for v in found} == broken
    assert len(found) == len(broken), "one violation per bad field"


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=50),
    st.text(max_size=50),
    st.text(max_size=12),
    st.text(max_size=20),
    st.text(max_size=20),
)
def test_arbitrary_text_never_crashes(
    family: str, given_: str, postcode: str, nhs: str, service: str
) -> None:
    record = pb.SourceRecord(
        source_system="x",
        source_record_id="1",
        name=child_pb2.PersonName(given_names=given_, family_name=family),
        address=child_pb2.Address(postcode=postcode),
        nhs_number=nhs,
        involvements=[pb.SourceInvolvement(service_name=service)],
    )
    record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = 2020, 1, 1
    fields = {v.field for v in validate_record(record, now=NOW)}
    assert fields <= {
        "record.name.family_name",
        "record.name.given_names",
        "record.address.postcode",
        "record.nhs_number",
        "record.involvements[0].service_name",
        "record.involvements[0].consent_recorded",
    }


@given(nhs_numbers(), st.integers(0, 9), st.integers(1, 9))
def test_nhs_check_digit_catches_every_single_digit_error(good: str, pos: int, delta: int) -> None:
    assert nhs_number_problem(good) is None
    assert nhs_number_problem(f"{good[:3]} {good[3:6]} {good[6:]}") is None
    bad = good[:pos] + str((int(good[pos]) + delta) % 10) + good[pos + 1 :]
    assert nhs_number_problem(bad) is not None


def test_nhs_number_shapes() -> None:
    assert nhs_number_problem("9434765919") is None
    assert nhs_number_problem("9434765918") == "has a wrong check digit"
    assert nhs_number_problem("943476591") == "must be 10 digits"
    assert nhs_number_problem("94347659１9") == "must be 10 digits"  # noqa: RUF001 (a full-width digit)


@given(postcodes)
def test_postcodes_normalise_to_their_usual_form(postcode: str) -> None:
    assert postcode_problem(postcode) is None
    canonical = canonical_postcode(f"  {postcode.lower()} ")
    assert canonical == canonical.upper() and canonical.count(" ") == 1 and len(canonical.split()[1]) == 3
    assert canonical_postcode(canonical) == canonical


@pytest.mark.parametrize("postcode", ["M1 1AE", "SW1A 2AA", "b33 8th", "CR2 6XH", "DN55 1PT", "GIR 0AA"])
def test_real_postcodes(postcode: str) -> None:
    assert postcode_problem(postcode) is None


@pytest.mark.parametrize("postcode", ["", "12345", "M1", "M1 1AEX", "SW1A-2AA", "M1 1CI", "ZZZZ 1AA"])
def test_malformed_postcodes(postcode: str) -> None:
    assert postcode_problem(postcode) is not None


def test_age_limits_and_extended_records() -> None:
    def record(years_old: int, *, extended: bool = False) -> pb.SourceRecord:
        r = pb.SourceRecord(
            source_system="s",
            source_record_id="1",
            name=child_pb2.PersonName(given_names="Sam", family_name="Lee"),
            address=child_pb2.Address(postcode="M1 1AE"),
            extended=extended,
        )
        # Born exactly `years_old` years ago today: that birthday has been reached.
        r.date_of_birth.year, r.date_of_birth.month, r.date_of_birth.day = (
            TODAY.year - years_old,
            TODAY.month,
            TODAY.day,
        )
        return r

    assert validate_record(record(17), now=NOW) == []
    assert [v.field for v in validate_record(record(18), now=NOW)] == ["record.date_of_birth"]
    assert validate_record(record(24, extended=True), now=NOW) == []
    assert [v.field for v in validate_record(record(25, extended=True), now=NOW)] == ["record.date_of_birth"]
    assert validate_record(record(20), now=NOW, limits=AgeLimits(max_age_years=21)) == []
    assert age_on(dt.date(2010, 6, 2), TODAY) == 15 and age_on(dt.date(2010, 6, 1), TODAY) == 16


def test_sensitive_involvement_needs_consent_even_when_only_its_name_says_so() -> None:
    record = pb.SourceRecord(
        source_system="s",
        source_record_id="1",
        name=child_pb2.PersonName(given_names="Sam", family_name="Lee"),
        address=child_pb2.Address(postcode="M1 1AE"),
        involvements=[
            pb.SourceInvolvement(service_name="Educational Psychology"),
            pb.SourceInvolvement(service_name="Young People's Substance Misuse Service"),
            pb.SourceInvolvement(service_name="Health Visiting", sensitive=True),
        ],
    )
    record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = 2020, 1, 1
    assert [v.field for v in validate_record(record, now=NOW)] == [
        "record.involvements[1].consent_recorded",
        "record.involvements[2].consent_recorded",
    ]


# --- searches ------------------------------------------------------------------------------------


def _criteria(**overrides: object) -> FindCriteria:
    values: dict[str, object] = {
        "family_name": "Okafor",
        "given_name": "Amelia",
        "date_of_birth": (2015, 3, 14),
    }
    return FindCriteria(**{**values, **overrides})  # type: ignore[arg-type]


def test_find_criteria() -> None:
    assert validate_find(_criteria()) == []
    assert validate_find(_criteria(given_name="", postcode="M1 1AE")) == []
    assert validate_find(_criteria(family_name="  O'Brien-Smith ", given_name="Zoë")) == []

    def fields(**overrides: object) -> set[str]:
        return {v.field for v in validate_find(_criteria(**overrides))}

    assert fields(family_name="") == {"family_name"}
    assert fields(given_name="", postcode="") == {"given_name"}
    assert fields(date_of_birth=None) == {"date_of_birth"}
    assert fields(date_of_birth=(0, 0, 0)) == {"date_of_birth"}
    assert fields(date_of_birth=(2015, 2, 29)) == {"date_of_birth"}
    assert fields(postcode="not a postcode") == {"postcode"}
    assert fields(gender=9) == {"gender"}
    assert fields(family_name="O" * 36, given_name="A" * 36) == {"family_name", "given_name"}
    assert fields(family_name="", given_name="", date_of_birth=None) == {
        "family_name",
        "given_name",
        "date_of_birth",
    }


@given(
    st.text(alphabet=LETTERS + " '-", max_size=20),
    st.sampled_from("*%?_"),
    st.text(alphabet=LETTERS, max_size=10),
    st.sampled_from(["family_name", "given_name", "postcode"]),
)
def test_wildcards_are_always_rejected(before: str, wildcard: str, after: str, field: str) -> None:
    value = before + wildcard + after
    found = validate_find(_criteria(**{field: value}))
    assert field in {v.field for v in found}
