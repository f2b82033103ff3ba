"""How two records agree, field by field: each comparison is an ordered list of levels, from the
strongest agreement to "else", and the first level that applies wins (as in splink). A field
empty on either side is at level "missing", which carries no weight.

Every function here is symmetric in its two records, so that `compare(a, b) == compare(b, a)`.
The name comparisons are cached on their arguments (tuples of name keys): every candidate of
every ingested record is compared, and the same pairs of names (Oliver and Jack, Smith and
Smyth) come up again and again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz.fuzz import token_set_ratio

from services.records.linkage.given_names import is_name
from services.records.linkage.nicknames import nicknames
from services.records.linkage.spelling import (
    LETTERS_AS_DIGITS,
    PAIR_CACHE_SIZE,
    jaro_winkler,
    one_edit,
    rhyme,
    sound,
)

MISSING = "missing"
CLOSE = 0.92  # Jaro-Winkler of one slip of the pen in a name of five letters or more
NEAR = 0.85
# One typo in a name this short can make another name (Ian/Jan, Eva/Ava), so "one_edit" needs more.
MIN_ONE_EDIT = 4
MIN_SOUND = 3  # a sound of fewer letters says little ("Al"/"Eli")
STREET_SIMILAR = 85.0  # rapidfuzz token_set_ratio, 0 to 100
SHORTEST_POSTCODE = 5  # "M11AE"
KNOWN_GENDERS = frozenset({1, 2, 3})  # male, female, indeterminate; 0 and 4 say nothing

LEVELS: dict[str, tuple[str, ...]] = {
    "given_names": (
        "exact", "reordered", "joined", "first", "dropped", "nickname", "jaro_winkler_0.92", "one_edit",
        "jaro_winkler_0.85", "phonetic", "initial", "middle", "swapped", "else",
    ),
    "family_name": (
        "exact", "former", "part", "jaro_winkler_0.92", "one_edit", "jaro_winkler_0.85", "phonetic",
        "swapped", "else",
    ),
    "date_of_birth": ("exact", "day_month_swapped", "one_part", "else"),
    "gender": ("same", "different"),
    "postcode": ("full", "sector", "near", "district", "else"),
    "address": ("house_street", "street", "else"),
    "town": ("same", "else"),
    "nhs_number": ("same", "different"),
    "carers": ("name", "else"),
}  # fmt: skip
FIELDS: tuple[str, ...] = tuple(LEVELS)
# Postcode levels that say "one household" (a slip of the pen or OCR included): where the twins
# rule looks for twins, and where a carer in common adds nothing the postcode has not said.
HOUSEHOLD_POSTCODES = frozenset({"full", "sector", "near"})


def _in_order(short: Sequence[str], long: Sequence[str]) -> bool:
    if short and short[0] not in long:
        return False  # most pairs, at once
    rest = iter(long)
    return all(token in rest for token in short)


def _joined(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # "Mary Jane" = "Maryjane", and "Mary Jane Ann" = "Maryjane" with the middle name dropped.
    ja, jb = "".join(a), "".join(b)
    if ja == jb:
        return True
    if len(ja) > len(jb):
        ja, jb, a, b = jb, ja, b, a
    if not jb.startswith(ja):
        return False
    end = 0
    for token in b:
        end += len(token)
        if end >= len(ja):
            return end == len(ja)
    return False


# What maternity and health visiting systems write before a newborn is named ("Baby Smith", "Baby of
# Chloe Smith", "Unborn Patel", "Twin A Wilson"): no name, so no evidence. Found by probing: two
# girls and a boy born one day to three mothers, each "Baby Smith", were one child, "Baby" weighed
# as a name (the ONS's tables list it: births registered so).
PLACEHOLDER_GIVEN = frozenset({"baby", "babyof", "infant", "unborn", "newborn", "neonate", "unnamed", "twin"})


def placeholder(given: tuple[str, ...]) -> bool:
    """Whether given names are a newborn's placeholder rather than a name."""
    return bool(given) and given[0] in PLACEHOLDER_GIVEN


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def given_level(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    """Given names: the same; the same names reordered or with middle names dropped; hyphenated,
    spaced or joined ("Mary-Jane"/"Maryjane"); the same first name; nicknames; spelling
    variants of the first name (Jaro-Winkler, or one typo, or the same sound); an initial for it;
    different first names but the same middle names; else. "dropped" is a child known by a middle
    name in one record: "Chloe" for "Aria Chloe"."""
    if not a or not b:
        return MISSING
    if a == b:
        return "exact"
    a0, b0 = a[0], b[0]
    if len(a) == len(b):
        if sorted(a) == sorted(b):
            return "reordered"
    elif a0 == b0 and (_in_order(a, b) if len(a) < len(b) else _in_order(b, a)):
        return "reordered"
    if _joined(a, b):
        return "joined"
    if a0 == b0:
        return "first"
    if len(a) != len(b) and (_in_order(a, b[1:]) if len(a) < len(b) else _in_order(b, a[1:])):
        return "dropped"  # known by a middle name: "Chloe" for "Aria Chloe"
    if nicknames(a0, b0):
        return "nickname"
    level = first_name_level(a0, b0)
    if level == "else" and len(a) > 1 and a[1:] == b[1:]:
        return "middle"
    return level


def _same_sound(a: str, b: str) -> bool:
    # Both names have a sound, and it is the same. A name in a script metaphone does not read
    # (Cyrillic, Arabic, Chinese) has none: found by probing, "Иван" and "Ольга" sounded alike
    # and two unrelated children were joined.
    code = sound(a)
    return bool(code) and code == sound(b)


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def first_name_level(a0: str, b0: str) -> str:
    """Two different first given names: spelling variants, an initial for the other, or else.
    Names in another script than the Latin alphabet are only ever the same or else: the spelling
    tests are tuned on English names (found by probing: Hassan and Hussain in Arabic letters,
    Maria and Marina in Greek, were spelt alike enough to join two children), and one Chinese
    character is a name, not an initial."""
    if not (a0.isascii() and b0.isascii()):
        return "else"
    if _rhyming_names(a0, b0):
        return "else"
    if len(a0) > 1 and len(b0) > 1:
        similarity = jaro_winkler(a0, b0)
        if similarity >= CLOSE:
            return "jaro_winkler_0.92"
        if min(len(a0), len(b0)) >= MIN_ONE_EDIT and one_edit(a0, b0):
            return "one_edit"
        if similarity >= NEAR:
            return "jaro_winkler_0.85"
        if min(len(a0), len(b0)) >= MIN_SOUND and _same_sound(a0, b0):
            return "phonetic"  # "Elly"/"Ellie", "Kieran"/"Ciaran"
        return "else"
    return "initial" if a0[0] == b0[0] else "else"


def _rhyming_names(a0: str, b0: str) -> bool:
    """Two known names that differ in their first letter only, and sound apart: "Holly"/"Molly",
    "Harry"/"Larry". Siblings', and twins' (often so named), not one name misspelt: a slip of the
    pen that changes a first letter makes no name ("Rmily"). Found by probing: Holly and Molly, twins
    born the same day and living with separated parents in two towns, were joined as one child who
    had moved, the names one typo apart. (Chloe/Khloe sound alike: one name spelt as it sounds.)"""
    return len(a0) > 2 and rhyme(a0, b0) and is_name(a0) and is_name(b0)


def _former_keys(former: tuple[tuple[str, ...], ...]) -> set[str]:
    return {"".join(name) for name in former if name}


def share_former(a_former: tuple[tuple[str, ...], ...], b_former: tuple[tuple[str, ...], ...]) -> bool:
    """Whether two records name a former family name in common."""
    return bool(a_former) and bool(b_former) and not _former_keys(a_former).isdisjoint(_former_keys(b_former))


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def family_level(
    a: tuple[str, ...],
    b: tuple[str, ...],
    a_former: tuple[tuple[str, ...], ...],
    b_former: tuple[tuple[str, ...], ...],
) -> str:
    """Family names: the same; one is a former name of the other; one part of a double-barrelled
    name is the other; spelling variants (Jaro-Winkler, or one typo); the same sound; else."""
    if not a or not b:
        return MISSING
    ja, jb = "".join(a), "".join(b)
    if ja == jb:
        return "exact"
    if a_former or b_former:
        fa, fb = _former_keys(a_former), _former_keys(b_former)
        if jb in fa or ja in fb:
            return "former"
    if (len(a) > 1 or len(b) > 1) and not set(a).isdisjoint(b):
        return "part"
    similarity = jaro_winkler(ja, jb)
    if similarity >= CLOSE:
        return "jaro_winkler_0.92"
    if min(len(ja), len(jb)) >= MIN_ONE_EDIT and one_edit(ja, jb):
        return "one_edit"
    if similarity >= NEAR:
        return "jaro_winkler_0.85"
    code = sound(ja)
    if code and code == sound(jb):
        return "phonetic"
    return "else"


# Sikh names that stand where a family name would: many records give "Harpreet Kaur" as given and
# family name, others "Harpreet Kaur" as given names and the family's name after them.
_SIKH_NAMES = frozenset({("kaur",), ("singh",)})


def sikh_name_as_family(
    a_given: tuple[str, ...], a_family: tuple[str, ...], b_given: tuple[str, ...], b_family: tuple[str, ...]
) -> bool:
    """Whether one record's family name is Kaur or Singh and the other gives it among its given
    names ("Harpreet" "Kaur" beside "Harpreet Kaur" "Sandhu", found by probing with feeds of
    English councils' shapes: two children, created with no review): one name of the family's,
    compared as one part of a double-barrelled name is."""
    return (a_family in _SIKH_NAMES and a_family[0] in b_given[1:]) or (
        b_family in _SIKH_NAMES and b_family[0] in a_given[1:]
    )


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def names_swapped(
    a_given: tuple[str, ...], a_family: tuple[str, ...], b_given: tuple[str, ...], b_family: tuple[str, ...]
) -> bool:
    """Whether one record has the given and family names in each other's fields ("Smith Oliver"
    for "Oliver Smith"; middle names may be lost on the way). One of the two crossed names may
    also be a typo or a nickname of the other ("Fraser Livvy" for "Olivia Fraser"), never both.
    Both names then compare "swapped"."""
    if not (a_given and a_family and b_given and b_family):
        return False
    ja, jb = "".join(a_family), "".join(b_family)
    return _crossed(a_given[0], jb, ja, "".join(b_given)) or _crossed(b_given[0], ja, jb, "".join(a_given))


def _crossed(given: str, other_family: str, family: str, other_given: str) -> bool:
    # The given name is the other's family name and the family name the other's given name: both
    # exactly, or one of them exactly and the other one slip or a nickname apart.
    given_same, family_same = given == other_family, family == other_given
    if given_same and family_same:
        return True
    if given_same:
        return _near_name(family, other_given)
    if family_same:
        return _near_name(given, other_family)
    return False


def _near_name(a: str, b: str) -> bool:
    return (min(len(a), len(b)) >= MIN_ONE_EDIT and one_edit(a, b)) or nicknames(a, b)


def dob_level(a: dt.date | None, b: dt.date | None) -> str:
    """Dates of birth: the same; day and month swapped; one of day, month or year different (or
    the next day across the end of a month or year: 31 December and 1 January); else. A year is a
    slip only a year out or one digit mistyped (2013 and 2018): a child born in 2025 is not one
    born in 2013 with the same birthday, however alike their names (found in the quality bench's
    wrong links: a baby joined a 12-year-old namesake)."""
    if a is None or b is None:
        return MISSING
    if a == b:
        return "exact"
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return "day_month_swapped"
    if abs((a - b).days) == 1:
        return "one_part"
    if a.month == b.month and a.day == b.day:
        return "one_part" if _year_slip(a.year, b.year) else "else"
    if (a.year == b.year) + (a.month == b.month) + (a.day == b.day) == 2:
        return "one_part"
    return "else"


def _year_slip(a: int, b: int) -> bool:
    """Two different years one keying slip apart: a year out, or one digit of four mistyped."""
    return abs(a - b) == 1 or sum(x != y for x, y in zip(f"{a:04d}", f"{b:04d}", strict=True)) == 1


def gender_level(a: int, b: int) -> str:
    """Genders: the same or different, when both are known."""
    if a not in KNOWN_GENDERS or b not in KNOWN_GENDERS:
        return MISSING
    return "same" if a == b else "different"


def postcode_level(a: str, b: str) -> str:
    """Postcodes: the same; the same sector ("M1 1"); one slip apart (a typo, or "O" read for "0");
    the same district ("M1"); else. A moved child lands in "else", which is only a mild negative."""
    if not a or not b:
        return MISSING
    if a == b:
        return "full"
    if min(len(a), len(b)) < SHORTEST_POSTCODE:
        return "else"
    if a[:-2] == b[:-2]:
        return "sector"
    if one_edit(a, b) or (
        len(a) == len(b) and a.translate(LETTERS_AS_DIGITS) == b.translate(LETTERS_AS_DIGITS)
    ):
        return "near"
    if a[:-3] == b[:-3]:
        return "district"
    return "else"


def address_level(a_house: str, a_street: tuple[str, ...], b_house: str, b_street: tuple[str, ...]) -> str:
    """First lines of address: the same house on a similar street; a similar street; else."""
    if not (a_house or a_street) or not (b_house or b_street):
        return MISSING
    same_house = bool(a_house) and a_house == b_house
    if not a_street or not b_street:
        return "house_street" if same_house and not a_street and not b_street else "else"
    sa, sb = " ".join(a_street), " ".join(b_street)
    if sa > sb:
        sa, sb = sb, sa
    if sa == sb or token_set_ratio(sa, sb) >= STREET_SIMILAR:
        return "house_street" if same_house else "street"
    return "else"


def town_level(a: str, b: str) -> str:
    """Towns: the same (or spelt nearly so), or else."""
    if not a or not b:
        return MISSING
    return "same" if a == b or jaro_winkler(a, b) >= CLOSE else "else"


def nhs_level(a: str, b: str) -> str:
    """NHS numbers: the same or different, when both are given."""
    if not a or not b:
        return MISSING
    return "same" if a == b else "different"


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def carers_level(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> str:
    """Carers, each (first given name, family name): one carer on both (the same family name, and
    the same given name, a nickname of it or one slip of it); else. Only a family name in common
    is no evidence either way ("missing"): it is the child's own as often as not, and one system
    may name the mother where another names the father (tried as a weak level of its own, it
    joined namesakes: `docs/benchmarks.md`). A moved child usually keeps its carers; another child
    of the same name and date of birth elsewhere does not. Siblings and twins share theirs, as they
    share an address: `model.compare` counts a carer in common only where the postcode does not
    already say "same household", and the twins rule, not this, keeps them apart."""
    if not a or not b:
        return MISSING
    family = False
    for given_a, family_a in a:
        for given_b, family_b in b:
            if family_a != family_b:
                continue
            if given_a == given_b or _near_name(given_a, given_b):
                return "name"
            family = True
    return MISSING if family else "else"
