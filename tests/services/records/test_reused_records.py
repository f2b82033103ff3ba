"""A council's source record sent again with new content: a correction stays with its child,
however many fields it fixes at once; content that is another child altogether (a record id
reused, also after a withdrawal) is refused, FAILED_PRECONDITION SOURCE_RECORD_REUSED, and nothing
changes: a source record id is one child's for life. Found by probing: Alice's record sent as
Bartholomew kept Alice's id, and her school from another council showed beside his name; then,
when such a record moved to a new child, a shielded child's corrected spelling lost her shield."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pytest
from sqlalchemy import text

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition, NotFound
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin, children, ingestion, withdrawal
from services.records.ingestion import SOURCE_RECORD_REUSED
from services.records.linkage import Thresholds
from services.records.linkage.verdicts import RULE_SPLIT
from services.records.matching import Matcher
from services.records.model import Outcome, Submitted
from services.records.preparing import Submission
from services.records.repository import children as child_repo
from services.records.repository import lifecycle as lifecycle_repo
from tests.services.records.conftest import ORG_A, ORG_B, make_record, valid_nhs_number

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
        lambda c: withdrawal.withdraw(
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


def reused(db: Database, record: pb.SourceRecord, **kwargs: object) -> None:
    with pytest.raises(FailedPrecondition) as refused:
        submit(db, record, **kwargs)  # type: ignore[arg-type]
    assert refused.value.reason == SOURCE_RECORD_REUSED


def test_a_record_reused_for_another_child_is_refused_and_nothing_changes(db: Database) -> None:
    alice = submit(db, make_record("rk-1"))
    other_council = submit(db, make_record("hv-1", source_system="health-visiting"), org=ORG_B)
    assert other_council == Submitted(alice.contactpoint_id, Outcome.LINKED)

    reused(db, bartholomew("rk-1"))

    kept = child(db, alice.contactpoint_id)
    assert (kept.name.given_names, kept.name.family_name) == ("Amelia", "Okafor")
    assert not kept.former_names and kept.address.postcode == "M1 1AE"
    assert kept.education_setting.name == "Oak Primary School"
    # Its own content again is unchanged; a retry of the refused request is refused again.
    assert submit(db, make_record("rk-1"), again="-2") == Submitted(alice.contactpoint_id, Outcome.UNCHANGED)
    reused(db, bartholomew("rk-1"))


def test_a_withdrawn_record_sent_again_as_another_child_is_refused(db: Database) -> None:
    alice = submit(db, make_record("rk-3"))
    withdraw(db, "rk-3")
    reused(db, bartholomew("rk-3"))
    with pytest.raises(NotFound):
        child(db, alice.contactpoint_id)
    # The same child sent again after a withdrawal is still its old id.
    assert submit(db, make_record("rk-3"), again="-2").contactpoint_id == alice.contactpoint_id


@pytest.mark.parametrize(
    "correct",
    [
        pytest.param(lambda r: (setattr(r.date_of_birth, "day", 15), _move(r)), id="a day and a move"),
        pytest.param(
            lambda r: (r.name.CopyFrom(_name("Amelia", "Bennett")), _move(r)), id="new surname, moved"
        ),
        pytest.param(
            lambda r: (
                r.name.CopyFrom(_name("Amelai", "Okafor")),
                setattr(r.date_of_birth, "month", 4),
                _move(r),
            ),
            id="a typo, a month and a move",
        ),
        pytest.param(lambda r: r.name.CopyFrom(_name("Emilia", "Okafor")), id="a spelling"),
    ],
)
def test_corrections_stay_with_their_child_even_several_at_once(
    db: Database, correct: Callable[[pb.SourceRecord], object]
) -> None:
    """Found by probing: a date fixed and a move in one update made a new child."""
    first = submit(db, make_record("rk-5", nhs_number=""))
    corrected = make_record("rk-5", nhs_number="")
    correct(corrected)
    # With automatic linking off too (onboarding a feed): a correction is no new link.
    manual = Matcher(thresholds=Thresholds(auto_link=False))
    assert submit(db, corrected, matcher=manual) == Submitted(first.contactpoint_id, Outcome.LINKED)


def test_a_shielded_childs_spelling_corrected_keeps_her_id_and_her_shield(db: Database) -> None:
    """Found by probing: Khloe corrected to Chloe became a new, unshielded child."""
    khloe = make_record("rk-6", name=_name("Khloe", "Fenwick"), nhs_number="")
    first = submit(db, khloe)
    db.run_sync(lambda c: child_repo.set_shielding(c, first.contactpoint_id, shielded=True, now=NOW))
    chloe = make_record("rk-6", name=_name("Chloe", "Fenwick"), nhs_number="")
    assert submit(db, chloe) == Submitted(first.contactpoint_id, Outcome.LINKED)
    assert child(db, first.contactpoint_id).shielded


def _name(given: str, family: str) -> child_pb2.PersonName:
    return child_pb2.PersonName(given_names=given, family_name=family)


def _move(record: pb.SourceRecord) -> None:
    record.address.CopyFrom(child_pb2.Address(lines=["9 Mill Lane"], town="Leeds", postcode="LS1 4AP"))


def _someone(
    rid: str, given: str, family: str, postcode: str, day: int, **overrides: object
) -> pb.SourceRecord:
    record = make_record(
        rid,
        name=child_pb2.PersonName(given_names=given, family_name=family),
        address=child_pb2.Address(lines=[f"{day} Mill Lane"], town="Leeds", postcode=postcode),
        nhs_number="",
        **overrides,
    )
    record.date_of_birth.day = day
    return record


def test_a_batch_of_corrections_each_now_another_childs_too_raises_a_task_for_each(db: Database) -> None:
    """Records sent again are matched again together, a batch at a time: each correction that now
    looks like another child reaches a data manager, and one of a child archived meanwhile does
    not; the same record twice in a batch is matched as its newest version."""
    matcher = Matcher()
    people = [
        ("Priya", "Raman", "LS1 4AB", 3),
        ("Tomasz", "Nowak", "LS2 7DJ", 9),
        ("Ada", "Finch", "LS3 1EF", 21),
    ]
    others = [submit(db, _someone(f"b-{n}", *who), org=ORG_B) for n, who in enumerate(people)]

    def first_version(n: int) -> pb.SourceRecord:
        # Council A's first versions: the family name misspelt, the month wrong, another address.
        given, family, _, day = people[n]
        record = _someone(f"a-{n}", given, family[:-1] + "x", "YO1 7EP", day, source_system="education")
        record.date_of_birth.month = 9
        return record

    firsts = [submit(db, first_version(n)) for n in range(len(people))]
    assert [f.outcome for f in firsts] == [Outcome.CREATED] * 3
    db.run_sync(lambda c: lifecycle_repo.archive(c, {firsts[2].contactpoint_id: NOW}))

    def corrected(n: int) -> pb.SourceRecord:
        return _someone(f"a-{n}", *people[n], source_system="education")

    batch = [
        Submission("fix-0", corrected(0)),
        Submission("fix-1a", first_version(1)),
        Submission("fix-1b", corrected(1)),  # the same record again in the batch: its newest version
        Submission("fix-2", corrected(2)),  # its child archived: no task
    ]
    answers = admin.ingest(db, organisation=ORG_A, submissions=batch, matcher=matcher)
    assert answers == [
        Submitted(firsts[0].contactpoint_id, Outcome.LINKED),
        Submitted(firsts[1].contactpoint_id, Outcome.UNCHANGED),
        Submitted(firsts[1].contactpoint_id, Outcome.LINKED),
        Submitted(firsts[2].contactpoint_id, Outcome.LINKED),
    ]
    pairs = db.run_sync(
        lambda c: {
            frozenset(row)
            for row in c.execute(text("SELECT new_child, candidate FROM review_tasks WHERE status = 'open'"))
        },
        write=False,
    )
    assert pairs == {
        frozenset({firsts[0].contactpoint_id, others[0].contactpoint_id}),
        frozenset({firsts[1].contactpoint_id, others[1].contactpoint_id}),
    }


def test_a_corrections_task_comes_before_a_later_records_task_for_the_same_pair(db: Database) -> None:
    """Found by review: matched again at the end of the batch, a correction's task for a pair
    came after the task a later record of the batch raised for the same pair, which then took its
    place (the first task for a pair is the one kept)."""
    number = valid_nhs_number(5)

    def priya(rid: str, family: str, postcode: str, system: str) -> pb.SourceRecord:
        record = _someone(rid, "Priya", family, postcode, 5, source_system=system)
        record.nhs_number = number
        return record

    theirs = submit(db, _someone("b-0", "Priya", "Raman", "LS1 4AB", 5), org=ORG_B)
    first = priya("a-0", "Ramax", "YO1 7EP", "education")
    first.date_of_birth.month = 9
    ours = submit(db, first)
    # A new record of the child, which links to it (the same NHS number and date of birth as it
    # was before the correction) and would link to the other child too.
    also = priya("c-9", "Raman", "LS1 4AB", "health")
    also.date_of_birth.month = 9
    batch = [Submission("fix-0", priya("a-0", "Raman", "LS1 4AB", "education")), Submission("new-1", also)]
    answers = admin.ingest(db, organisation=ORG_A, submissions=batch, matcher=Matcher())
    assert answers == [Submitted(ours.contactpoint_id, Outcome.LINKED)] * 2
    tasks = db.run_sync(
        lambda c: c.execute(text("SELECT new_child, candidate, reasons FROM review_tasks")).all(), write=False
    )
    assert [(t.new_child, t.candidate) for t in tasks] == [(ours.contactpoint_id, theirs.contactpoint_id)]
    assert RULE_SPLIT not in tasks[0].reasons
