"""A moved child's carers still say which household it belongs to: a record from another council
after a move, its date of birth a day out and no NHS number, joins its child when a carer is named
alike on both, is only proposed with no carer in common, and is proposed, not joined, when the
carers are other people (found by probing: a namesake with the same date of birth elsewhere, other
carers, school and GP, was joined on names and date alone)."""

from __future__ import annotations

import pytest

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin
from services.records.matching import Matcher
from services.records.model import Outcome, Submitted
from services.records.preparing import Submission
from tests.services.records.conftest import ORG_A, ORG_B, make_record


def carer(given: str, family: str) -> child_pb2.Carer:
    return child_pb2.Carer(
        name=child_pb2.PersonName(given_names=given, family_name=family), relationship="mother"
    )


def moved(rid: str, carers: list[child_pb2.Carer]) -> pb.SourceRecord:
    record = make_record(
        rid,
        source_system="education",
        address=child_pb2.Address(lines=["3 Park Road"], town="Leeds", postcode="LS6 1AA"),
        nhs_number="",
    )
    record.date_of_birth.day = 15  # a day out: the fixture's child was born on 14 March
    del record.carers[:]
    record.carers.extend(carers)
    return record


@pytest.mark.parametrize(
    ("carers", "outcome"),
    [
        ([carer("Grace", "Okafor")], Outcome.LINKED),
        ([carer("Grace", "Okafor"), carer("Ade", "Okafor")], Outcome.LINKED),
        ([], Outcome.POSSIBLE_MATCH),
        ([carer("Ade", "Okafor")], Outcome.POSSIBLE_MATCH),  # the other parent: no evidence either way
        ([carer("Karen", "Jones")], Outcome.POSSIBLE_MATCH),
    ],
)
def test_a_moved_child_joins_by_its_carers(
    db: Database, carers: list[child_pb2.Carer], outcome: Outcome
) -> None:
    matcher = Matcher()
    first = admin.ingest(
        db,
        organisation=ORG_A,
        submissions=[Submission("a-1", make_record("SC-1", nhs_number=""))],
        matcher=matcher,
    )[0]
    assert isinstance(first, Submitted) and first.outcome == Outcome.CREATED
    second = admin.ingest(
        db, organisation=ORG_B, submissions=[Submission("b-1", moved("ED-1", carers))], matcher=matcher
    )[0]
    assert isinstance(second, Submitted), second
    assert second.outcome == outcome
    assert (second.contactpoint_id == first.contactpoint_id) == (outcome == Outcome.LINKED)
