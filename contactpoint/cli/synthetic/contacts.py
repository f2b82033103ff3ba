"""Who else a source record names: carers, the school or nursery, the GP practice and services
working with the child, all with Ofcom drama-range telephone numbers and example.* emails."""

from __future__ import annotations

import datetime as dt
import random
import zlib
from dataclasses import dataclass

from contactpoint.cli.synthetic.names import FAKER_FEMALE, FAKER_MALE, SURNAMES
from contactpoint.cli.synthetic.people import Carer, Child
from contactpoint.cli.synthetic.places import Address, Council, Gazetteer, phone
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.convert import from_date
from contactpoint.records.v1 import records_service_pb2 as records_pb

_AUTHORITIES = {
    "E09000030": "London Borough of Tower Hamlets",
    "E08000032": "City of Bradford Metropolitan District Council",
    "E08000021": "Newcastle City Council",
    "E10000016": "Kent County Council",
    "E10000012": "Essex County Council",
    "E10000017": "Lancashire County Council",
}
# Services with sensitive names: only with consent recorded, and only for older children.
SENSITIVE = (
    ("CAMHS", 11, 0.06),
    ("Sexual Health Service", 13, 0.03),
    ("Young People's Substance Misuse Service", 13, 0.02),
)
_NURSERIES = ("Nursery", "Day Nursery", "Children's Centre", "Nursery School")
_ORDINARY = ("Speech and Language Therapy", "Educational Psychology", "Family Support", "SEND Team")


def authority(council: Council) -> str:
    return _AUTHORITIES.get(council.code, f"{council.name} City Council")


def stable_index(size: int, *keys: object) -> int:
    """The same index in 0..size-1 for the same keys."""
    return zlib.crc32(repr(keys).encode()) % size


@dataclass(frozen=True, slots=True)
class Services:
    """A council area's nurseries, primary and secondary schools, colleges and GP practices."""

    nurseries: tuple[child_pb2.Setting, ...]
    primaries: tuple[child_pb2.Setting, ...]
    secondaries: tuple[child_pb2.Setting, ...]
    colleges: tuple[child_pb2.Setting, ...]
    gps: tuple[child_pb2.GpPractice, ...]


def _address_pb(a: Address) -> child_pb2.Address:
    return child_pb2.Address(lines=a.lines, town=a.town, postcode=a.postcode)


