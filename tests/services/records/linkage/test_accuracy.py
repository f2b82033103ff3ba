"""The whole online process on simulated English children's records: each record in turn is
blocked, compared with the records already filed, and linked, reviewed or made a new child.

Families of one to four children (some twins) share a family name and an address; each child is
held by one to four source systems, each record corrupted on its own: typos, OCR slips,
nicknames, initials, dropped or joined middle names, a wrong or swapped date of birth, missing
fields, a move, a new family name (the old one sometimes listed), an NHS number on half."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import string
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from faker.providers.person.en_GB import Provider as Names
from google.type import date_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.linkage import (
    Action,
    Candidate,
    Thresholds,
    blocking_keys,
    decide,
    default_model,
    features_of,
)
from services.records.linkage.nicknames import GROUPS

STREETS = [
    "High",
    "Church",
    "Mill",
    "Station",
    "Victoria",
    "Green",
    "Manor",
    "Park",
    "Queen",
    "Kings",
    "Grange",
]
KINDS = ["Street", "Road", "Lane", "Close", "Avenue", "Drive", "Way", "Gardens"]
TOWNS = ["Leeds", "Bradford", "Wakefield", "Halifax", "Huddersfield", "Barnsley", "Rotherham", "Doncaster"]
SOURCES = [
    ("E08000035", "education"),
    ("E08000035", "social-care"),
    ("E08000032", "health"),
    ("E08000033", "yot"),
]
TODAY = dt.date(2026, 1, 1)
FAMILY, BOYS, GIRLS = tuple(Names.last_names), tuple(Names.first_names_male), tuple(Names.first_names_female)


@dataclass
class Home:
    house: str
    street: str
    town: str
    postcode: str


@dataclass
class Child:
    id: int
    given: list[str]
    family: str
    dob: dt.date
    gender: int
    home: Home
    nhs: str
    new_family: str | None
    new_home: Home | None


class World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = itertools.count()

    def home(self) -> Home:
        r = self.rng
        outward = r.choice(["LS", "BD", "WF", "HX", "HD", "S"]) + str(r.randrange(1, 30))
        inward = str(r.randrange(10)) + "".join(r.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in range(2))
        street = f"{r.choice(STREETS)} {r.choice(KINDS)}"
        return Home(str(r.randrange(1, 150)), street, r.choice(TOWNS), f"{outward} {inward}")

    def nhs(self) -> str:
        while True:
            body = [self.rng.randrange(10) for _ in range(9)]
            check = (11 - sum(d * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11) % 11
            if check != 10:
                return "".join(map(str, body)) + str(check)

    def family(self) -> Iterator[Child]:
        r = self.rng
        name = r.choice(FAMILY)
        if r.random() < 0.04:
            name += "-" + r.choice(FAMILY)
        home = self.home()
        born = TODAY - dt.timedelta(days=r.randrange(30, 16 * 365))
        dates = [
            born - dt.timedelta(days=sum(r.randrange(330, 2000) for _ in range(k)))
            for k in range(r.choice([1, 1, 2, 2, 3, 4]))
        ]
        if r.random() < 0.03:
            dates.append(born)  # twins
        used: set[str] = set()
        for dob in dates:
            gender = r.choice([1, 2])
            pool = BOYS if gender == 1 else GIRLS
            first = r.choice([n for n in pool if n not in used][:150])
            used.add(first)
            given = [first] + ([r.choice(pool)] if r.random() < 0.3 else [])
            yield Child(
                next(self.ids), given, name, dob, gender, home, self.nhs(),
                r.choice(FAMILY) if r.random() < 0.05 else None,
                self.home() if r.random() < 0.15 else None,
            )  # fmt: skip

    def typo(self, word: str) -> str:
        i = self.rng.randrange(1, len(word)) if len(word) > 1 else 0
        letter = self.rng.choice(string.ascii_lowercase)
        kind = self.rng.randrange(4)
        if kind == 0 and i + 1 < len(word):
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1 and len(word) > 3:
            return word[:i] + word[i + 1 :]
        return word[:i] + letter + word[i + (kind == 2) :]

    def ocr(self, word: str) -> str:
        for right, wrong in [("m", "rn"), ("w", "vv"), ("d", "cl"), ("o", "0"), ("l", "1")]:
            if right in word[1:]:
                return word[0] + word[1:].replace(right, wrong, 1)
        return word

    def record(self, c: Child, n: int) -> pb.SourceRecord:
        r = self.rng
        given, family, former, home, dob = list(c.given), c.family, [], c.home, c.dob
        later = r.random() < 0.5
        if c.new_family and later:
            family, former = c.new_family, ([c.family] if r.random() < 0.6 else [])
        if c.new_home and later:
            home = c.new_home
        if len(given) > 1 and r.random() < 0.2:
            given = given[:1]
        roll = r.random()
        nicknames = sorted(n for g in GROUPS if given[0].lower() in g for n in g if n != given[0].lower())
        if roll < 0.04:
            given[0] = self.typo(given[0])
        elif roll < 0.06:
            given[0] = self.ocr(given[0])
        elif roll < 0.11 and nicknames:
            given[0] = r.choice(nicknames).title()
        elif roll < 0.12:
            given[0] = given[0][0]
        roll = r.random()
        if roll < 0.04:
            family = self.typo(family)
        elif roll < 0.06:
            family = self.ocr(family)
        roll = r.random()
        if roll < 0.02 and dob.day <= 12:
            dob = dob.replace(day=dob.month, month=dob.day)
        elif roll < 0.05:
            dob = r.choice(
                [dob.replace(day=dob.day % 28 + 1), dob.replace(year=dob.year - 1) if dob.month != 2 else dob]
            )
        record = pb.SourceRecord(
            source_system=SOURCES[n][1],
            source_record_id=f"{c.id}-{n}",
            name=child_pb2.PersonName(given_names=" ".join(given), family_name=family),
            former_names=[child_pb2.PersonName(family_name=f) for f in former],
            date_of_birth=date_pb2.Date(year=dob.year, month=dob.month, day=dob.day),
            gender=c.gender if r.random() > 0.05 else 0,
            address=child_pb2.Address(
                lines=[f"{home.house} {home.street}"] if r.random() > 0.05 else [],
                town=home.town if r.random() > 0.05 else "",
                postcode=home.postcode,
            ),
            nhs_number=c.nhs if r.random() < 0.5 else "",
        )
        return record

    def records(self, families: int) -> list[tuple[int, str, pb.SourceRecord]]:
        out = []
        for _ in range(families):
            for c in self.family():
                for n in self.rng.sample(range(len(SOURCES)), self.rng.choice([1, 2, 2, 3, 4])):
                    out.append((c.id, SOURCES[n][0], self.record(c, n)))
        self.rng.shuffle(out)
        return out


@dataclass(frozen=True)
class Linkage:
    """Precision and recall over pairs of records put in one child: as linked automatically, and
    once a data manager has decided every review rightly; how many records were reviewed."""

    precision: float
    recall: float
    decided_precision: float
    decided_recall: float
    reviews: int


def link_online(records: list[tuple[int, str, pb.SourceRecord]]) -> Linkage:
    model, thresholds = default_model(), Thresholds()
    filed: dict[str, list[int]] = defaultdict(list)
    stored: list[Candidate] = []
    truth = [child for child, _, _ in records]
    # Each automatic child's true children, and the child it is once reviews are decided rightly
    # (a data manager links a reviewed record's new child to its candidate when truly one child).
    holds: dict[str, set[int]] = defaultdict(set)
    decided_as: dict[str, str] = {}
    reviews = 0
    for child, organisation, record in records:
        f = features_of(record)
        keys = blocking_keys(f)
        seen = sorted({i for key in keys for i in filed.get(key, ())})
        d = decide(
            f,
            organisation=organisation,
            source_system=record.source_system,
            source_record_id=record.source_record_id,
            candidates=[stored[i] for i in seen],
            kept_apart=(),
            model=model,
            thresholds=thresholds,
        )
        reviews += d.action == Action.REVIEW
        cid = d.candidate.contactpoint_id if d.action == Action.LINK and d.candidate else f"C{len(stored)}"
        if cid not in decided_as:
            proposed = d.candidate.contactpoint_id if d.action == Action.REVIEW and d.candidate else None
            rightly = proposed is not None and child in holds[proposed]
            decided_as[cid] = decided_as[proposed] if rightly and proposed else cid
        holds[cid].add(child)
        stored.append(Candidate(cid, organisation, record.source_system, record.source_record_id, f))
        for key in keys:
            filed[key].append(len(stored) - 1)

    def pairs(groups: Counter[object]) -> int:
        return sum(n * (n - 1) // 2 for n in groups.values())

    def scored(ids: list[str]) -> tuple[float, float]:
        both = pairs(Counter(zip(ids, truth, strict=True)))
        return both / pairs(Counter(ids)), both / pairs(Counter(truth))

    automatic = [c.contactpoint_id for c in stored]
    precision, recall = scored(automatic)
    decided_precision, decided_recall = scored([decided_as[cid] for cid in automatic])
    return Linkage(precision, recall, decided_precision, decided_recall, reviews)


def test_online_linkage_is_precise_and_finds_nearly_every_child() -> None:
    records = World(seed=2026).records(families=1200)
    linkage = link_online(records)
    assert linkage.precision >= 0.999
    # The same NHS number with one part of the date wrong is a data manager's (issue 5): automatic
    # links miss those children until then, and find nearly every one once they are decided.
    assert linkage.recall >= 0.95
    assert linkage.decided_precision >= 0.999 and linkage.decided_recall >= 0.99, linkage
    assert linkage.reviews < 0.05 * len(records)


def test_blocking_finds_nearly_every_pair_of_records_of_one_child() -> None:
    records = World(seed=7).records(families=600)
    keys = [set(blocking_keys(features_of(record))) for _, _, record in records]
    by_child: dict[int, list[int]] = defaultdict(list)
    for i, (child, _, _) in enumerate(records):
        by_child[child].append(i)
    pairs = [(i, j) for members in by_child.values() for i, j in itertools.combinations(members, 2)]
    found = sum(bool(keys[i] & keys[j]) for i, j in pairs)
    # Key scheme 2 gives up a wrong date with a mistyped name after a move (`blocking_keys`): here
    # 2,958 pairs of 2,964 are found, against 2,960 by scheme 1.
    assert found / len(pairs) >= 0.997
