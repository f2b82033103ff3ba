"""How one source system's copy of a child differs from the truth. Each copy is corrupted
independently; every change made is named in `Copy.kinds` (see `KINDS`)."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from contactpoint.cli.synthetic import variants
from contactpoint.cli.synthetic.places import INWARD_LETTERS
from contactpoint.common.v1 import child_pb2

# Chance per source record of each corruption (tried independently; one that cannot apply to a
# record, such as a day/month swap on the 20th, is skipped). Rates are for English council data.
RATES: dict[str, float] = {
    "family_typo": 0.03,  # insertion, deletion, substitution or transposition in the family name
    "given_typo": 0.04,  # the same in a given name
    "phonetic": 0.02,  # Stephen/Steven, Catherine/Kathryn, Mohammed/Muhammad, Philips/Phillips
    "ocr": 0.01,  # rn/m, cl/d, l/I in a name; 0/O, 1/l in the first address line
    # A nickname, middle names dropped, known by the middle name, reordered, hyphenated: tried on 8%
    # of records, it applies to three names in five (those with a nickname or several given names).
    "given_variant": 0.08,
    "names_swapped": 0.003,  # given and family names in each other's fields
    "punctuation": 0.03,  # hyphen or apostrophe lost, doubled spaces
    "upper_case": 0.10,  # family name (or the whole name) in capitals
    "dob_swap": 0.02,  # day and month exchanged (only when the day is 12 or less)
    "dob_off": 0.015,  # a day out, or a digit mistyped
    "gender_missing": 0.05,
    "gender_wrong": 0.002,
    "line_missing": 0.03,  # the first address line not held
    "town_missing": 0.05,
    "postcode_format": 0.05,  # lower case, no space (not an error once normalised)
    "postcode_typo": 0.01,  # one character of the inward code wrong
    "nhs_wrong": 0.002,  # a sibling's NHS number
}
# Names with accents lose them in a system that only takes ASCII.
ACCENTS_STRIPPED = 0.5
# Not random corruptions but recorded the same way: the system lacks the NHS number, the copy has
# the previous address (a stale record, or the household moved since) or the previous family name.
KINDS = (*RATES, "accents_stripped", "nhs_missing", "moved", "surname_change")
_ORDER = ("given_variant", "phonetic", "given_typo", "family_typo", "ocr", "names_swapped", "punctuation")


@dataclass(slots=True)
class Copy:
    given: list[str]
    family: str
    dob: dt.date
    gender: int
    lines: list[str]
    town: str
    postcode: str
    nhs_number: str
    kinds: list[str] = field(default_factory=list)


def name_ok(value: str) -> bool:
    """Whether `value` passes records' validation as a (given or family) name."""
    return 0 < len(value) <= 35 and any(ch.isalpha() for ch in value)


def _strip_accents(value: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch))


def _given_variant(rng: random.Random, given: list[str]) -> list[str] | None:
    options: list[list[str]] = []
    if short := variants.nickname(rng, given[0]):
        options.append([short, *given[1:]])
    if len(given) > 1:
        options += [given[:1], given[1:], [given[1], given[0], *given[2:]]]
    if "-" in given[0]:
        left, right = given[0].split("-", 1)
        options += [[left, *given[1:]], [left, right, *given[1:]]]
    elif len(given) > 1 and rng.random() < 0.3:
        options.append([f"{given[0]}-{given[1]}", *given[2:]])
    return rng.choice(options) if options else None


def _one_name(
    rng: random.Random, c: Copy, change: Callable[[str], str | None], *, family: bool, given: bool
) -> bool:
    """Apply `change` to one name: the family name or a given name (mostly the first), trying the
    others when it cannot change the one chosen."""
    parts = list(range(len(c.given))) if given else []
    if len(parts) > 1 and rng.random() < 0.25:
        parts.insert(0, parts.pop(rng.randrange(1, len(parts))))
    if family:
        parts.insert(0 if not given or rng.random() < 0.4 else len(parts), -1)
    for at in parts:
        old = c.family if at < 0 else c.given[at]
        new = change(old)
        if new and new != old and name_ok(new):
            if at < 0:
                c.family = new
            else:
                c.given[at] = new
            return True
    return False


def _punctuation(rng: random.Random, c: Copy) -> bool:
    if "-" in c.family or "'" in c.family:
        mark = "-" if "-" in c.family else "'"
        c.family = c.family.replace(mark, rng.choice((" ", "")), 1)
    elif "-" in c.given[0]:
        c.given[0] = c.given[0].replace("-", rng.choice((" ", "")), 1)
    elif len(c.given) > 1:
        c.given[0] += " "  # a doubled space between given names
    else:
        c.family = f" {c.family} "  # surrounding spaces
    return True


