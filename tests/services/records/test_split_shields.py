"""Shields around a child filed twice, in the domain on SQLite and PostgreSQL: a shield given to
either child after the review task exists reaches the other, and a shield shown only because of
the pair is lifted when the task ends however it ends (kept apart, linked, overtaken, or its
other child archived)."""

from __future__ import annotations

import datetime as dt

import pytest
from google.type import date_pb2
from sqlalchemy import update

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import NotFound
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin, ingestion, merging, placement, review, shielding, task_upkeep, withdrawal
from services.records.model import DEFAULT_LIMITS as LIMITS
from services.records.model import ConcurrentChange
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.stewardship import KEEP_APART, LINK, Manager
from services.records.tables import children
from tests.services.records.conftest import ORG_A, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
MANAGER = Manager("dm-a", ORG_A)
LEEDS = child_pb2.Address(lines=["9 Park Road"], town="Leeds", postcode="LS1 4AP")
OLD = child_pb2.PersonName(given_names="Amelia", family_name="Okafor")
NEW = child_pb2.PersonName(given_names="Amelia", family_name="Mensah")


def _submit(db: Database, record: pb.SourceRecord) -> str:
    return db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=ORG_A, request_id=record.source_record_id, record=record, now=NOW
        )
    ).contactpoint_id


def _split(db: Database) -> tuple[str, str]:
    """The child under its old name, again renamed after a move, and a third system's record
    joining the second and naming the first: (old, new), with one review task between them."""
    old = _submit(db, make_record("sc-1", name=OLD, nhs_number=""))
    new = _submit(db, make_record("ed-1", source_system="education", name=NEW, address=LEEDS, nhs_number=""))
    assert old != new
    return old, new


def _bridge(db: Database) -> str:
    record = make_record(
        "hv-1", source_system="health-visiting", name=NEW, address=LEEDS, nhs_number="", former_names=[OLD]
    )
    return _submit(db, record)


def _shield(db: Database, contactpoint_id: str, shielded: bool = True) -> None:
    db.run_sync(
        lambda c: shielding.set_shielded(
            c, manager=MANAGER, contactpoint_id=contactpoint_id, shielded=shielded, reason="order", now=NOW
        )
    )


def _shown_shielded(db: Database, contactpoint_id: str) -> bool:
    row = db.run_sync(lambda c: child_repo.child(c, contactpoint_id), write=False)
    assert row is not None
    return row.shown_shielded


@pytest.mark.parametrize("shielded_side", ["old", "new"])
def test_a_shield_after_the_task_reaches_the_other_child(db: Database, shielded_side: str) -> None:
    old, new = _split(db)
    assert _bridge(db) == new
    shielded, other = (old, new) if shielded_side == "old" else (new, old)
    _shield(db, shielded)
    assert _shown_shielded(db, other)


def test_a_task_overtaken_by_events_lifts_its_shield(db: Database) -> None:
    old, new = _split(db)
    _shield(db, old)
    _bridge(db)
    assert _shown_shielded(db, new)
    # The council withdraws the old record: the task has nothing left to decide.
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="sc-1", now=NOW
        )
    )
    with pytest.raises(NotFound):
        db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    assert not _shown_shielded(db, new)
    assert _shown_shielded(db, old)


def test_linked_then_unmerged_leaves_no_shield_behind(db: Database) -> None:
    old, new = _split(db)
    _shield(db, old)
    _bridge(db)
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    resolution = db.run_sync(
        lambda c: review.resolve_task(
            c, manager=MANAGER, task_id=task.task_id, decision=LINK, reason="one child", now=NOW
        )
    )
    survivor = resolution.contactpoint_id
    assert resolution.children == tuple(sorted((old, new)))
    # The other child is the task's candidate, and remains: the one the record joined merges in.
    assert survivor == old and _shown_shielded(db, old)
    db.run_sync(
        lambda c: merging.unmerge(
            c, manager=MANAGER, retired_id=new, reason="two children after all", now=NOW
        )
    )
    assert _shown_shielded(db, old)
    assert not _shown_shielded(db, new)  # back as it was: never shielded itself


def test_a_merged_childs_task_follows_it_to_the_survivor(db: Database) -> None:
    old, new = _split(db)
    _bridge(db)
    bristol = child_pb2.Address(lines=["4 Mill Lane"], town="Bristol", postcode="BS1 4DJ")
    tobi = child_pb2.PersonName(given_names="Tobi", family_name="Adeyemi")
    other = _submit(
        db, make_record("yj-1", source_system="youth-justice", name=tobi, address=bristol, nhs_number="")
    )
    assert other not in (old, new)
    _shield(db, other)
    # A data manager merges the old child into another, shielded one: the question the task asks
    # is now about the survivor, and the joined child is shown shielded while it is open.
    db.run_sync(
        lambda c: merging.merge_children(
            c, manager=MANAGER, survivor_id=other, retired_id=old, reason="same child", limits=LIMITS, now=NOW
        )
    )
    assert _shown_shielded(db, new)
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    assert {task.new_child.contactpoint_id, task.candidate.contactpoint_id} == {other, new}
    db.run_sync(
        lambda c: review.resolve_task(
            c, manager=MANAGER, task_id=task.task_id, decision=KEEP_APART, reason="two children", now=NOW
        )
    )
    assert not _shown_shielded(db, new) and _shown_shielded(db, other)


