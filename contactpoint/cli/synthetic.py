"""Synthetic children for `contactpoint seed`: realistic English names, addresses, schools, GPs and
services, with the same child often held by more than one source system (as in real feeds)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from faker import Faker

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.convert import from_date
from contactpoint.records.v1 import records_service_pb2 as records_pb

SERVICES = [
    ("Early Help", False),
    ("Youth Offending Team", False),
    ("Children's Social Care", False),
    ("School Nursing", False),
    ("Speech and Language Therapy", False),
    ("Educational Psychology", False),
    ("CAMHS", True),
    ("Sexual Health Service", True),
    ("Young People's Substance Misuse Service", True),
]
SOURCES = ("social-care", "education", "health-visiting")
RELATIONSHIPS = ("mother", "father", "grandmother", "foster carer", "stepfather", "aunt")


def _nhs_number(rng: random.Random) -> str:
    while True:
        body = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, body)) + str(check)


def _address(fake: Faker) -> child_pb2.Address:
    return child_pb2.Address(
        lines=fake.street_address().splitlines(), town=fake.city(), postcode=fake.postcode()
    )


def synthetic_records(
    count: int, seed: int, *, today: date | None = None
) -> Iterator[records_pb.SourceRecord]:
    """`count` children as source records; about a third are sent again by a second source system."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    for n in range(count):
        gender = rng.choice([child_pb2.GENDER_FEMALE, child_pb2.GENDER_MALE])
        given = fake.first_name_female() if gender == child_pb2.GENDER_FEMALE else fake.first_name_male()
        if rng.random() < 0.3:
            given += " " + fake.first_name()
        family = fake.last_name()
        dob = today - timedelta(days=rng.randrange(30, 17 * 365))
        address = _address(fake)
        record = records_pb.SourceRecord(
            source_system=SOURCES[0],
            source_record_id=f"SC{seed}-{n:07d}",
            name=child_pb2.PersonName(given_names=given, family_name=family),
            date_of_birth=from_date(dob),
            gender=gender,
            address=address,
            carers=[
                child_pb2.Carer(
                    name=child_pb2.PersonName(given_names=fake.first_name(), family_name=family),
                    relationship=rng.choice(RELATIONSHIPS),
                    phone=fake.phone_number(),
                    email=fake.email(),
                    parental_responsibility=True,
                )
            ],
            education_setting=child_pb2.Setting(
                name=f"{fake.last_name()} {rng.choice(['Primary School', 'Academy', 'High School'])}",
                urn=str(100000 + rng.randrange(900000)),
                phone=fake.phone_number(),
                address=_address(fake),
            ),
            gp_practice=child_pb2.GpPractice(
                name=f"{fake.city()} Medical Practice",
                ods_code=f"{rng.choice('ABCDEFGHJKLMNPY')}{rng.randrange(10000, 99999)}",
                phone=fake.phone_number(),
                address=_address(fake),
            ),
            nhs_number=_nhs_number(rng),
        )
        # Midnight of `today`, so that the same seed on the same day gives identical records.
        record.as_of.FromDatetime(datetime(today.year, today.month, today.day, tzinfo=UTC))
        for service, sensitive in rng.sample(SERVICES, rng.randrange(0, 3)):
            involvement = record.involvements.add(
                service_name=service,
                practitioner_name=fake.name(),
                organisation=f"{fake.city()} Council" if not sensitive else f"{fake.city()} NHS Trust",
                phone=fake.phone_number(),
                email=fake.email(),
                sensitive=sensitive,
                consent_recorded=True,
            )
            involvement.start_date.CopyFrom(from_date(today - timedelta(days=rng.randrange(1, 700))))
        yield record
        if rng.random() < 0.33:
            # The same child as another system holds it: its own id, the name in capitals.
            other = records_pb.SourceRecord()
            other.CopyFrom(record)
            other.source_system = rng.choice(SOURCES[1:])
            other.source_record_id = f"{other.source_system[:2].upper()}{seed}-{n:07d}"
            other.name.family_name = family.upper()
            del other.involvements[:]
            yield other
