"""Comparison levels, field by field: the first level that applies wins, "missing" weighs nothing,
and every level of every field can be reached."""

from __future__ import annotations

import datetime as dt

import pytest

from services.records.linkage import Features, compare, default_model
from services.records.linkage.comparisons import FIELDS, LEVELS, MISSING
from services.records.linkage.spelling import jaro_winkler, keyboard_slip, one_edit, skeleton, sound
from tests.services.records.linkage import NHS, OTHER_NHS, child

MODEL = default_model()


def level(field: str, a: Features, b: Features) -> str:
    return next(r.level for r in compare(a, b, MODEL).fields if r.field == field)


def given(*names: str) -> Features:
    return child(given=names)


def family(*names: str, former: tuple[tuple[str, ...], ...] = ()) -> Features:
    return child(family=names, former_family=former)


def dob(y: int, m: int, d: int) -> Features:
    return child(dob=dt.date(y, m, d))


CASES = [
    ("given_names", given("mary", "jane"), given("mary", "jane"), "exact"),
    ("given_names", given("mary", "jane"), given("jane", "mary"), "reordered"),
    ("given_names", given("mary", "jane", "ann"), given("mary", "ann"), "reordered"),  # middle name dropped
    ("given_names", given("mary", "jane"), given("mary"), "reordered"),
    ("given_names", given("mary", "jane"), given("maryjane"), "joined"),  # Mary-Jane / Maryjane
    ("given_names", given("mary", "jane", "ann"), given("maryjane"), "joined"),
    ("given_names", given("mary", "jane"), given("mary", "rose"), "first"),
    ("given_names", given("chloe"), given("aria", "chloe"), "dropped"),  # known by a middle name
    ("given_names", given("aria", "chloe", "may"), given("chloe", "may"), "dropped"),
    ("given_names", given("william"), given("bill"), "nickname"),
    ("given_names", given("liam"), given("william"), "nickname"),
    ("given_names", given("katie"), given("catherine"), "nickname"),
    ("given_names", given("elizabeth"), given("betty"), "nickname"),
    ("given_names", given("alexander"), given("sandy"), "nickname"),
    ("given_names", given("margaret"), given("peggy"), "nickname"),
    ("given_names", given("jonathon"), given("jonathan"), "jaro_winkler_0.92"),
    ("given_names", given("emma"), given("ernma"), "jaro_winkler_0.92"),  # OCR: "rn" for "m"
    ("given_names", given("aisha"), given("aislia"), "jaro_winkler_0.92"),  # OCR: "li" for "h"
    ("given_names", given("nicola"), given("nlcola"), "one_edit"),  # OCR: "l" for "i", early on
    ("given_names", given("jesica"), given("jessfca"), "jaro_winkler_0.85"),
    ("given_names", given("elly"), given("ellie"), "phonetic"),
    ("given_names", given("philip"), given("filip"), "phonetic"),
    ("given_names", given("j"), given("james"), "initial"),
    ("given_names", given("tom", "edward"), given("harry", "edward"), "middle"),
    ("given_names", given("james"), given("amelia"), "else"),
    ("given_names", child(family=("smith",)), child(given=("smith",), family=("oliver",)), "swapped"),
    # Swapped, and one of the two names a nickname or a slip: "Fraser Livvy" for "Olivia Fraser".
    (
        "given_names",
        child(given=("olivia",), family=("fraser",)),
        child(given=("fraser",), family=("livvy",)),
        "swapped",
    ),
    (
        "family_name",
        child(given=("millie",), family=("jones",)),
        child(given=("jones",), family=("mille",)),
        "swapped",
    ),
    # ... but not both: that is two other names.
    (
        "given_names",
        child(given=("millie",), family=("jones",)),
        child(given=("jomes",), family=("mille",)),
        "else",
    ),
    ("given_names", given(), given("james"), MISSING),
    ("family_name", family("smith"), family("smith"), "exact"),
    ("family_name", family("smith", "jones"), family("smithjones"), "exact"),
    ("family_name", family("brown", former=(("smith",),)), family("smith"), "former"),
    ("family_name", family("smith"), family("brown", former=(("smith",),)), "former"),
    ("family_name", family("smith", "jones"), family("jones"), "part"),
    ("family_name", family("thompson"), family("thomson"), "jaro_winkler_0.92"),
    ("family_name", family("smith"), family("srnith"), "jaro_winkler_0.92"),  # OCR
    ("family_name", family("okafor"), family("ikafor"), "one_edit"),  # a slip on the first letter
    ("family_name", family("jacobs"), family("jakobsen"), "jaro_winkler_0.85"),
    ("family_name", family("knight"), family("nite"), "phonetic"),
    ("family_name", family("smith"), family("patel"), "else"),
    ("family_name", child(family=("smith",)), child(given=("smith",), family=("oliver",)), "swapped"),
    ("family_name", family(), family("smith"), MISSING),
    ("date_of_birth", dob(2015, 3, 7), dob(2015, 3, 7), "exact"),
    ("date_of_birth", dob(2015, 3, 7), dob(2015, 7, 3), "day_month_swapped"),
    ("date_of_birth", dob(2015, 3, 7), dob(2015, 3, 8), "one_part"),
    ("date_of_birth", dob(2015, 3, 7), dob(2015, 4, 7), "one_part"),
    ("date_of_birth", dob(2015, 3, 7), dob(2016, 3, 7), "one_part"),
    ("date_of_birth", dob(2019, 3, 7), dob(2020, 3, 7), "one_part"),  # a year out, two digits
    ("date_of_birth", dob(2013, 3, 7), dob(2018, 3, 7), "one_part"),  # one digit mistyped
    ("date_of_birth", dob(2013, 5, 12), dob(2025, 5, 12), "else"),  # a baby and a 12-year-old
    ("date_of_birth", dob(2009, 5, 12), dob(2011, 5, 12), "else"),
    ("date_of_birth", dob(2015, 3, 7), dob(2017, 9, 7), "else"),
    ("date_of_birth", dob(2025, 1, 1), dob(2024, 12, 31), "one_part"),  # a day out, across the year
    ("date_of_birth", dob(2025, 3, 1), dob(2025, 2, 28), "one_part"),
    ("date_of_birth", dob(2025, 3, 1), dob(2025, 2, 27), "else"),
    ("date_of_birth", child(dob=None), dob(2015, 3, 7), MISSING),
    ("gender", child(gender=1), child(gender=1), "same"),
    ("gender", child(gender=1), child(gender=2), "different"),
    ("gender", child(gender=0), child(gender=2), MISSING),
    ("gender", child(gender=4), child(gender=2), MISSING),  # "not known"
    ("postcode", child(postcode="M11AE"), child(postcode="M11AE"), "full"),
    ("postcode", child(postcode="M11AE"), child(postcode="M11AF"), "sector"),
    ("postcode", child(postcode="M11AE"), child(postcode="ML1AE"), "near"),  # OCR: "L" for "1"
    ("postcode", child(postcode="M11AE"), child(postcode="M12BD"), "district"),
    ("postcode", child(postcode="M11AE"), child(postcode="LS16AB"), "else"),
    ("postcode", child(postcode=""), child(postcode="LS16AB"), MISSING),
    ("address", child(), child(street=("high", "st", "n")), "house_street"),
    ("address", child(), child(house="14"), "street"),
    ("address", child(), child(house="3", street=("park", "rd")), "else"),
    ("address", child(), child(house="", street=()), MISSING),
    ("town", child(), child(town="manchester"), "same"),
    ("town", child(), child(town="manchestr"), "same"),
    ("town", child(), child(town="leeds"), "else"),
    ("town", child(), child(town=""), MISSING),
    ("nhs_number", child(nhs=NHS), child(nhs=NHS), "same"),
    ("nhs_number", child(nhs=NHS), child(nhs=OTHER_NHS), "different"),
    ("nhs_number", child(nhs=NHS), child(), MISSING),
    (
        "carers",
        child(carers=(("grace", "okafor"),)),
        child(carers=(("grace", "okafor"), ("ade", "okafor"))),
        "name",
    ),
    (
        "carers",
        child(carers=(("elizabeth", "smith"),)),
        child(carers=(("beth", "smith"),)),
        "name",
    ),  # nickname
    ("carers", child(carers=(("donna", "smith"),)), child(carers=(("dona", "smith"),)), "name"),  # one slip
    ("carers", child(carers=(("donna", "smith"),)), child(carers=(("karen", "jones"),)), "else"),
    # Only a family name in common: the child's own, or the other parent's; no evidence.
    ("carers", child(carers=(("donna", "smith"),)), child(carers=(("mark", "smith"),)), MISSING),
    ("carers", child(carers=(("donna", "smith"),)), child(), MISSING),
]


