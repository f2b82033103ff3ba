"""The synthetic feed: valid records, deterministic, with a truth that holds (same `person`, same
child; twins are different children) and corruption at about the designed rates."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import Counter, defaultdict

import pytest

from contactpoint.cli.synthetic import COUNCILS, KINDS, SYSTEMS, SyntheticRecord, synthetic_feed
from contactpoint.cli.synthetic.places import BY_CODE
from contactpoint.common.v1 import child_pb2
from services.records.validation import validate_record

TODAY = dt.date(2026, 3, 15)
MIDNIGHT = dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
CHILDREN = 5000
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][ABD-HJLNP-UW-Z]{2})$")
# Kinds that leave name, date of birth and postcode as the truth has them.
_HARMLESS = {"nhs_missing", "gender_missing", "gender_wrong", "line_missing", "town_missing", "nhs_wrong"}
_DOB_KINDS = {"dob_swap", "dob_off"}
# Per record; "dob_swap" is 2% of the records whose day is 12 or less (and not the month).
EXPECTED_RATES = {
    "family_typo": 0.03,
    "given_typo": 0.04,
    "phonetic": 0.02,
    "ocr": 0.01,
    "given_variant": 0.05,
    "punctuation": 0.03,
    "upper_case": 0.10,
    "dob_swap": 0.02 * 12 / 30.4 * 11 / 12,
    "dob_off": 0.015,
    "gender_missing": 0.05,
    "line_missing": 0.03,
    "town_missing": 0.05,
    "postcode_format": 0.05,
    "postcode_typo": 0.01,
    "moved": 0.08,
    "surname_change": 0.02,
    "nhs_missing": 0.40,
}


@pytest.fixture(scope="module")
def feed() -> list[SyntheticRecord]:
    return list(synthetic_feed(CHILDREN, 20260315, today=TODAY))


@pytest.fixture(scope="module")
def by_person(feed: list[SyntheticRecord]) -> dict[int, list[SyntheticRecord]]:
    out: dict[int, list[SyntheticRecord]] = defaultdict(list)
    for item in feed:
        out[item.person].append(item)
    return out


def _dob(item: SyntheticRecord) -> dt.date:
    d = item.record.date_of_birth
    return dt.date(d.year, d.month, d.day)


def _clean(items: list[SyntheticRecord]) -> list[SyntheticRecord]:
    return [i for i in items if set(i.corruptions) <= _HARMLESS]


def _age(dob: dt.date) -> int:
    return TODAY.year - dob.year - ((TODAY.month, TODAY.day) < (dob.month, dob.day))


def test_every_record_passes_validation(feed: list[SyntheticRecord]) -> None:
    problems = [
        (i.record.source_record_id, v) for i in feed if (v := validate_record(i.record, now=MIDNIGHT))
    ]
    assert not problems[:5]
    assert len(feed) > 1.8 * CHILDREN


def test_same_arguments_give_the_same_feed() -> None:
    def run(seed: int) -> list[tuple[object, ...]]:
        return [
            (
                i.organisation,
                i.person,
                i.household,
                i.corruptions,
                i.record.SerializeToString(deterministic=True),
            )
            for i in synthetic_feed(300, seed, today=TODAY)
        ]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_the_feed_streams() -> None:
    first = next(iter(synthetic_feed(1_000_000, 1, today=TODAY)))
    assert first.person < 1000


def test_record_ids_are_unique_within_each_system(feed: list[SyntheticRecord]) -> None:
    keys = Counter((i.organisation, i.record.source_system, i.record.source_record_id) for i in feed)
    assert keys.most_common(1)[0][1] == 1


def test_every_child_is_held_one_to_four_times(by_person: dict[int, list[SyntheticRecord]]) -> None:
    assert set(by_person) == set(range(CHILDREN))
    counts = [len(items) for items in by_person.values()]
    assert min(counts) == 1
    assert max(counts) == 4
    assert 1.8 <= statistics.mean(counts) <= 2.2


def test_several_councils_each_with_several_systems(
    feed: list[SyntheticRecord], by_person: dict[int, list[SyntheticRecord]]
) -> None:
    systems: dict[str, set[str]] = defaultdict(set)
    for item in feed:
        systems[item.organisation].add(item.record.source_system)
    assert len(systems) >= 3
    assert set(systems) <= {c.code for c in COUNCILS}
    assert sum(len(s) >= 3 for s in systems.values()) >= 3
    assert set().union(*systems.values()) == {s.name for s in SYSTEMS}
    movers = sum(len({i.organisation for i in items}) > 1 for items in by_person.values())
    assert 0.06 <= movers / CHILDREN <= 0.14


def test_records_of_one_child_agree_unless_corrupted(by_person: dict[int, list[SyntheticRecord]]) -> None:
    for items in by_person.values():
        assert len({_dob(i) for i in items if not _DOB_KINDS & set(i.corruptions)}) <= 1
        nhs = {i.record.nhs_number for i in items if i.record.nhs_number and "nhs_wrong" not in i.corruptions}
        assert len(nhs) <= 1
        assert len({i.household for i in items}) == 1
        clean = _clean(items)
        assert len({i.record.name.family_name for i in clean}) <= 1
        assert len({i.record.name.given_names for i in clean}) <= 1


def test_twins_share_dob_family_name_and_postcode_but_are_different_children(
    by_person: dict[int, list[SyntheticRecord]],
) -> None:
    households: dict[int, dict[int, SyntheticRecord]] = defaultdict(dict)
    for person, items in by_person.items():
        home = [i for i in _clean(items) if "postcode_format" not in i.corruptions]
        if home:
            households[home[0].household][person] = home[0]
    twins = siblings = 0
    for children in households.values():
        siblings += len(children) > 1
        for a in children.values():
            for b in children.values():
                if a.person >= b.person:
                    continue
                ra, rb = a.record, b.record
                assert ra.name.family_name == rb.name.family_name
                assert ra.address.postcode == rb.address.postcode
                assert ra.name.given_names != rb.name.given_names
                twins += _dob(a) == _dob(b)
    assert twins >= 10  # about 1.5% of births are twins
    assert twins / CHILDREN < 0.05
    assert siblings / len(households) > 0.25


@pytest.mark.parametrize("kind", sorted(EXPECTED_RATES))
def test_corruption_rates_are_as_designed(feed: list[SyntheticRecord], kind: str) -> None:
    rate = sum(kind in i.corruptions for i in feed) / len(feed)
    expected = EXPECTED_RATES[kind]
    assert abs(rate - expected) <= max(0.35 * expected, 0.004), (kind, rate)


def test_corruptions_are_named_truthfully(
    feed: list[SyntheticRecord], by_person: dict[int, list[SyntheticRecord]]
) -> None:
    assert {k for i in feed for k in i.corruptions} <= set(KINDS)
    for item in feed:
        r, kinds = item.record, set(item.corruptions)
        assert ("nhs_missing" in kinds) == (not r.nhs_number)
        missing = r.gender in (child_pb2.GENDER_UNSPECIFIED, child_pb2.GENDER_NOT_KNOWN)
        assert ("gender_missing" in kinds) == missing
        if "town_missing" in kinds:
            assert not r.address.town
        if "upper_case" in kinds:
            assert r.name.family_name == r.name.family_name.upper()
    for items in by_person.values():
        clean = {_dob(i) for i in _clean(items)}
        for item in items:
            if clean and _dob(item) not in clean:
                assert _DOB_KINDS & set(item.corruptions)


def test_postcodes_are_real_districts_of_the_council(feed: list[SyntheticRecord]) -> None:
    for item in feed:
        council = BY_CODE[item.organisation]
        m = _POSTCODE.match(item.record.address.postcode.upper().strip().replace("  ", " "))
        assert m, item.record.address.postcode
        assert m[1] in council.districts
        if item.record.address.town:
            assert item.record.address.town in {town for town, _ in council.towns}


def test_names_are_those_of_english_children(feed: list[SyntheticRecord]) -> None:
    clean = _clean(feed)
    families = Counter(i.record.name.family_name for i in clean)
    assert "Smith" in [name for name, _ in families.most_common(5)]
    diverse = {"Khan", "Ahmed", "Patel", "Hussain", "Singh", "Okafor", "Mensah", "Nowak", "Murphy", "Chen"}
    assert len(diverse & set(families)) >= 6
    assert any("-" in name for name in families)  # double-barrelled
    given = [i.record.name.given_names.split() for i in clean]
    assert any("-" in g[0] for g in given)  # Lily-Mae
    assert 0.25 < sum(len(g) > 1 for g in given) / len(given) < 0.6  # middle names


def test_ages_and_extended_records(feed: list[SyntheticRecord]) -> None:
    extended = 0
    for item in feed:
        age = _age(_dob(item))
        if item.record.extended:
            extended += 1
            assert age < 25
        else:
            assert 0 <= age < 18
    assert 0.01 <= extended / len(feed) <= 0.035


def test_contacts_and_as_of(feed: list[SyntheticRecord]) -> None:
    sensitive = carers_without_pr = schools = gps = 0
    for item in feed:
        r = item.record
        as_of = r.as_of.ToDatetime(dt.UTC)
        assert as_of <= MIDNIGHT
        assert as_of.date() >= _dob(item) - dt.timedelta(days=366) or "dob_off" in item.corruptions
        for inv in r.involvements:
            if inv.sensitive:
                sensitive += 1
                assert inv.consent_recorded
        carers_without_pr += sum(not c.parental_responsibility for c in r.carers)
        schools += r.HasField("education_setting")
        gps += r.HasField("gp_practice")
    assert sensitive > 20
    assert carers_without_pr > 20
    assert schools > len(feed) / 2
    assert gps > len(feed) / 4
