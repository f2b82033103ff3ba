"""Validation of source records and searches: pure functions, property-tested. Every problem is
reported at once, one violation per bad field, with the field's full path."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FieldViolation
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import validation
from services.records.main import MIGRATIONS, build
from services.records.model import AgeLimits, FindCriteria
from services.records.settings import RecordsSettings
from services.records.validation import normalise_record, validate_find, validate_record
from services.records.values import (
    age_on,
    canonical_postcode,
    day_in_england,
    given_names_problem,
    name_problem,
    nhs_number_problem,
    postcode_problem,
    search_name_problem,
)
from tests.conftest import DatabaseFactory
from tests.harness import platform_account, records_keys, running_service
from tests.platform.probe import MALFORMED
from tests.services.records.conftest import Services, World, make_record, status_violations, violations

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


@pytest.mark.parametrize(
    "postcode", ["M1 1AE", "SW1A 2AA", "b33 8th", "CR2 6XH", "DN55 1PT", "GIR 0AA", "AB1 2CD", "M1 1CI"]
)
def test_real_postcodes(postcode: str) -> None:
    assert postcode_problem(postcode) is None


@pytest.mark.parametrize("postcode", ["", "12345", "M1", "M1 1AEX", "SW1A-2AA", "M1 1C1", "ZZZZ 1AA"])
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


# The wildcards, and the same in full width and small forms (found by probing: "Okafor\uff0a" found
# Okafor, the full-width asterisk folded away as punctuation by matching).
WILDCARD_FORMS = "*%?_" + "\uff0a\uff05\uff1f\uff3f" + "\ufe61\ufe6a\ufe56\ufe4d"


@given(
    st.text(alphabet=LETTERS + " '-", max_size=20),
    st.sampled_from(WILDCARD_FORMS),
    st.text(alphabet=LETTERS, max_size=10),
    st.sampled_from(["family_name", "given_name", "postcode"]),
)
def test_wildcards_are_always_rejected(before: str, wildcard: str, after: str, field: str) -> None:
    value = before + wildcard + after
    found = validate_find(_criteria(**{field: value}))
    assert field in {v.field for v in found}


# --- times and dates out of range ----------------------------------------------------------------

# google.protobuf.Timestamp allows 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, with
# nanos in [0, 1e9): anything else is not a time at all.
BAD_TIMESTAMPS = [
    (0, -1),
    (0, 1_000_000_000),
    (1_700_000_000, -999_999_999),
    (1_700_000_000, 2**31 - 1),
    (253_402_300_800, 0),
    (-62_135_596_801, 0),
    (2**63 - 1, 0),
    (-(2**63), 0),
]
# google.type.Date parts that are no real date (0/0/0 is "not given", a year alone is partial).
BAD_DATES = [
    (2015, 13, 1),
    (2015, 0, 14),
    (2015, 3, 32),
    (2015, 3, 0),
    (2015, 2, 29),
    (2015, -1, 14),
    (2015, 3, -1),
    (-5, 3, 14),
    (0, 3, 14),
    (10_000, 3, 14),
    (2**31 - 1, 2**31 - 1, 2**31 - 1),
    (-(2**31), 1, 1),
    (2015, 0, 0),
]


def _dated_record(born: dt.date = dt.date(2019, 3, 14)) -> pb.SourceRecord:
    record = pb.SourceRecord(
        source_system="s",
        source_record_id="1",
        name=child_pb2.PersonName(given_names="Sam", family_name="Lee"),
        address=child_pb2.Address(postcode="M1 1AE"),
        involvements=[pb.SourceInvolvement(service_name="Youth Offending Team")],
    )
    record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = (
        born.year,
        born.month,
        born.day,
    )
    return record


def _set_date(target: Any, parts: tuple[int, int, int]) -> None:
    target.year, target.month, target.day = parts


def test_out_of_range_as_of_is_a_violation_of_as_of() -> None:
    for seconds, nanos in BAD_TIMESTAMPS:
        record = _dated_record()
        record.as_of.seconds, record.as_of.nanos = seconds, nanos
        assert validate_record(record, now=NOW) == [FieldViolation("record.as_of", "must be a valid time")]
    # The very first and a recent instant are fine; the very last one is in the future.
    for seconds, nanos, problems in (
        (-62_135_596_800, 0, []),
        (int(NOW.timestamp()) - 60, 999_999_999, []),
        (253_402_300_799, 999_999_999, [FieldViolation("record.as_of", "must not be in the future")]),
    ):
        record = _dated_record()
        record.as_of.seconds, record.as_of.nanos = seconds, nanos
        assert validate_record(record, now=NOW) == problems


DATE_FIELDS: dict[str, Callable[[pb.SourceRecord], Any]] = {
    "record.date_of_birth": lambda r: r.date_of_birth,
    "record.date_of_death": lambda r: r.date_of_death,
    "record.involvements[0].start_date": lambda r: r.involvements[0].start_date,
    "record.involvements[0].end_date": lambda r: r.involvements[0].end_date,
}


@pytest.mark.parametrize("field", sorted(DATE_FIELDS))
def test_out_of_range_dates_are_violations_of_their_field(field: str) -> None:
    for parts in BAD_DATES:
        record = _dated_record()
        _set_date(DATE_FIELDS[field](record), parts)
        assert [v.field for v in validate_record(record, now=NOW)] == [field], parts
    # And the same dates are fine when real.
    record = _dated_record()
    _set_date(DATE_FIELDS[field](record), (2019, 3, 14))
    assert validate_record(record, now=NOW) == []


# --- over gRPC: the records service answers them INVALID_ARGUMENT, never UNKNOWN or INTERNAL ----


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw_records(
    services: Services, module_databases: DatabaseFactory
) -> AsyncIterator[tuple[grpc.aio.Channel, str]]:
    """A records service of this module's own, to send raw bytes to: (channel, database URL).
    (It verifies the same identity's tokens as the module's records service.)"""
    url = module_databases.new("records_raw")
    settings = RecordsSettings.model_validate(
        {
            "listen": "127.0.0.1:0",
            "identity_target": services.identity_target,
            "database_url": url,
            **records_keys(url),
            **platform_account(services.identity_url, "records"),
        }
    )
    async with (
        running_service("records", MIGRATIONS, build, settings) as (_, target),
        grpc.aio.insecure_channel(target) as channel,
    ):
        yield channel, url


def _source_records(url: str) -> int:
    db = Database(url)
    try:
        return int(db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM source_records")).scalar_one()))
    finally:
        db.dispose()


RPC = "/contactpoint.records.v1.RecordsService/"
NOT_A_REQUEST = "is not a valid contactpoint.records.v1.SubmitSourceRecordRequest message"


@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_payloads_are_invalid_argument(
    world: World, raw_records: tuple[grpc.aio.Channel, str]
) -> None:
    channel, _ = raw_records
    submit = channel.unary_unary(RPC + "SubmitSourceRecord")
    for payload in MALFORMED:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await submit(payload, metadata=world.council_a)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (payload, bad.value)
        assert violations(bad.value) == {"request": NOT_A_REQUEST}
    good = pb.SubmitSourceRecordRequest(record=world.record("raw-1"), request_id=world.id("raw-1"))
    answer = pb.SubmitSourceRecordResponse.FromString(
        await submit(good.SerializeToString(), metadata=world.council_a)
    )
    assert answer.outcome == pb.MATCH_OUTCOME_CREATED


@pytest.mark.asyncio(loop_scope="module")
async def test_a_malformed_frame_is_answered_in_its_place_and_the_stream_goes_on(
    world: World, raw_records: tuple[grpc.aio.Channel, str]
) -> None:
    """One bad record never ends the stream (CONTRACT §4), and neither does a frame that is no
    message at all (a raw Latin-1 byte in a name): it is answered in its place, INVALID_ARGUMENT
    naming the frame (from 0), and the records after it are stored and answered in order."""
    channel, url = raw_records
    stream = channel.stream_stream(RPC + "StreamSourceRecords")
    for n, payload in enumerate(MALFORMED[:6]):
        before = _source_records(url)
        frames = [
            pb.SubmitSourceRecordRequest(
                record=world.record(f"frame-{n}-{i}", nhs_number=""), request_id=world.id(f"frame-{n}-{i}")
            ).SerializeToString()
            for i in range(4)
        ]
        frames[2] = payload

        def feed(frames: list[bytes] = frames) -> Iterator[bytes]:
            yield from frames

        answers = [
            pb.SubmitSourceRecordResponse.FromString(a)
            async for a in stream(feed(), metadata=world.council_a)
        ]
        assert len(answers) == 4
        assert all(a.contactpoint_id and not a.HasField("error") for i, a in enumerate(answers) if i != 2)
        assert answers[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert status_violations(answers[2].error) == {"requests[2]": NOT_A_REQUEST}
        assert _source_records(url) == before + 3


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_times_and_dates_are_invalid_argument_over_grpc(world: World) -> None:
    cases: list[tuple[str, Callable[[pb.SourceRecord], None]]] = []
    for seconds, nanos in BAD_TIMESTAMPS:

        def as_of(r: pb.SourceRecord, s: int = seconds, n: int = nanos) -> None:
            r.as_of.seconds, r.as_of.nanos = s, n

        cases.append(("record.as_of", as_of))
    for field, target in DATE_FIELDS.items():
        for parts in BAD_DATES[::3]:

            def set_date(r: pb.SourceRecord, t: Any = target, p: tuple[int, int, int] = parts) -> None:
                _set_date(t(r), p)

            cases.append((field, set_date))
    requests = []
    for i, (field, breaker) in enumerate(cases):
        record = world.record(f"bad-{i}")
        breaker(record)
        request = pb.SubmitSourceRecordRequest(record=record, request_id=world.id(f"bad-{i}"))
        requests.append(request)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await world.records.SubmitSourceRecord(request, metadata=world.council_a)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, bad.value)
        assert set(violations(bad.value)) == {field}, (field, violations(bad.value))

    async def feed() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        for request in requests:
            yield request

    # On a stream, each is answered in place, in order, and the stream goes on.
    answers = [a async for a in world.records.StreamSourceRecords(feed(), metadata=world.council_a)]
    assert [set(status_violations(a.error)) for a in answers] == [{field} for field, _ in cases]
    assert all(a.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] for a in answers)


def test_a_service_sensitive_by_its_organisation_is_flagged_but_needs_no_consent() -> None:
    record = pb.SourceRecord(
        source_system="x",
        source_record_id="1",
        name=child_pb2.PersonName(given_names="Tess", family_name="Orgprobe"),
        address=child_pb2.Address(postcode="M9 9AB"),
        involvements=[
            pb.SourceInvolvement(service_name="Young People's Service", organisation="Brook"),
            pb.SourceInvolvement(service_name="Education", organisation="Brook Community Primary School"),
        ],
    )
    record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = 2014, 4, 5
    # An organisation's name may be a place's or a person's: it never refuses a record...
    assert validate_record(record, now=NOW) == []
    # ...but Brook's involvement is shown as a sensitive service: dates only.
    assert [inv.sensitive for inv in normalise_record(record).involvements] == [True, False]


def test_a_searched_name_is_measured_as_a_reader_counts_it() -> None:
    # 35 letters, with spaces around them or an accent written as a combining mark: not too long.
    name = "Éabcdefghijklmnopqrstuvwxyzabcdefgh"
    decomposed = unicodedata.normalize("NFD", name)
    assert len(name) == 35 and len(decomposed) == 36
    for value in (name, f"  {name}  ", decomposed):
        assert search_name_problem(value) is None, value
    assert search_name_problem(name + "i") == "must be at most 35 characters"


def test_a_search_for_a_child_not_yet_born_or_by_a_name_with_digits_is_invalid() -> None:
    tomorrow = NOW.date() + dt.timedelta(days=1)
    future = FindCriteria("Smith", "Ann", (tomorrow.year, tomorrow.month, tomorrow.day))
    assert {v.field for v in validate_find(future, today=NOW.date())} == {"date_of_birth"}
    assert validate_find(future) == []  # no today given: not checked
    for name in (
        "Smith1Jones",
        "Smith\U0001f600Jones",
        "Khan$",
        "Khan+",
        "Khan|",
        "Khan<>",
        "Khan^",
        "Khan~",
    ):
        found = validate_find(FindCriteria(name, "Ann", (2015, 5, 5)), today=NOW.date())
        assert [v.field for v in found] == ["family_name"], name
    assert validate_find(FindCriteria("O'Brien-Smith", "Zoë", (2015, 5, 5)), today=NOW.date()) == []


def test_the_registry_keeps_englands_calendar() -> None:
    # 00:30 on 2 June in England is 23:30 on 1 June in UTC: a child born that night is born on
    # 2 June, and may be registered at once.
    night = dt.datetime(2026, 6, 1, 23, 30, tzinfo=dt.UTC)
    assert day_in_england(night) == dt.date(2026, 6, 2)
    assert day_in_england(dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC)) == dt.date(2026, 12, 1)  # GMT
    record = pb.SourceRecord(
        source_system="x",
        source_record_id="1",
        name=child_pb2.PersonName(given_names="Ada", family_name="Newborn"),
        address=child_pb2.Address(postcode="M9 9AB"),
    )
    record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = 2026, 6, 2
    assert validate_record(record, now=night) == []
    assert {v.field for v in validate_record(record, now=night - dt.timedelta(hours=1))} == {
        "record.date_of_birth"
    }


def test_a_given_name_is_measured_as_a_reader_counts_it() -> None:
    name = "Abcdefghijklmnopqrstuvwxyzabcdefghé"  # 35 letters; the accent as a combining mark: 36
    decomposed = unicodedata.normalize("NFD", name)
    assert len(decomposed) == 36
    assert given_names_problem(f"Ann {decomposed}") is None
    assert given_names_problem(f"Ann {name}x") == "each given name must be at most 35 characters"


def test_text_is_stored_composed() -> None:
    """Found by probing: "Zoë Brontë" sent with each diaeresis as a separate mark (NFD) was a
    change to the record sent composed, stored and shown as sent."""
    record = pb.SourceRecord(
        source_system="social-care",
        source_record_id="nfd-1",
        name=child_pb2.PersonName(given_names="Zoë", family_name="Brontë"),
        address=child_pb2.Address(lines=["1 Rue Crème"], town="Ély", postcode="M1 1AE"),
        carers=[child_pb2.Carer(name=child_pb2.PersonName(given_names="Chloé", family_name="Brontë"))],
    )
    decomposed = pb.SourceRecord()
    decomposed.CopyFrom(record)
    decomposed.name.given_names = unicodedata.normalize("NFD", "Zoë")
    decomposed.name.family_name = unicodedata.normalize("NFD", " Brontë ")
    decomposed.address.lines[0] = unicodedata.normalize("NFD", "1 Rue Crème")
    decomposed.address.town = unicodedata.normalize("NFD", "Ély")
    decomposed.carers[0].name.given_names = unicodedata.normalize("NFD", "Chloé")
    assert decomposed != record
    assert normalise_record(decomposed) == normalise_record(record)
    assert normalise_record(decomposed).name.given_names == "Zo\u00eb"


def test_an_apostrophe_typed_as_an_accent_or_a_prime_is_an_apostrophe() -> None:
    """Found by probing: "O\u00b4Neill", typed where a keyboard has no apostrophe, was refused."""
    for name in ("O\u00b4Neill", "O\u2032Neill", "O\u02bcNeill", "D'Souza", "O\u2019Brien", "O`Hara"):
        assert name_problem(name) is None, name
        assert search_name_problem(name) is None, name  # searched as written (found by re-probing)
    assert (
        name_problem("O\u02ddNeill")
        == "may contain only letters, spaces, hyphens, apostrophes and full stops"
    )


def test_an_over_long_service_name_is_refused_before_it_is_read_for_sensitivity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by probing: recognising a sensitive service costs more than linear time in the name's
    # length, and it ran before the length check: eight 200 kB names held records' every thread
    # for 40 s before they were refused. Only a name that is valid is read.
    read: list[int] = []
    recognise = validation.is_sensitive_service

    def counted(name: str) -> bool:
        read.append(len(name))
        return recognise(name)

    monkeypatch.setattr(validation, "is_sensitive_service", counted)
    record = make_record("long-service")
    record.involvements[0].service_name = "Family support " + "x" * 200_000
    problems = validate_record(record, now=NOW)
    assert [p.field for p in problems] == ["record.involvements[0].service_name"]
    assert all(n <= validation.MAX_TEXT for n in read)  # valid names only, never the long one
