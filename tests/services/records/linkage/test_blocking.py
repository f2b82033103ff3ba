"""Blocking keys: short, selective, and shared by two records of one child despite typos, OCR
slips, nicknames, a wrong or swapped date, a move and a change of name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.records.linkage import Features, blocking_keys
from services.records.linkage.nicknames import GROUPS
from tests.services.records.linkage import NHS, child

# Every key is pinned down by an NHS number, a postcode, or a date of birth of which at most one
# part is left out (with both names' sounds, or the initials and the day and month, beside it).
_SELECTIVE = re.compile(
    r"^(nhs:\d{10}"
    r"|(dfp|dii):\d{8}:[^:]+:[mf]|(dgp|dgn|dg3):\d{8}:[^:]+:[a-z]"
    r"|nym:[^:]+:[^:]+:\d{6}|nyd:[^:]+:[^:]+:\d{4}-\d{2}|nmd:[^:]+:[^:]+:\d{4}"
    r"|dms:[a-z]{2}:\d{8}:[mf]"
    r"|pcy:[A-Z0-9]{5,7}:\d{4}|(pcf|pcg):[A-Z0-9]{5,7}:[^:]+)$"
)


def shared(a: Features, b: Features) -> set[str]:
    return set(blocking_keys(a)) & set(blocking_keys(b))


def test_keys_are_short_selective_and_sorted() -> None:
    keys = blocking_keys(child(nhs=NHS, family=("smith", "jones"), former_family=(("brown",),)))
    assert keys == sorted(set(keys))
    for key in keys:
        assert len(key) <= 64
        assert _SELECTIVE.match(key), key


def test_a_record_with_nothing_to_block_on_has_no_keys() -> None:
    empty = child(given=(), family=(), dob=None, postcode="", house="", street=(), town="")
    assert blocking_keys(empty) == []
    assert all(_SELECTIVE.match(k) for k in blocking_keys(child(dob=None)))


def test_different_children_share_no_key() -> None:
    other = child(given=("amelia",), family=("patel",), dob=dt.date(2012, 11, 23), postcode="LS16AB")
    assert shared(child(), other) == set()


@pytest.mark.parametrize(
    "variant",
    [
        child(family=("okonkow",)),  # typo in the family name
        child(given=("olvier", "james")),  # typo in the given name
        child(family=("srnith",)),  # OCR: "rn" for "m" (base "smith" below)
        child(given=("ollie",), family=("brown",)),  # nickname and a new family name, nothing listed
        child(dob=dt.date(2015, 7, 3), family=("okonkow",)),  # day and month swapped, and a typo
        child(dob=dt.date(2015, 3, 8), family=("okonkow",)),  # day wrong, and a typo
        child(dob=dt.date(2015, 4, 7), given=("olvier",)),  # month wrong, and a typo
        child(dob=dt.date(2014, 3, 7), given=("olvier",)),  # year wrong, and a typo
        child(family=("brown",), former_family=(("okonkwo",),), postcode="LS16AB", dob=dt.date(2015, 3, 9)),
        child(postcode="LS16AB", house="3", street=("park", "rd"), town="leeds"),  # moved
        child(given=("oliverjames",)),  # joined up
        child(given=("o",), family=("okonkow",)),  # an initial, and a typo
        child(dob=None),  # no date of birth, same address
        child(family=("ndlovu",), dob=dt.date(2013, 9, 30)),  # new name and wrong date, same address
    ],
)
def test_variations_of_one_child_share_a_key(variant: Features) -> None:
    base = child(family=("smith",)) if variant.family == ("srnith",) else child()
    assert shared(base, variant)


@pytest.mark.parametrize(
    "variant",
    [
        child(dob=dt.date(2015, 3, 9)),  # day wrong
        child(dob=dt.date(2015, 5, 7)),  # month wrong
        child(dob=dt.date(2016, 3, 7)),  # year wrong
        child(dob=dt.date(2015, 3, 9), given=("ollie",)),  # day wrong, and a nickname
        child(dob=dt.date(2016, 3, 7), family=("ndlovu",), former_family=(("okonkwo",),)),  # and a new name
        child(dob=dt.date(2015, 3, 9), given=("okonkwo",), family=("oliver",)),  # and names swapped
    ],
)
def test_a_wrong_part_of_the_date_after_a_move_is_found_by_the_names(variant: Features) -> None:
    moved = dataclasses.replace(variant, postcode="LS16AB", house="3", street=("park", "rd"), town="leeds")
    assert {k.partition(":")[0] for k in shared(child(), moved)} <= {"nym", "nyd", "nmd"}
    assert shared(child(), moved)


def test_the_nhs_number_alone_finds_a_child() -> None:
    a = child(nhs=NHS)
    b = child(given=("amelia",), family=("patel",), dob=dt.date(2012, 11, 23), postcode="LS16AB", nhs=NHS)
    assert shared(a, b) == {f"nhs:{NHS}"}


# --- property: a lightly corrupted copy of a record shares a key with it ----------------------

GIVEN = ["oliver", "william", "katherine", "amelia", "muhammad", "isabella", "george", "sophie", "jack"]
FAMILY = ["smith", "okonkwo", "patel", "williams", "brown", "kowalski", "obrien", "taylor", "nguyen"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@st.composite
def typo(draw: st.DrawFn, name: str) -> str:
    """One slip of the keyboard after the first letter."""
    i = draw(st.integers(1, len(name) - 1))
    letter = draw(st.sampled_from(LETTERS))
    kind = draw(st.sampled_from(["swap", "drop", "add", "change"]))
    if kind == "swap" and i + 1 < len(name):
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == "drop" and len(name) > 3:
        return name[:i] + name[i + 1 :]
    if kind == "add":
        return name[:i] + letter + name[i:]
    return name[:i] + letter + name[i + 1 :]


def nicknames_of(name: str) -> list[str]:
    return sorted(n for g in GROUPS if name in g for n in g if n != name)


@st.composite
def records(draw: st.DrawFn) -> Features:
    return child(
        given=(draw(st.sampled_from(GIVEN)), *draw(st.sampled_from([(), ("rose",), ("james",)]))),
        family=(draw(st.sampled_from(FAMILY)),),
        dob=draw(st.dates(min_value=dt.date(2007, 1, 1), max_value=dt.date(2025, 12, 31))),
        gender=draw(st.sampled_from([1, 2])),
        nhs=draw(st.sampled_from(["", NHS])),
    )


@st.composite
def corrupted(draw: st.DrawFn, f: Features) -> Features:
    """At most two of: the given name, the family name and the date of birth changed a little;
    and perhaps a move, and an NHS number or gender lost. Not a move with both a wrong date and a
    mistyped name: the keys give that up (`blocking_keys`, key scheme 2)."""
    parts = draw(st.lists(st.sampled_from(["given", "family", "dob"]), max_size=2, unique=True))
    assert f.dob is not None
    changes: dict[str, object] = {}
    if "given" in parts:
        first = f.given[0]
        nicknames = nicknames_of(first)
        choice = draw(st.sampled_from(["typo", "nickname", "middle"]) if nicknames else st.just("typo"))
        if choice == "nickname":
            changes["given"] = (draw(st.sampled_from(nicknames)),)
        elif choice == "middle":
            changes["given"] = f.given[:1]
        else:
            changes["given"] = (draw(typo(first)), *f.given[1:])
    if "family" in parts:
        if draw(st.booleans()):
            changes["family"] = (draw(typo(f.family[0])),)
        else:  # a new family name, the old one kept as a former name
            changes["family"], changes["former_family"] = ("ndlovu",), (f.family,)
    if "dob" in parts:
        d = f.dob
        options = [d.replace(day=d.day + 1 if d.day < 28 else d.day - 1)]
        if (d.month, d.day) != (2, 29):
            options.append(d.replace(year=d.year - 1))
        if d.day <= 12:
            options.append(d.replace(month=d.day, day=d.month))
        if d.day <= 28:
            options.append(d.replace(month=d.month % 12 + 1))
        changes["dob"] = draw(st.sampled_from(options))
    mistyped = changes.get("given", f.given)[0] not in (f.given[0], *nicknames_of(f.given[0])) or (
        "family" in changes and not changes.get("former_family")
    )
    if not ("dob" in parts and mistyped) and draw(st.booleans()):
        changes.update(postcode="LS16AB", house="3", street=("park", "rd"), town="leeds")
    if draw(st.booleans()):
        changes.update(nhs="", gender=0)
    return dataclasses.replace(f, **changes)  # type: ignore[arg-type]


@settings(max_examples=500)
@given(st.data())
def test_a_lightly_corrupted_copy_shares_a_key(data: st.DataObject) -> None:
    original = data.draw(records())
    copy = data.draw(corrupted(original))
    assert shared(original, copy)
    assert shared(copy, original) == shared(original, copy)


@given(records(), st.sampled_from(["w", "y", "h", "wy", "j"]))
def test_every_key_is_selective_even_for_odd_names(f: Features, odd: str) -> None:
    """Names whose sound is empty ("W", "Y") never make a key with an empty part."""
    for variant in (f, dataclasses.replace(f, given=(odd,)), dataclasses.replace(f, family=(odd,))):
        for key in blocking_keys(variant):
            assert _SELECTIVE.match(key), key


def _date_keys(f: Features) -> set[str]:
    return {k for k in blocking_keys(f) if k.split(":")[0] in {"dfp", "dii", "dms"}}


def test_the_date_keys_hold_the_gender_and_an_unknown_gender_files_under_both() -> None:
    # A boy and a girl of one birthday and family name (on 4 March, so that dms is made too).
    boy = child(gender=1, dob=dt.date(2015, 3, 4), postcode="M11AE")
    girl = dataclasses.replace(boy, gender=2, postcode="LS16AB")
    assert _date_keys(boy) and _date_keys(girl)
    assert not _date_keys(boy) & _date_keys(girl)
    assert all(k.endswith(":m") for k in _date_keys(boy))
    for unknown in (0, 3, 4):  # not given, indeterminate, not known
        either = dataclasses.replace(boy, gender=unknown)
        assert _date_keys(either) == _date_keys(boy) | _date_keys(girl)
    # A wrong gender is survived through the keys without one (here the postcode's and nym's).
    assert shared(boy, dataclasses.replace(boy, gender=2)) - _date_keys(boy)