@pytest.mark.parametrize(("field", "a", "b", "expected"), CASES)
def test_levels(field: str, a: Features, b: Features, expected: str) -> None:
    assert level(field, a, b) == expected
    assert level(field, b, a) == expected


def test_every_level_is_tested() -> None:
    tested = {(field, expected) for field, _, _, expected in CASES}
    assert tested == {(f, lv) for f in FIELDS for lv in (*LEVELS[f], MISSING)}


def test_missing_weighs_nothing() -> None:
    score = compare(child(given=(), dob=None, nhs=""), child(), MODEL)
    missing = [r for r in score.fields if r.level == MISSING]
    assert {r.field for r in missing} == {"given_names", "date_of_birth", "nhs_number", "carers"}
    assert all(r.weight == 0.0 for r in missing)


def test_levels_are_ordered_from_strongest_agreement() -> None:
    weights = MODEL.weights
    for field in FIELDS:
        assert weights[field][LEVELS[field][-1]] < 0, field  # "else"/"different" counts against
    assert weights["nhs_number"]["different"] < -5  # a strong negative
    assert -4 < weights["postcode"]["else"] < 0  # a move is only a mild one
    assert -2 < weights["address"]["else"] < 0 and -2 < weights["town"]["else"] < 0


def test_spelling_helpers() -> None:
    assert skeleton("srnith") == "smith" and skeleton("clare") == "dare"
    assert sound("catherine") == sound("kathryn")
    assert sound("") == ""
    assert jaro_winkler("martha", "marhta") == jaro_winkler("marhta", "martha")
    assert (
        one_edit("abc", "abc")
        and one_edit("abc", "acb")
        and one_edit("abc", "abxc")
        and one_edit("abc", "ab")
    )
    assert not one_edit("abc", "bca") and not one_edit("abc", "a") and not one_edit("abcd", "abdx")


