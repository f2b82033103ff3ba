"""Features: what linkage keeps of a source record, and its JSON form for the database column."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactpoint.common.v1 import child_pb2
from services.records.linkage import Features, features_of
from services.records.linkage.features import address_parts
from tests.services.records.linkage import NHS, source_record


def test_a_record_becomes_its_features() -> None:
    record = source_record(
        given="Mary-Jane Ann",
        family="Smith-Jones",
        former=("O'Brien",),
        lines=("Flat 5", "12a High Street"),
        town="Newcastle upon Tyne",
        postcode="NE1 4XF",
        nhs=NHS,
    )
    f = features_of(record)
    assert f.given == ("mary", "jane", "ann")
    assert f.family == ("smith", "jones")
    assert f.former_family == (("obrien",),)
    assert f.former_given == ((),)
    assert f.dob == dt.date(2015, 3, 7)
    assert f.gender == 1
    assert f.postcode == "NE14XF"
    assert (f.house, f.street) == ("5", ("high", "st"))
    assert f.town == "newcastleupontyne"
    assert f.nhs == NHS


def test_missing_and_malformed_values_are_empty() -> None:
    f = features_of(source_record(dob=None, gender=0, lines=(), town="", postcode="", nhs="9434765918"))
    assert f.dob is None
    assert f.gender == 0
    assert (f.postcode, f.house, f.street, f.town) == ("", "", (), "")
    assert f.nhs == ""  # a wrong check digit is no evidence


def test_digits_read_for_letters_in_names_become_letters() -> None:
    assert features_of(source_record(given="0liver", family="Okonkw0")).given[0] == "oliver"
    assert features_of(source_record(given="0liver", family="Okonkw0")).family == ("okonkwo",)


@pytest.mark.parametrize(
    ("lines", "house", "street"),
    [
        (["12 High Street"], "12", ("high", "st")),
        (["12A High St."], "12a", ("high", "st")),
        (["07 Mill Road"], "7", ("mill", "rd")),
        (["1O Mill Road"], "10", ("mill", "rd")),  # OCR: the letter O for a zero
        (["l Mill Road"], "1", ("mill", "rd")),  # OCR: the letter l for a one
        (["Il Mill Road"], "11", ("mill", "rd")),
        (["Flat 3", "Mill Road"], "3", ("mill", "rd")),
        (["Studio 34", "Fox Parks"], "34", ("fox", "pk")),
        (["Rose Cottage", "Mill Lane"], "rosecottage", ("mill", "ln")),
        (["Mill Lane"], "", ("mill", "ln")),
        ([], "", ()),
    ],
)
def test_address_lines_give_a_house_and_a_street(
    lines: list[str], house: str, street: tuple[str, ...]
) -> None:
    assert address_parts(lines) == (house, street)


names = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=12), max_size=3).map(
    tuple
)
features = st.builds(
    Features,
    given=names,
    family=names,
    former_family=st.lists(names, max_size=2).map(tuple),
    former_given=st.lists(names, max_size=2).map(tuple),
    dob=st.none() | st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 12, 31)),
    gender=st.integers(0, 4),
    postcode=st.sampled_from(["", "M11AE", "SW1A2AA"]),
    house=st.sampled_from(["", "12", "12a", "rosecottage"]),
    street=names,
    town=st.sampled_from(["", "leeds", "bristol"]),
    nhs=st.sampled_from(["", NHS]),
)


@given(features)
def test_features_survive_json(f: Features) -> None:
    text = f.to_json()
    assert Features.from_json(text) == f
    assert Features.from_json(text).to_json() == text


def test_json_is_compact_and_versioned() -> None:
    text = features_of(source_record()).to_json()
    assert text.startswith("[1,")
    assert " " not in text
    with pytest.raises(ValueError, match="unknown features format"):
        Features.from_json("[2" + text[2:])


@pytest.mark.parametrize("placeholder", ["0000000000", "9999999999", "1111111111", "000 000 0000"])
def test_a_placeholder_nhs_number_is_no_evidence(placeholder: str) -> None:
    """One digit repeated passes the check digit; systems send it for "not known". Two children
    sent with it must not share an NHS number."""
    record = source_record()
    record.nhs_number = placeholder
    assert features_of(record).nhs == ""


def test_carers_are_named_by_first_given_name_and_family_name_and_read_back() -> None:
    record = source_record()
    for first, family in (("Grace Adaeze", "Okafor"), ("GRACE", "okafor "), ("", "Okafor"), ("Ade", "")):
        record.carers.add(name=child_pb2.PersonName(given_names=first, family_name=family))
    features = features_of(record)
    assert features.carers == (("grace", "okafor"),)  # once; a carer without both names is no evidence
    assert Features.from_json(features.to_json()) == features


def test_features_stored_before_carers_were_compared_read_as_none() -> None:
    stored = json.loads(features_of(source_record()).to_json())[:-1]  # as written before
    assert Features.from_json(json.dumps(stored)).carers == ()
