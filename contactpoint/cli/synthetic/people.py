"""The truth: households of real-looking children, with siblings, twins, parents, a home, perhaps a
previous home (a move, perhaps from another council) and perhaps a change of family name."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from contactpoint.cli.synthetic.names import (
    HYPHEN_SUFFIXES,
    MIDDLE_NAME_RATE,
    ORIGINS,
    SURNAMES,
    adult_given,
    child_given,
)
from contactpoint.cli.synthetic.places import BY_CODE, COUNCIL_WEIGHTS, Address, Council, Gazetteer

TWIN_BIRTHS = 0.015  # of maternities
TRIPLET_BIRTHS = 0.0004
EXTENDED_HOUSEHOLDS = 0.045  # a young person of 18-24 alone: about 2% of the children
MOVED_FROM_OTHER_COUNCIL = 0.10
MOVED_WITHIN_COUNCIL = 0.07
RENAMED = 0.06  # the children took a step-parent's (or their mother's) family name
_CHILDREN_PER_HOUSEHOLD = ((1, 2, 3, 4, 5), (45, 37, 13, 4, 1))


@dataclass(frozen=True, slots=True)
class Child:
    person: int
    given: tuple[str, ...]  # first given name, then middle names
    family_name: str
    former_family_name: str  # before `Household.renamed_on`; "" when never renamed
    dob: dt.date
    male: bool
    nhs_number: str
    extended: bool


@dataclass(frozen=True, slots=True)
class Carer:
    given: str
    family_name: str
    relationship: str
    parental_responsibility: bool
    mobile: str  # 11 digits
    email: str  # "" when none


@dataclass(frozen=True, slots=True)
class Household:
    number: int
    council: Council
    home: Address
    carers: tuple[Carer, ...]
    children: tuple[Child, ...]
    previous_council: Council | None  # where the household lived before `moved_on`
    previous_home: Address | None
    moved_on: dt.date | None
    renamed_on: dt.date | None


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def age_on(dob: dt.date, day: dt.date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def nhs_number(person: int, salt: int) -> str:
    """A valid NHS number (mod 11), different for every person: an affine bijection of the person's
    number (tried a few times, as one body in eleven has no check digit)."""
    attempt = 0
    while True:
        index = (person * 16 + attempt) % 10**8
        body = f"{(4, 6, 7)[salt % 3]}{(index * 48_271 + salt) % 10**8:08d}"
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return body + str(check)
        attempt += 1


def _ascii(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalpha()).lower()


def _carer(rng: random.Random, given: str, family: str, relationship: str, pr: bool) -> Carer:
    email = ""
    if rng.random() < 0.55:
        user = rng.choice((f"{_ascii(given)}.{_ascii(family)}", f"{_ascii(given)}{_ascii(family)}"))
        if rng.random() < 0.5:
            user += str(rng.randint(1, 99))
        email = f"{user}@{rng.choice(('example.com', 'example.org', 'example.net'))}"
    return Carer(given, family, relationship, pr, f"07700900{rng.randrange(1000):03d}", email)


def _given_names(rng: random.Random, origin: str, male: bool, taken: set[str]) -> tuple[str, ...]:
    first = child_given(rng, origin, male)
    while first in taken:
        first = child_given(rng, origin, male)
    taken.add(first)
    if origin in ("english", "caribbean") and rng.random() < (0.015 if male else 0.04):
        first = f"{first}-{rng.choice(HYPHEN_SUFFIXES[0 if male else 1])}"
    names = [first]
    if origin == "south_asian" and male and rng.random() < 0.12 and first != "Muhammad":
        names.insert(0, "Muhammad")
    if rng.random() < MIDDLE_NAME_RATE[origin]:
        names.append(child_given(rng, origin, male))
        if rng.random() < 0.08:
            names.append(child_given(rng, origin, male))
    return tuple(dict.fromkeys(names))


def _dates_of_birth(rng: random.Random, today: dt.date, extended: bool) -> list[dt.date]:
    latest = years_before(today, 18) if extended else today
    earliest = years_before(today, 25 if extended else 18) + dt.timedelta(days=1)
    window = (latest - earliest).days
    births = 1 if extended else rng.choices(*_CHILDREN_PER_HOUSEHOLD)[0]
    gaps = [rng.randint(330, 1800) for _ in range(births - 1)]
    while sum(gaps) > window:
        gaps.pop()
    day = earliest + dt.timedelta(days=rng.randint(0, window - sum(gaps)))
    dobs: list[dt.date] = []
    for gap in [*gaps, 0]:
        r = rng.random()
        dobs += [day] * (3 if r < TRIPLET_BIRTHS else 2 if r < TRIPLET_BIRTHS + TWIN_BIRTHS else 1)
        day += dt.timedelta(days=gap)
    return dobs


def household(
    rng: random.Random,
    number: int,
    first_person: int,
    max_children: int,
    *,
    today: dt.date,
    salt: int,
    gazetteer: Callable[[Council], Gazetteer],
) -> Household:
    """One household with 1..`max_children` children numbered from `first_person`."""
    council = BY_CODE[COUNCIL_WEIGHTS.pick(rng)]
    origin = rng.choices(ORIGINS, council.origins)[0]
    surnames = SURNAMES[origin]
    extended = rng.random() < EXTENDED_HOUSEHOLDS
    father_name, mother_name = surnames.pick(rng), surnames.pick(rng)
    shape = rng.random()
    if shape < 0.68:  # two parents, married three times in five
        mother_name = father_name if rng.random() < 0.6 else mother_name
        family = father_name
    else:
        family = father_name if rng.random() < 0.5 else mother_name
    double = f"{mother_name}-{family}"
    if origin in ("english", "irish") and mother_name != family and len(double) <= 35 and rng.random() < 0.04:
        family = double
    renamed_on = former = None
    if not extended and shape < 0.94 and rng.random() < RENAMED:
        renamed_on = today - dt.timedelta(days=rng.randint(30, 1500))
        former = family
        if shape < 0.68 or mother_name == former:  # a step-father's name (the mother married)
            family = mother_name = surnames.pick(rng)
        else:  # a lone mother gave the children her own name
            family = mother_name
        if family == former:
            renamed_on = former = None
    dads_name = family if renamed_on is None else (former or family)
    carers: list[Carer] = []
    if extended and rng.random() < 0.6:
        pass  # a care leaver: no parent on record
    elif shape < 0.94:
        carers.append(_carer(rng, adult_given(rng, origin, False), mother_name, "mother", True))
        if shape < 0.68 and renamed_on is not None:
            carers.append(_carer(rng, adult_given(rng, origin, True), family, "stepfather", False))
        elif shape < 0.68:
            carers.append(
                _carer(rng, adult_given(rng, origin, True), dads_name, "father", rng.random() < 0.9)
            )
    elif shape < 0.97:
        carers.append(_carer(rng, adult_given(rng, origin, True), dads_name, "father", True))
    else:
        grand = surnames.pick(rng) if rng.random() < 0.5 else family
        carers.append(_carer(rng, adult_given(rng, origin, False), grand, "grandmother", rng.random() < 0.5))

    taken: set[str] = set()
    children = []
    for i, dob in enumerate(_dates_of_birth(rng, today, extended)[:max_children]):
        male = rng.random() < 0.512
        before = former if renamed_on is not None and dob < renamed_on else ""
        person = first_person + i
        children.append(
            Child(person, _given_names(rng, origin, male, taken), family, before or "", dob, male,
                  nhs_number(person, salt), extended)
        )  # fmt: skip

    home = gazetteer(council).home(rng)
    previous_council = previous_home = moved_on = None
    move = rng.random()
    if move < MOVED_FROM_OTHER_COUNCIL + MOVED_WITHIN_COUNCIL:
        previous_council = council
        while move < MOVED_FROM_OTHER_COUNCIL and previous_council is council:
            previous_council = BY_CODE[COUNCIL_WEIGHTS.pick(rng)]
        previous_home = gazetteer(previous_council).home(rng)
        moved_on = today - dt.timedelta(days=rng.randint(20, 1100))
    return Household(
        number, council, home, tuple(carers), tuple(children), previous_council, previous_home,
        moved_on, renamed_on,
    )  # fmt: skip
