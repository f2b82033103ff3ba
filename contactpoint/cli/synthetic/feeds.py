"""Source records as councils' systems would send them: each true child held by one to four
systems, mostly in one council, with each system's copy corrupted on its own."""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from contactpoint.cli.synthetic import contacts
from contactpoint.cli.synthetic.corruption import Copy, corrupt
from contactpoint.cli.synthetic.people import Child, Household, age_on, household, years_before
from contactpoint.cli.synthetic.places import COUNCILS, Council, Gazetteer
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.convert import from_date
from contactpoint.records.v1 import records_service_pb2 as records_pb

MAX_RECORDS_PER_CHILD = 4
DUPLICATE_IN_SYSTEM = 0.01  # a system holds the same child twice
ADDRESS_NOT_UPDATED = 0.2  # after a move within the council, a system still has the old address
NAME_NOT_UPDATED = 0.35  # after a change of family name, a system still has the old one
FORMER_NAME_HELD = 0.5  # a system that has the new family name also lists the old one
HOUSEHOLDS_PER_BATCH = 64  # records are shuffled within a batch of households
_EPOCH = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class SyntheticRecord:
    """One source record of the feed, with the truth about it."""

    organisation: str  # the council's GSS code, e.g. "E08000003"
    record: records_pb.SourceRecord  # valid for `validate_record` on the feed's `today`
    person: int  # the true child: records with equal `person` are the same child
    household: int = -1  # the true household: siblings (and twins) share it
    corruptions: tuple[str, ...] = ()  # how the record differs from the truth: `corruption.KINDS`


@dataclass(frozen=True, slots=True)
class System:
    name: str
    prefix: str  # of its record ids
    ages: tuple[int, int]  # ages it holds children at, from and below
    share: float  # of the children of those ages it holds
    extended: float  # of the young people with extended records it holds
    nhs: float  # of its records with the NHS number
    stale: float  # of its records last updated long ago (a closed case)
    lag: int  # days its extract may run behind
    education: float  # of its records naming the school
    gp: float  # of its records naming the GP practice
    service: str  # its own involvement ("" for none)


SYSTEMS = (
    System("health-visiting", "HV", (0, 5), 0.95, 0.0, 0.95, 0.08, 3, 0.2, 0.95, "Health Visiting Service"),
    System("school-nursing", "SN", (5, 18), 0.55, 0.0, 0.9, 0.15, 7, 0.9, 0.9, "School Nursing Service"),
    System("education", "ED", (2, 18), 0.93, 0.55, 0.45, 0.04, 14, 1.0, 0.1, ""),
    System("social-care", "SC", (0, 18), 0.24, 0.8, 0.55, 0.4, 1, 0.7, 0.6, "Children's Social Care"),
    System("early-help", "EH", (0, 18), 0.15, 0.0, 0.3, 0.4, 2, 0.6, 0.3, "Early Help"),
    System("youth-justice", "YJ", (10, 18), 0.06, 0.0, 0.5, 0.3, 2, 0.8, 0.5, "Youth Justice Service"),
)
_BY_NAME = {s.name: s for s in SYSTEMS}