@pytest.mark.parametrize(
    ("a", "b", "slip"),
    [
        ("max", "mas", True),  # x and s are neighbours
        ("leo", "lep", True),
        ("dev", "dwv", True),
        ("evelyn", "evelyh", True),  # n and h, across a row
        ("leo", "lea", False),  # o and a are far apart
        ("eva", "ava", False),
        ("max", "max", False),  # no letter differs
        ("max", "msz", False),  # two letters
        ("max", "maxi", False),  # a letter added is not a key struck for another
    ],
)
def test_keyboard_slip(a: str, b: str, slip: bool) -> None:
    assert keyboard_slip(a, b) is slip and keyboard_slip(b, a) is slip


MOVED = {"postcode": "LS61AA", "house": "3", "street": ("park", "rd"), "town": "leeds"}
GRACE = (("grace", "okonkwo"),)


def test_a_carer_in_common_counts_only_where_the_address_does_not_say_household() -> None:
    # After a move the carers are what still says "this household" (+3 bits); at the same
    # postcode they say it a second time, and twins and siblings share both, so nothing more.
    moved = compare(child(carers=GRACE), child(carers=GRACE, **MOVED), MODEL)
    home = compare(child(carers=GRACE), child(carers=GRACE), MODEL)
    weight = {r.field: r.weight for r in moved.fields}["carers"]
    assert weight == pytest.approx(MODEL.weights["carers"]["name"]) and weight > 2
    assert {r.field: (r.level, r.weight) for r in home.fields}["carers"] == ("name", 0.0)
    assert moved.weight - compare(child(), child(**MOVED), MODEL).weight == pytest.approx(weight)
    # Other carers altogether weigh against, mildly, wherever the child lives.
    stranger = compare(child(carers=GRACE), child(carers=(("karen", "jones"),), **MOVED), MODEL)
    assert -3 < {r.field: r.weight for r in stranger.fields}["carers"] < 0