def _names(rng: random.Random, c: Copy) -> None:
    for kind in _ORDER:
        if rng.random() >= RATES[kind]:
            continue
        done = False
        if kind == "given_variant":
            new = _given_variant(rng, c.given)
            done = new is not None and all(map(name_ok, new)) and new != c.given
            c.given = new if new and done else c.given
        elif kind == "phonetic":
            done = _one_name(rng, c, lambda n: variants.soundalike(rng, n), family=True, given=True)
        elif kind == "given_typo":
            done = _one_name(rng, c, lambda n: variants.typo(rng, n), family=False, given=True)
        elif kind == "family_typo":
            done = _one_name(rng, c, lambda n: variants.typo(rng, n), family=True, given=False)
        elif kind == "ocr":
            if c.lines and rng.random() < 0.3 and (line := variants.ocr(rng, c.lines[0], digits=True)):
                c.lines[0], done = line, True
            else:
                done = _one_name(rng, c, lambda n: variants.ocr(rng, n), family=True, given=True)
        elif kind == "names_swapped" and name_ok(c.given[0]):
            c.given, c.family, done = [c.family], c.given[0], True
        elif kind == "punctuation":
            done = _punctuation(rng, c)
        if done:
            c.kinds.append(kind)
    if any(not ch.isascii() for ch in c.family + "".join(c.given)) and rng.random() < ACCENTS_STRIPPED:
        c.family, c.given = _strip_accents(c.family), [_strip_accents(g) for g in c.given]
        c.kinds.append("accents_stripped")
    if rng.random() < RATES["upper_case"]:
        c.family = c.family.upper()
        if rng.random() < 0.4:
            c.given = [g.upper() for g in c.given]
        c.kinds.append("upper_case")


def _dob(rng: random.Random, c: Copy, valid: Callable[[dt.date], bool]) -> None:
    d = c.dob
    if d.day <= 12 and d.day != d.month and rng.random() < RATES["dob_swap"]:
        swapped = dt.date(d.year, d.day, d.month)
        if valid(swapped):
            c.dob = swapped
            c.kinds.append("dob_swap")
    if rng.random() < RATES["dob_off"]:
        for _ in range(10):  # until a mistake gives a real date the record may hold
            new = _dob_mistake(rng, c.dob)
            if new and new != c.dob and valid(new):
                c.dob = new
                c.kinds.append("dob_off")
                return


def _dob_mistake(rng: random.Random, d: dt.date) -> dt.date | None:
    kind = rng.random()
    try:
        if kind < 0.5:
            return d + dt.timedelta(days=rng.choice((-1, 1)))
        if kind < 0.7:  # a digit of the day
            return d.replace(day=int(f"{d.day:02d}"[0] + str(rng.randrange(10))))
        if kind < 0.85:
            return d.replace(year=d.year + rng.choice((-1, 1)))
        return d.replace(month=int(rng.choice(("0", "1")) + f"{d.month:02d}"[1]))
    except ValueError:
        return None


def _address(rng: random.Random, c: Copy) -> None:
    if c.lines and rng.random() < RATES["line_missing"]:
        del c.lines[0]
        c.kinds.append("line_missing")
    if rng.random() < RATES["town_missing"]:
        c.town = ""
        c.kinds.append("town_missing")
    if rng.random() < RATES["postcode_typo"]:
        outward, inward = c.postcode.split()
        at = rng.randrange(3)
        new = rng.choice(("0123456789" if at == 0 else INWARD_LETTERS).replace(inward[at], ""))
        c.postcode = f"{outward} {inward[:at]}{new}{inward[at + 1 :]}"
        c.kinds.append("postcode_typo")
    if rng.random() < RATES["postcode_format"]:
        c.postcode = rng.choice(
            (c.postcode.replace(" ", ""), c.postcode.lower(), c.postcode.replace(" ", "  "))
        )
        c.kinds.append("postcode_format")


def corrupt(
    rng: random.Random, c: Copy, *, valid_dob: Callable[[dt.date], bool], siblings: list[str]
) -> None:
    """Corrupt `c` in place as one source system would hold it."""
    _names(rng, c)
    _dob(rng, c, valid_dob)
    if rng.random() < RATES["gender_missing"]:
        c.gender = rng.choice((child_pb2.GENDER_UNSPECIFIED, child_pb2.GENDER_NOT_KNOWN))
        c.kinds.append("gender_missing")
    elif rng.random() < RATES["gender_wrong"]:
        c.gender = child_pb2.GENDER_MALE if c.gender == child_pb2.GENDER_FEMALE else child_pb2.GENDER_FEMALE
        c.kinds.append("gender_wrong")
    _address(rng, c)
    if c.nhs_number and siblings and rng.random() < RATES["nhs_wrong"]:
        c.nhs_number = rng.choice(siblings)
        c.kinds.append("nhs_wrong")