def services(council: Council, gazetteer: Gazetteer, seed: int) -> Services:
    rng = random.Random(f"{seed}:{council.code}:services")
    urns: set[str] = set()

    def setting(kinds: tuple[str, ...]) -> child_pb2.Setting:
        urn = str(rng.randint(100000, 149999))
        while urn in urns:
            urn = str(rng.randint(100000, 149999))
        urns.add(urn)
        stem = gazetteer.stem(rng)
        if rng.random() < 0.15:
            stem = f"St {rng.choice(('Mary', 'John', 'Peter', 'Paul', 'Joseph', 'Anne', 'Chad'))}'s"
        return child_pb2.Setting(
            name=f"{stem} {rng.choice(kinds)}", urn=urn, phone=phone(rng, council.phone),
            address=_address_pb(gazetteer.premises(rng)),
        )  # fmt: skip

    def gp() -> child_pb2.GpPractice:
        kind = rng.choice(
            ("Medical Centre", "Surgery", "Health Centre", "Medical Practice", "Family Practice")
        )
        return child_pb2.GpPractice(
            name=f"{gazetteer.stem(rng)} {kind}", ods_code=f"{council.ods_prefix}{rng.randrange(1000):03d}",
            phone=phone(rng, council.phone), address=_address_pb(gazetteer.premises(rng)),
        )  # fmt: skip

    size = max(4, council.children // 4)
    return Services(
        tuple(setting(_NURSERIES) for _ in range(size)),
        tuple(
            setting(("Primary School", "Community Primary School", "C of E Primary School", "Primary Academy",
                     "RC Primary School", "Junior School", "Infant School"))
            for _ in range(size * 2)
        ),
        tuple(setting(("High School", "Academy", "School", "Community College")) for _ in range(size // 2)),
        tuple(setting(("College", "Sixth Form College")) for _ in range(2)),
        tuple(gp() for _ in range(size)),
    )  # fmt: skip


def education_setting(s: Services, household: int, child: Child, age: int) -> child_pb2.Setting | None:
    """Where the child is educated at `age`: siblings mostly go to the same schools."""
    key = household if child.person % 7 else child.person
    if age < 2 or (child.extended and age > 19):
        return None
    stage = s.nurseries if age < 4 else s.primaries if age < 11 else s.secondaries if age < 16 else s.colleges
    return stage[stable_index(len(stage), key, len(stage))]


def gp_practice(s: Services, household: int) -> child_pb2.GpPractice:
    return s.gps[stable_index(len(s.gps), household)]


def format_phone(rng: random.Random, digits: str) -> str:
    """An 11-digit UK number written one of the ways people write them."""
    style = rng.random()
    if style < 0.45:
        return f"{digits[:5]} {digits[5:]}"
    if style < 0.75:
        return digits
    if style < 0.85:
        return f"{digits[:5]} {digits[5:8]} {digits[8:]}"
    return rng.choice(("+44 ", "+44")) + digits[1:5] + " " + digits[5:]


def carers(rng: random.Random, held: tuple[Carer, ...], upper: bool) -> list[child_pb2.Carer]:
    """The carers one source holds: all of them, the first, or none."""
    r = rng.random()
    chosen = held if r < 0.6 else held[:1] if r < 0.95 else ()
    out = []
    for c in chosen:
        name = child_pb2.PersonName(
            given_names=c.given, family_name=c.family_name.upper() if upper else c.family_name
        )
        out.append(
            child_pb2.Carer(
                name=name, relationship=c.relationship, parental_responsibility=c.parental_responsibility,
                phone=format_phone(rng, c.mobile) if rng.random() < 0.85 else "",
                email=c.email if rng.random() < 0.7 else "",
            )
        )  # fmt: skip
    return out


def involvement(
    rng: random.Random,
    service: str,
    council: Council,
    dob: dt.date,
    as_of: dt.date,
    *,
    sensitive: bool = False,
) -> records_pb.SourceInvolvement:
    """One service's involvement, begun after birth and by `as_of`, sometimes ended."""
    male = rng.random() < 0.3
    given = (FAKER_MALE if male else FAKER_FEMALE).pick(rng)
    family = SURNAMES["english"].pick(rng)
    start = dob + dt.timedelta(days=rng.randint(0, max(0, (as_of - dob).days)))
    nhs = service not in ("Early Help", "Family Support", "Youth Justice Service", "Children's Social Care",
                          "SEND Team", "Educational Psychology", "Leaving Care Service")  # fmt: skip
    domain = "nhs.example" if nhs else f"{council.name.lower().replace(' ', '')}.gov.example"
    inv = records_pb.SourceInvolvement(
        service_name=service,
        practitioner_name=f"{given} {family}",
        organisation=f"{council.name} NHS Foundation Trust" if nhs else authority(council),
        phone=phone(rng, council.phone),
        email=f"{given.lower()}.{family.lower().replace(chr(39), '')}@{domain}",
        start_date=from_date(start),
        lead_professional=not nhs and rng.random() < 0.4,
        assessment_held=rng.random() < 0.5,
        sensitive=sensitive,
        consent_recorded=sensitive or rng.random() < 0.8,
    )
    if rng.random() < 0.25 and start < as_of:
        inv.end_date.CopyFrom(from_date(start + dt.timedelta(days=rng.randint(1, (as_of - start).days))))
    return inv


def extra_involvements(
    rng: random.Random, council: Council, dob: dt.date, as_of: dt.date, age: int
) -> list[records_pb.SourceInvolvement]:
    """Other services a record may list: ordinary ones, and sensitive ones for older children."""
    out = []
    if rng.random() < 0.1:
        out.append(involvement(rng, rng.choice(_ORDINARY), council, dob, as_of))
    for service, min_age, share in SENSITIVE:
        if age >= min_age and rng.random() < share:
            out.append(involvement(rng, service, council, dob, as_of, sensitive=True))
    return out
