"""A council's source record sent again with new content: a correction stays with its child; content
that is another child (a record id reused, or corrected to the child it should have been) is
decided again, as a new record would be. Found by probing: Alice's record corrected to
Bartholomew kept Alice's id, and her school from another council showed beside his name."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import NotFound
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import children, ingestion
from services.records.linkage import Thresholds
from services.records.matching import Matcher
from services.records.model import Outcome, Submitted
from services.records.tables import review_tasks
from tests.services.records.conftest import ORG_A, ORG_B, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def submit(
    db: Database,
    record: pb.SourceRecord,
    *,
    org: str = ORG_A,
    matcher: Matcher | None = None,
    again: str = "",
) -> Submitted:
    content = hashlib.sha256(record.SerializeToString()).hexdigest()[:16]
    rid = f"{org}-{record.source_system}-{record.source_record_id}-{content}{again}"
    return db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=org, request_id=rid, record=record, matcher=matcher, now=NOW
        )
    )


def withdraw(db: Database, rid: str, *, org: str = ORG_A) -> None:
    db.run_sync(
        lambda c: ingestion.withdraw(
            c, organisation=org, source_system="social-care", source_record_id=rid, now=NOW
        )
    )


def child(db: Database, contactpoint_id: str) -> child_pb2.Child:
    return db.run_sync(
        lambda c: children.get_child(c, contactpoint_id=contactpoint_id, today=NOW.date()), write=False
    )


def bartholomew(rid: str, **overrides: object) -> pb.SourceRecord:
    """Another child entirely: name, date of birth, gender, address and NHS number."""
    record = make_record(
        rid,
        name=child_pb2.PersonName(given_names="Bartholomew", family_name="Ogunleye"),
        gender=child_pb2.GENDER_MALE,
        address=child_pb2.Address(lines=["7 Dock Road"], town="Hull", postcode="HU1 2AA"),
        nhs_number="",
        education_setting=child_pb2.Setting(name="Hull Academy", urn="117000"),
        **overrides,
    )
    record.date_of_birth.year -= 3
    record.date_of_birth.month, record.date_of_birth.day = 8, 30
    return record


def test_a_record_reused_for_another_child_leaves_its_child(db: Database) -> None:
    alice = submit(db, make_record("rk-1"))
    other_council = submit(db, make_record("hv-1", source_system="health-visiting"), org=ORG_B)
    assert other_council == Submitted(alice.contactpoint_id, Outcome.LINKED)

    reused = submit(db, bartholomew("rk-1"))

    assert reused.outcome is Outcome.CREATED
    assert reused.contactpoint_id != alice.contactpoint_id
    kept = child(db, alice.contactpoint_id)  # Alice, from the other council's record alone
    assert (kept.name.given_names, kept.name.family_name) == ("Amelia", "Okafor")
    assert not kept.former_names
    assert kept.address.postcode == "M1 1AE"
    new = child(db, reused.contactpoint_id)
    assert (new.name.given_names, new.education_setting.name) == ("Bartholomew", "Hull Academy")
    assert new.date_of_birth.month == 8
    # Sent again, it is unchanged where it now is.
    assert submit(db, bartholomew("rk-1"), again="-2") == Submitted(reused.contactpoint_id, Outcome.UNCHANGED)


def test_a_childs_only_record_reused_leaves_nothing_visible_of_it(db: Database) -> None:
    alice = submit(db, make_record("rk-2"))
    reused = submit(db, bartholomew("rk-2"))
    assert reused.outcome is Outcome.CREATED and reused.contactpoint_id != alice.contactpoint_id
    with pytest.raises(NotFound):
        child(db, alice.contactpoint_id)


def test_a_withdrawn_record_sent_again_as_another_child_is_a_new_child(db: Database) -> None:
    alice = submit(db, make_record("rk-3"))
    withdraw(db, "rk-3")
    revived = submit(db, bartholomew("rk-3"))
    assert revived.outcome is Outcome.CREATED and revived.contactpoint_id != alice.contactpoint_id
    with pytest.raises(NotFound):
        child(db, alice.contactpoint_id)
    # The same child sent again after a withdrawal is still its old id.
    withdraw(db, "rk-3")
    assert submit(db, bartholomew("rk-3"), again="-2").contactpoint_id == revived.contactpoint_id


def test_a_record_corrected_to_the_child_another_council_holds_joins_it(db: Database) -> None:
    held = submit(db, bartholomew("hv-2", source_system="health-visiting"), org=ORG_B)
    wrong = submit(db, make_record("rk-4"))
    assert wrong.outcome is Outcome.CREATED
    corrected = submit(db, bartholomew("rk-4"))
    assert corrected == Submitted(held.contactpoint_id, Outcome.LINKED)
    with pytest.raises(NotFound):
        child(db, wrong.contactpoint_id)


def test_a_correction_of_the_same_child_stays_even_with_automatic_linking_off(db: Database) -> None:
    manual = Matcher(thresholds=Thresholds(auto_link=False))
    first = submit(db, make_record("rk-5"), matcher=manual)
    moved = make_record(
        "rk-5",
        name=child_pb2.PersonName(given_names="Amelia Grace", family_name="Okafor"),
        address=child_pb2.Address(lines=["9 Mill Lane"], town="Leeds", postcode="LS1 4AP"),
    )
    moved.date_of_birth.month, moved.date_of_birth.day = 3, 15  # a day corrected
    assert submit(db, moved, matcher=manual) == Submitted(first.contactpoint_id, Outcome.LINKED)
    assert child(db, first.contactpoint_id).address.postcode == "LS1 4AP"


def test_a_twins_record_corrected_to_her_sister_leaves_the_twin(db: Database) -> None:
    alice = submit(db, make_record("rk-6"))
    submit(db, make_record("hv-6", source_system="health-visiting"), org=ORG_B)
    # The twin's record was sent under her sister's record id, then corrected: the same family,
    # birthday and address, another given name.
    twin = make_record(
        "rk-6", name=child_pb2.PersonName(given_names="Zara", family_name="Okafor"), nhs_number=""
    )
    corrected = submit(db, twin)
    assert corrected.contactpoint_id != alice.contactpoint_id
    assert corrected.outcome in (Outcome.CREATED, Outcome.POSSIBLE_MATCH)
    assert child(db, alice.contactpoint_id).name.given_names == "Amelia"
    assert child(db, corrected.contactpoint_id).name.given_names == "Zara"


def test_a_child_left_by_its_last_record_has_no_review_task_waiting(db: Database) -> None:
    amelia = submit(db, make_record("rk-7"))
    moved = make_record(
        "rk-8",
        source_system="education",
        address=child_pb2.Address(lines=["3 Park Road"], town="Bolton", postcode="BL1 1AA"),
        nhs_number="",
    )
    moved.date_of_birth.day = 15  # moved, and the day one out: a possible match
    possible = submit(db, moved)
    assert possible.outcome is Outcome.POSSIBLE_MATCH

    submit(db, bartholomew("rk-8", source_system="education"))

    open_tasks = db.run_sync(
        lambda c: c.execute(
            select(review_tasks.c.task_id).where(
                review_tasks.c.new_child == possible.contactpoint_id, review_tasks.c.status == "open"
            )
        ).all(),
        write=False,
    )
    assert open_tasks == []
    with pytest.raises(NotFound):
        child(db, possible.contactpoint_id)
    assert child(db, amelia.contactpoint_id).name.given_names == "Amelia"