class _Feed:
    def __init__(self, seed: int, today: dt.date, children: int = 0) -> None:
        self.seed, self.today, self.children = seed, today, children
        self.rng = random.Random(seed)
        self.salt = zlib.crc32(f"{seed}:nhs".encode())
        self._gazetteers: dict[str, Gazetteer] = {}
        self._services: dict[str, contacts.Services] = {}
        self._ids: dict[tuple[str, str], list[int]] = {}

    def gazetteer(self, council: Council) -> Gazetteer:
        if council.code not in self._gazetteers:
            # About a dozen children a street, as in England (400 streets at the least).
            share = council.children / sum(c.children for c in COUNCILS)
            streets = max(400, int(self.children * share / 12))
            self._gazetteers[council.code] = Gazetteer(council, self.seed, streets)
        return self._gazetteers[council.code]

    def services(self, council: Council) -> contacts.Services:
        if council.code not in self._services:
            self._services[council.code] = contacts.services(council, self.gazetteer(council), self.seed)
        return self._services[council.code]

    def record_id(self, council: Council, system: System) -> str:
        """Unique within the council's system: a bijection of a counter, so ids look arbitrary."""
        key = (council.code, system.name)
        if key not in self._ids:
            self._ids[key] = [0, zlib.crc32(f"{self.seed}:{key}".encode()) % 10**8]
        state = self._ids[key]
        state[0] += 1
        return f"{system.prefix}{(state[0] * 7_368_787 + state[1]) % 10**8:08d}"

    def _systems(self, age: int, extended: bool) -> list[System]:
        rng = self.rng
        if extended:
            held = [s for s in SYSTEMS if s.extended and rng.random() < s.extended]
            return held or [_BY_NAME["social-care"]]
        nursery = 0.6 if age < 4 else 1.0  # funded early education is not universal below four
        held = [
            s
            for s in SYSTEMS
            if s.ages[0] <= age < s.ages[1] and rng.random() < s.share * (nursery if s.prefix == "ED" else 1)
        ]
        return held or [_BY_NAME["health-visiting" if age < 5 else "education"]]

    def _plan(self, h: Household, child: Child) -> list[tuple[Council, System, dt.date]]:
        """Which councils' systems hold the child, and as of when."""
        rng, today = self.rng, self.today
        plan: list[tuple[Council, System, dt.date]] = []
        arrived = child.dob
        moved_council = h.previous_council is not None and h.previous_council.code != h.council.code
        if moved_council and h.moved_on and h.previous_council and child.dob < h.moved_on:
            arrived = h.moved_on
            before = self._systems(age_on(child.dob, h.moved_on), child.extended)
            for system in before[: rng.choice((1, 1, 2))]:
                as_of = max(child.dob, h.moved_on - dt.timedelta(days=rng.randint(1, 240)))
                plan.append((h.previous_council, system, as_of))
        home = []
        for system in self._systems(age_on(child.dob, today), child.extended):
            days = rng.randint(60, 1000) if rng.random() < system.stale else rng.randint(0, system.lag)
            earliest = max(arrived, years_before(child.dob, -system.ages[0]))
            home.append((h.council, system, min(today, max(today - dt.timedelta(days=days), earliest))))
        if rng.random() < DUPLICATE_IN_SYSTEM:
            council, system, when = rng.choice(home)
            home.append((council, system, max(arrived, when - dt.timedelta(days=rng.randint(0, 400)))))
        rng.shuffle(home)
        return plan[: MAX_RECORDS_PER_CHILD - 1] + home[: MAX_RECORDS_PER_CHILD - min(len(plan), 3)]

    def household_records(self, h: Household) -> list[SyntheticRecord]:
        return [
            self._record(h, child, council, system, max(as_of, child.dob))
            for child in h.children
            for council, system, as_of in self._plan(h, child)
        ]

    def _record(
        self, h: Household, child: Child, council: Council, s: System, as_of: dt.date
    ) -> SyntheticRecord:
        rng, today = self.rng, self.today
        kinds: list[str] = []
        address = h.home
        if council.code != h.council.code and h.previous_home:
            address = h.previous_home
            kinds.append("moved")
        elif (
            h.previous_home and h.previous_council is council and h.moved_on
            and (as_of < h.moved_on or rng.random() < ADDRESS_NOT_UPDATED)
        ):  # fmt: skip
            address = h.previous_home
            kinds.append("moved")
        family, former = child.family_name, child.former_family_name
        if former and h.renamed_on and (as_of < h.renamed_on or rng.random() < NAME_NOT_UPDATED):
            family, former = former, ""
            kinds.append("surname_change")
        elif rng.random() >= FORMER_NAME_HELD:
            former = ""
        nhs = child.nhs_number if rng.random() < s.nhs else ""
        if not nhs:
            kinds.append("nhs_missing")
        gender = child_pb2.GENDER_MALE if child.male else child_pb2.GENDER_FEMALE
        copy = Copy(list(child.given), family, child.dob, gender, list(address.lines), address.town,
                    address.postcode, nhs, kinds)  # fmt: skip
        limit = 25 if child.extended else 18
        corrupt(
            rng, copy,
            valid_dob=lambda d: d <= today and age_on(d, today) < limit,
            siblings=[c.nhs_number for c in h.children if c.person != child.person],
        )  # fmt: skip
        upper = "upper_case" in copy.kinds
        record = records_pb.SourceRecord(
            source_system=s.name,
            source_record_id=self.record_id(council, s),
            name=child_pb2.PersonName(given_names=" ".join(copy.given), family_name=copy.family),
            former_names=[child_pb2.PersonName(given_names=" ".join(child.given), family_name=former)]
            if former
            else [],
            date_of_birth=from_date(copy.dob),
            gender=copy.gender,  # type: ignore[arg-type]
            address=child_pb2.Address(lines=copy.lines, town=copy.town, postcode=copy.postcode),
            carers=contacts.carers(rng, h.carers, upper),
            nhs_number=copy.nhs_number,
            as_of=Timestamp(seconds=(as_of.toordinal() - _EPOCH) * 86400),
            extended=child.extended,
        )
        services = self.services(council)
        age = age_on(child.dob, as_of)
        if rng.random() < s.education and (
            setting := contacts.education_setting(services, h.number, child, age)
        ):
            record.education_setting.CopyFrom(setting)
        if rng.random() < s.gp:
            record.gp_practice.CopyFrom(contacts.gp_practice(services, h.number))
        service = "Leaving Care Service" if child.extended and s.name == "social-care" else s.service
        if service:
            record.involvements.append(contacts.involvement(rng, service, council, child.dob, as_of))
        if s.name != "health-visiting":
            record.involvements.extend(contacts.extra_involvements(rng, council, child.dob, as_of, age))
        return SyntheticRecord(council.code, record, child.person, h.number, tuple(copy.kinds))


def synthetic_feed(children: int, seed: int, *, today: dt.date) -> Iterator[SyntheticRecord]:
    """Source records for `children` true children (numbered 0..children-1), from several councils'
    systems, the same for the same arguments. Households are made a batch at a time and their
    records shuffled within the batch, so memory stays small however many children."""
    feed = _Feed(seed, today, children)
    person = number = 0
    batch: list[SyntheticRecord] = []
    while person < children:
        h = household(feed.rng, number, person, children - person, today=today, salt=feed.salt,
                      gazetteer=feed.gazetteer)  # fmt: skip
        number += 1
        person += len(h.children)
        batch += feed.household_records(h)
        if number % HOUSEHOLDS_PER_BATCH == 0:
            feed.rng.shuffle(batch)
            yield from batch
            batch = []
    feed.rng.shuffle(batch)
    yield from batch
