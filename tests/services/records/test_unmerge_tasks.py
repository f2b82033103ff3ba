"""Review tasks through a merge and its undoing, in the domain on SQLite and PostgreSQL: a task the
merge carried from the child put back goes back to it alone, a task the survivor had before stays
the survivor's alone (found leaving: every survivor's pair was given to the child put back too,
so a data manager could be shown two unrelated children as a possible match), and a pair either
could have raised is raised for both."""

from __future__ import annotations

import datetime as dt

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from services.records import ingestion, merging, review, task_upkeep
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.stewardship import Manager
from tests.services.records.conftest import ORG_A, make_record

RAISED = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
MERGED = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 6, 1, 11, 0, tzinfo=dt.UTC)
UNMERGED = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
MANAGER = Manager("dm-a", ORG_A)
NAMES = {
    "s": ("Barnaby", "Quillfeather"),
    "r": ("Cressida", "Tollemache"),
    "q": ("Peregrine", "Ashdown"),
    "p": ("Ottoline", "Fairweather"),
    "n": ("Leopold", "Hartigan"),
    "c": ("Wilhelmina", "Strickland"),
}


def _children(db: Database) -> dict[str, str]:
    """One child of ORG_A for each name, none resembling another."""
    ids = {}
    for n, (key, (given, family)) in enumerate(NAMES.items()):
        record = make_record(
            f"{key}-1",
            source_system=f"system-{key}",
            name=child_pb2.PersonName(given_names=given, family_name=family),
            nhs_number="",
            address=child_pb2.Address(lines=[f"{n + 1} {family} Road"], postcode="LS1 4AP"),
        )
        ids[key] = db.run_sync(
            lambda c, r=record: ingestion.submit(
                c, organisation=ORG_A, request_id=r.source_record_id, record=r, now=RAISED
            )
        ).contactpoint_id
    return ids


def _task(db: Database, a: str, b: str, *, at: dt.datetime = RAISED) -> None:
    task = review_repo.NewTask(f"{a}{b}".ljust(32, "0")[:32], a, b, 9.0, ("weight 9",))
    db.run_sync(lambda c: task_upkeep.raise_pairs(c, [task], now=at))


def _merge(db: Database, survivor: str, retired: str, *, at: dt.datetime = MERGED) -> None:
    db.run_sync(
        lambda c: merging.merge(
            c, manager=MANAGER, survivor_id=survivor, retired_id=retired, reason="one child", now=at
        )
    )


def _unmerge(db: Database, retired: str, *, at: dt.datetime = UNMERGED) -> None:
    db.run_sync(lambda c: merging.unmerge(c, manager=MANAGER, retired_id=retired, reason="two", now=at))


def _pairs(db: Database, contactpoint_id: str) -> set[str]:
    """The children an open task pairs this child with."""
    tasks = db.run_sync(lambda c: review_repo.open_tasks_of(c, contactpoint_id), write=False)
    return {t.other(contactpoint_id) for t in tasks}


def _shown_shielded(db: Database, contactpoint_id: str) -> bool:
    row = db.run_sync(lambda c: child_repo.child(c, contactpoint_id), write=False)
    assert row is not None
    return row.shown_shielded


def test_the_survivors_own_task_stays_its_own(db: Database) -> None:
    k = _children(db)
    _task(db, k["s"], k["q"])
    _merge(db, k["s"], k["r"])
    _unmerge(db, k["r"])
    assert _pairs(db, k["s"]) == {k["q"]}
    assert _pairs(db, k["r"]) == set()  # before: paired with q, a child it was never matched with
    assert _pairs(db, k["q"]) == {k["s"]}


def test_a_task_the_merge_carried_goes_back_to_its_child_alone(db: Database) -> None:
    k = _children(db)
    _task(db, k["p"], k["r"])
    _task(db, k["n"], k["q"], at=RAISED + dt.timedelta(minutes=30))
    _merge(db, k["s"], k["r"])
    assert _pairs(db, k["s"]) == {k["p"]}  # carried to the survivor while merged
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == {k["p"]}
    assert _pairs(db, k["s"]) == set()  # before: s stayed paired with p
    # It kept its place in the queue through both: the first raised is offered first.
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=UNMERGED))
    assert {task.new_child.contactpoint_id, task.candidate.contactpoint_id} == {k["p"], k["r"]}


def test_a_pair_both_had_is_raised_for_both_again(db: Database) -> None:
    k = _children(db)
    _task(db, k["s"], k["q"])
    _task(db, k["r"], k["q"])
    _merge(db, k["s"], k["r"])
    assert _pairs(db, k["q"]) == {k["s"]}  # one task stood for both while merged
    _unmerge(db, k["r"])
    assert _pairs(db, k["q"]) == {k["s"], k["r"]}


def test_a_task_raised_while_merged_is_raised_for_both(db: Database) -> None:
    k = _children(db)
    _merge(db, k["s"], k["r"])
    _task(db, k["n"], k["s"], at=LATER)  # the merged child's records, any of them, raised it
    _unmerge(db, k["r"])
    assert _pairs(db, k["n"]) == {k["s"], k["r"]}


def test_a_shield_the_carried_task_caused_leaves_the_survivor_with_it(db: Database) -> None:
    k = _children(db)
    db.run_sync(
        lambda c: review.set_shielded(
            c, manager=MANAGER, contactpoint_id=k["q"], shielded=True, reason="order", now=RAISED
        )
    )
    _task(db, k["r"], k["q"])
    assert _shown_shielded(db, k["r"])
    _merge(db, k["s"], k["r"])
    assert _shown_shielded(db, k["s"])
    _unmerge(db, k["r"])
    assert _shown_shielded(db, k["r"])
    assert not _shown_shielded(db, k["s"])  # before: s stayed hidden, paired with q for ever


def test_through_a_chain_of_merges_each_unmerge_gives_the_task_back_a_step(db: Database) -> None:
    k = _children(db)
    _task(db, k["p"], k["r"])
    _merge(db, k["s"], k["r"])  # r into s...
    _merge(db, k["c"], k["s"], at=LATER)  # ...and s into c: r's task is c's
    assert _pairs(db, k["p"]) == {k["c"]}
    _unmerge(db, k["s"])  # s is back with r in it: the task is s's again
    assert _pairs(db, k["p"]) == {k["s"]}
    assert _pairs(db, k["c"]) == set()
    _unmerge(db, k["r"], at=UNMERGED + dt.timedelta(hours=1))
    assert _pairs(db, k["p"]) == {k["r"]}
    assert _pairs(db, k["s"]) == set()
