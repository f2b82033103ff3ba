"""Record linkage: pure functions, tested field by field, rule by rule, by property and on
simulated English children's records. Shared builders for the tests live here."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from google.type import date_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.linkage import Features

NHS = "9434765919"  # a valid NHS number (mod-11 check digit)
OTHER_NHS = "4010232137"

BASE = Features(
    given=("oliver", "james"),
    family=("okonkwo",),
    former_family=(),
    former_given=(),
    dob=dt.date(2015, 3, 7),
    gender=1,
    postcode="M11AE",
    house="12",
    street=("high", "st"),
    town="manchester",
    nhs="",
)


def child(**changes: Any) -> Features:
    """The base child's features with some fields changed."""
    return dataclasses.replace(BASE, **changes)


def source_record(
    *,
    given: str = "Oliver James",
    family: str = "Okonkwo",
    former: tuple[str, ...] = (),
    dob: tuple[int, int, int] | None = (2015, 3, 7),
    gender: int = child_pb2.GENDER_MALE,
    lines: tuple[str, ...] = ("12 High Street",),
    town: str = "Manchester",
    postcode: str = "M1 1AE",
    nhs: str = "",
) -> pb.SourceRecord:
    """A validated, normalised source record (the shape `features_of` is given)."""
    record = pb.SourceRecord(
        source_system="social-care",
        source_record_id="SC-1",
        name=child_pb2.PersonName(given_names=given, family_name=family),
        former_names=[child_pb2.PersonName(family_name=name) for name in former],
        gender=gender,
        address=child_pb2.Address(lines=list(lines), town=town, postcode=postcode),
        nhs_number=nhs,
    )
    if dob is not None:
        record.date_of_birth.CopyFrom(date_pb2.Date(year=dob[0], month=dob[1], day=dob[2]))
    return record