def test_archiving_a_child_ends_its_tasks_and_the_shields_they_caused(db: Database) -> None:
    born = dt.date(2008, 7, 20)  # 18 on 20 July 2026, after NOW
    due = _submit(
        db, make_record("sc-9", date_of_birth=date_pb2.Date(year=born.year, month=born.month, day=born.day))
    )
    young = _submit(
        db, make_record("ed-9", source_system="education", name=NEW, address=LEEDS, nhs_number="")
    )
    _shield(db, due)
    task = review_repo.NewTask("a" * 32, young, due, 5.0, ("weight 5",))
    db.run_sync(
        lambda c: (review_repo.insert_tasks(c, [task], now=NOW), task_upkeep.pair_shields(c, [task], now=NOW))
    )
    assert _shown_shielded(db, young)
    assert admin.run_lifecycle(db, today=born.replace(year=2026)).archived == 1
    assert not _shown_shielded(db, young)
    assert db.run_sync(lambda c: review_repo.open_tasks_of(c, young), write=False) == []


def test_unshielding_is_a_data_managers_decision_and_lifts_what_it_caused(db: Database) -> None:
    old, new = _split(db)
    _bridge(db)
    _shield(db, old)
    assert _shown_shielded(db, new)
    _shield(db, old, shielded=False)  # the shield that held `new` back is gone
    assert not _shown_shielded(db, new) and not _shown_shielded(db, old)
    _shield(db, old)
    assert _shown_shielded(db, new)
    _shield(db, new, shielded=False)  # a data manager says `new` need not be hidden
    assert not _shown_shielded(db, new) and _shown_shielded(db, old)


def test_a_child_an_unmerge_puts_back_gets_its_pairs_and_their_shields_back(db: Database) -> None:
    old, new = _split(db)
    _bridge(db)  # a task pairs old and new
    _shield(db, new)
    assert _shown_shielded(db, old)
    bristol = child_pb2.Address(lines=["4 Mill Lane"], town="Bristol", postcode="BS1 4DJ")
    tobi = child_pb2.PersonName(given_names="Tobi", family_name="Adeyemi")
    other = _submit(
        db, make_record("yj-1", source_system="youth-justice", name=tobi, address=bristol, nhs_number="")
    )
    db.run_sync(
        lambda c: merging.merge_children(
            c, manager=MANAGER, survivor_id=other, retired_id=old, reason="same child", limits=LIMITS, now=NOW
        )
    )
    assert _shown_shielded(db, other)  # the survivor now holds old's pairing with the shielded child
    db.run_sync(lambda c: merging.unmerge(c, manager=MANAGER, retired_id=old, reason="not the same", now=NOW))
    # old is back, still paired with the shielded child, and hidden while that waits.
    assert _shown_shielded(db, old)
    paired = db.run_sync(lambda c: review_repo.open_task_between(c, old, new), write=False)
    assert paired


def test_the_lifecycle_sweep_ends_a_task_raised_against_a_child_merged_meanwhile(db: Database) -> None:
    old, new = _split(db)
    db.run_sync(
        lambda c: merging.merge_children(
            c, manager=MANAGER, survivor_id=new, retired_id=old, reason="same child", limits=LIMITS, now=NOW
        )
    )
    # A batch that read `old` before the merge raises its task after it, and shows `new` shielded
    # for it (as it would were `old` shielded when read).
    late = review_repo.NewTask("b" * 32, new, old, 12.0, ("late",))
    shown = update(children).where(children.c.contactpoint_id == new).values(provisional_shield=True)
    db.run_sync(lambda c: (review_repo.insert_tasks(c, [late], now=NOW), c.execute(shown)))
    assert _shown_shielded(db, new)
    admin.run_lifecycle(db, today=NOW.date())
    assert db.run_sync(lambda c: review_repo.open_tasks_of(c, new), write=False) == []
    assert not _shown_shielded(db, new)


def test_a_child_back_in_view_gets_its_pairing_and_shield_back(db: Database) -> None:
    old, new = _split(db)
    _bridge(db)
    _shield(db, old)
    assert _shown_shielded(db, new)
    for system, rid in (("education", "ed-1"), ("health-visiting", "hv-1")):
        db.run_sync(
            lambda c, s=system, r=rid: withdrawal.withdraw(
                c, organisation=ORG_A, source_system=s, source_record_id=r, now=NOW
            )
        )
    assert not _shown_shielded(db, new)  # out of view, its task ended
    # The council sends one of the records again: the child is back, and so is its pairing.
    record = make_record("ed-1", source_system="education", name=NEW, address=LEEDS, nhs_number="")
    again = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="ed-1-again", record=record, now=NOW)
    )
    assert again.contactpoint_id == new
    assert db.run_sync(lambda c: review_repo.open_task_between(c, old, new), write=False)
    assert _shown_shielded(db, new)


def test_a_batch_naming_a_child_merged_meanwhile_is_decided_again(db: Database) -> None:
    old, new = _split(db)
    db.run_sync(
        lambda c: merging.merge_children(
            c, manager=MANAGER, survivor_id=new, retired_id=old, reason="same child", limits=LIMITS, now=NOW
        )
    )
    # A batch that read `old` before the merge, and would raise a possible match naming it.
    batch = placement.Batch()
    batch.children.append(("000000000000", False, None))
    batch.new_children.add("000000000000")
    batch.tasks.append(review_repo.NewTask("d" * 32, "000000000000", old, 8.0, ("weight 8",)))
    with pytest.raises(ConcurrentChange):
        db.run_sync(lambda c: placement.flush(c, batch, limits=LIMITS, now=NOW))
