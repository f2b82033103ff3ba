"""Merges and unmerges in any order, in the domain on SQLite and PostgreSQL: a child merged twice
over comes back whole whichever merge is undone first, a shield decided while children are
merged stands for both when they are unmerged, and a pair kept apart is never proposed again
because one of them was merged (found by probing from outside)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition, NotFound
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import ingestion, merging, review, shielding
from services.records.children import resolve
from services.records.model import Outcome, Submitted
from services.records.repository import children as child_repo
from services.records.repository import kept_apart as kept_apart_repo
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.stewardship import KEEP_APART, LINK, Manager
from services.records.tables import merges
from tests.services.records.conftest import ORG_A, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
MANAGER = Manager("dm-a", ORG_A)


def _submit(db: Database, record: pb.SourceRecord) -> Submitted:
    return db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=ORG_A, request_id=record.source_record_id, record=record, now=NOW
        )
    )


def _child(db: Database, rid: str, given: str, family: str) -> str:
    """A child no other child of the test resembles."""
    record = make_record(
        rid,
        source_system=f"system-{rid}",
        name=child_pb2.PersonName(given_names=given, family_name=family),
        nhs_number="",
        address=child_pb2.Address(lines=[f"{len(rid)} {family} Road"], postcode="LS1 4AP"),
    )
    response = _submit(db, record)
    assert response.outcome == Outcome.CREATED
    return response.contactpoint_id


def _merge(db: Database, survivor: str, retired: str, *, hour: int = 0) -> None:
    at = NOW + dt.timedelta(hours=hour)
    db.run_sync(
        lambda c: merging.merge(
            c, manager=MANAGER, survivor_id=survivor, retired_id=retired, reason="one child", now=at
        )
    )


def _unmerge(db: Database, retired: str) -> None:
    db.run_sync(lambda c: merging.unmerge(c, manager=MANAGER, retired_id=retired, reason="two", now=NOW))


def _reads_as(db: Database, contactpoint_id: str) -> str | None:
    row = db.run_sync(lambda c: resolve(c, contactpoint_id), write=False)
    return row.contactpoint_id if row is not None else None


def _sources(db: Database, contactpoint_id: str) -> set[str]:
    rows = db.run_sync(lambda c: source_repo.active_sources(c, [contactpoint_id]), write=False)
    return {r.key.source_record_id for r in rows}


def _shielded(db: Database, contactpoint_id: str) -> bool:
    row = db.run_sync(lambda c: child_repo.child(c, contactpoint_id), write=False)
    assert row is not None
    return row.shown_shielded


@pytest.mark.parametrize("first_undone", ["inner", "outer"])
def test_a_chain_of_merges_undone_in_either_order_gives_back_every_child(
    db: Database, first_undone: str
) -> None:
    x = _child(db, "x-1", "Barnaby", "Quillfeather")
    y = _child(db, "y-22", "Cressida", "Tollemache")
    z = _child(db, "z-333", "Peregrine", "Ashdown")
    _merge(db, y, x)  # X into Y...
    _merge(db, z, y)  # ...and Y into Z: X reads as Z
    assert _reads_as(db, x) == _reads_as(db, y) == z
    for retired in ("x", "y") if first_undone == "inner" else ("y", "x"):
        _unmerge(db, {"x": x, "y": y}[retired])
    for cid, rid in ((x, "x-1"), (y, "y-22"), (z, "z-333")):
        assert _reads_as(db, cid) == cid
        assert _sources(db, cid) == {rid}, cid


def test_a_shield_given_while_merged_stays_on_both_when_unmerged(db: Database) -> None:
    s = _child(db, "s-1", "Ottilie", "Fairbrother")
    t = _child(db, "t-22", "Wilhelmina", "Strangeways")
    _merge(db, s, t)
    db.run_sync(
        lambda c: shielding.set_shielded(
            c,
            manager=MANAGER,
            contactpoint_id=t,
            shielded=True,
            reason="risk",
            now=NOW,  # the retired id
        )
    )
    _unmerge(db, t)
    assert _shielded(db, s) and _shielded(db, t)


def test_a_shield_lifted_while_merged_stays_lifted_when_unmerged(db: Database) -> None:
    s = _child(db, "s-1", "Ottilie", "Fairbrother")
    t = _child(db, "t-22", "Wilhelmina", "Strangeways")
    db.run_sync(
        lambda c: shielding.set_shielded(
            c, manager=MANAGER, contactpoint_id=t, shielded=True, reason="risk", now=NOW
        )
    )
    _merge(db, s, t)
    assert _shielded(db, s)
    db.run_sync(
        lambda c: shielding.set_shielded(
            c, manager=MANAGER, contactpoint_id=s, shielded=False, reason="order ended", now=NOW
        )
    )
    _unmerge(db, t)
    assert not _shielded(db, s) and not _shielded(db, t)


def _shield(db: Database, contactpoint_id: str) -> None:
    db.run_sync(
        lambda c: shielding.set_shielded(
            c, manager=MANAGER, contactpoint_id=contactpoint_id, shielded=True, reason="risk", now=NOW
        )
    )


def test_a_survivor_holding_another_shielded_childs_records_stays_shielded_when_one_is_unmerged(
    db: Database,
) -> None:
    """Found by reading the unmerge after a probe: two shielded children merged into one, one of
    them unmerged, left the survivor unshielded while it held the other's records (its address)."""
    s = _child(db, "s-1", "Ottilie", "Fairbrother")
    t = _child(db, "t-22", "Wilhelmina", "Strangeways")
    u = _child(db, "u-333", "Barnaby", "Quillfeather")
    _shield(db, t)
    _shield(db, u)
    _merge(db, s, t)
    _merge(db, s, u, hour=1)
    _unmerge(db, t)
    assert _shielded(db, t) and _shielded(db, s)
    _unmerge(db, u)
    assert _shielded(db, u) and not _shielded(db, s)  # s itself never was


def test_a_shield_only_the_child_put_back_brought_leaves_each_child_it_was_merged_on_to(
    db: Database,
) -> None:
    """Found by probing: a shielded child merged into one child, that child merged into a third;
    undoing the first merge left the third shielded for nothing (fail-safe, but wrong)."""
    x = _child(db, "x-1", "Barnaby", "Quillfeather")
    y = _child(db, "y-22", "Cressida", "Tollemache")
    z = _child(db, "z-333", "Peregrine", "Ashdown")
    _shield(db, x)
    _merge(db, y, x)
    _merge(db, z, y, hour=1)
    assert _shielded(db, z)
    _unmerge(db, x)
    assert _shielded(db, x) and not _shielded(db, z)
    _unmerge(db, y)  # what the merge of y into z remembers was corrected: y comes back unshielded
    assert not _shielded(db, y) and not _shielded(db, z) and _shielded(db, x)


def test_a_pair_kept_apart_is_not_proposed_again_after_a_merge(db: Database) -> None:
    # One child's record three times from one source system: two review tasks.
    a = _submit(db, make_record("sc-70")).contactpoint_id
    b = _submit(db, make_record("sc-71"))
    assert b.outcome == Outcome.POSSIBLE_MATCH
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    db.run_sync(
        lambda c: review.resolve_task(
            c, manager=MANAGER, task_id=task.task_id, decision=KEEP_APART, reason="two", now=NOW
        )
    )
    c = _submit(db, make_record("sc-72"))
    assert c.outcome == Outcome.POSSIBLE_MATCH
    # The third child is merged into one of the two: its task about the other would now pair the
    # two children kept apart, and is never offered.
    (task_of_c,) = db.run_sync(lambda conn: review_repo.open_tasks_of(conn, c.contactpoint_id), write=False)
    proposed = task_of_c.other(c.contactpoint_id)
    (other,) = {a, b.contactpoint_id} - {proposed}
    _merge(db, other, c.contactpoint_id)
    offered = []
    while True:
        try:
            task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
        except NotFound:
            break
        offered.append({task.new_child.contactpoint_id, task.candidate.contactpoint_id})
        db.run_sync(
            lambda c, t=task: review.resolve_task(
                c, manager=MANAGER, task_id=t.task_id, decision=KEEP_APART, reason="seen", now=NOW
            )
        )
    assert {a, b.contactpoint_id} not in offered


def test_only_the_data_manager_who_decided_a_task_may_retry_it(db: Database) -> None:
    _submit(db, make_record("sc-80"))
    _submit(db, make_record("sc-81"))
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))

    def resolve_as(manager: Manager) -> review.Resolution:
        return db.run_sync(
            lambda c: review.resolve_task(
                c, manager=manager, task_id=task.task_id, decision=KEEP_APART, reason="two", now=NOW
            )
        )

    first = resolve_as(MANAGER)
    again = resolve_as(MANAGER)  # a retry: the same answer, marked as one for the audit log
    assert not first.retry and again.retry and again.contactpoint_id == first.contactpoint_id
    with pytest.raises(FailedPrecondition) as err:
        resolve_as(Manager("dm-a2", ORG_A))  # not a second decision by someone else
    assert err.value.reason == "TASK_ALREADY_RESOLVED"


def test_a_task_whose_child_is_merged_away_is_overtaken_for_its_holder(db: Database) -> None:
    # The holder must not decide, under the id they were given, a pair they were never shown.
    _submit(db, make_record("sc-90"))
    _submit(db, make_record("sc-91"))
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    elsewhere = _child(db, "w-1", "Wilfreda", "Hollingsworth")
    _merge(db, elsewhere, task.new_child.contactpoint_id)
    with pytest.raises(FailedPrecondition) as err:
        db.run_sync(
            lambda c: review.resolve_task(
                c, manager=MANAGER, task_id=task.task_id, decision=LINK, reason="same", now=NOW
            )
        )
    assert err.value.reason == "TASK_OBSOLETE"
    # The pair is offered again, under a new id, as it now is.
    again = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    assert again.task_id != task.task_id
    assert {again.new_child.contactpoint_id, again.candidate.contactpoint_id} == {
        elsewhere,
        task.candidate.contactpoint_id,
    }


def _merge_held_open(
    db: Database, survivor: str, retired: str, started: threading.Event, go: threading.Event
) -> None:
    # A merge whose transaction stays open (its rows locked) until `go`.
    with db.transaction() as conn:
        merging.merge(conn, manager=MANAGER, survivor_id=survivor, retired_id=retired, reason="one", now=NOW)
        started.set()
        assert go.wait(10)


def _while_a_merge_holds_its_locks(
    db: Database, survivor: str, retired: str, action: Callable[[], object]
) -> None:
    # Runs `action` on another thread while a merge of `retired` into `survivor` holds its locks,
    # checks that it waits for them, then lets the merge commit and both finish.
    started, go = threading.Event(), threading.Event()
    merger = threading.Thread(target=_merge_held_open, args=(db, survivor, retired, started, go))
    merger.start()
    assert started.wait(10)
    waiting = threading.Thread(target=action)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive()  # waiting on the merge's locks
    go.set()
    merger.join(10)
    waiting.join(10)


def test_an_unmerge_waiting_on_a_merge_of_its_survivor_follows_it(db: Database) -> None:
    # Found by probing (two records replicas on PostgreSQL): UnmergeChildren(B) read B's survivor
    # A before a merge of A into X committed, moved B's record back only from A (none left), and
    # answered OK with B active and empty, its record still on X.
    a = _child(db, "ua-1", "Montgomery", "Fairweather")
    b = _child(db, "ub-22", "Ottoline", "Braithwaite")
    x = _child(db, "ux-333", "Sebastian", "Holloway")
    _merge(db, a, b)
    _while_a_merge_holds_its_locks(db, x, a, lambda: _unmerge(db, b))
    assert _reads_as(db, b) == b and _sources(db, b) == {"ub-22"}
    assert _reads_as(db, a) == x and _sources(db, x) == {"ua-1", "ux-333"}


def test_the_same_merge_undone_twice_at_once_is_undone_once(db: Database) -> None:
    a = _child(db, "da-1", "Philippa", "Lockhart")
    b = _child(db, "db-22", "Augustin", "Pemberton")
    _merge(db, a, b)
    outcomes: list[str] = []

    def undo() -> None:
        try:
            _unmerge(db, b)
            outcomes.append("ok")
        except NotFound:
            outcomes.append("not found")

    threads = [threading.Thread(target=undo) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # One undoes it; the other, the same manager's, waits and answers as a retry would: the merge
    # is already undone, and it changes nothing more.
    assert sorted(outcomes) == ["ok", "ok"]
    assert _sources(db, a) == {"da-1"} and _sources(db, b) == {"db-22"}
    undone = db.run_sync(
        lambda c: c.execute(
            select(func.count())
            .select_from(merges)
            .where(merges.c.retired_id == b, merges.c.undone_at.is_not(None))
        ).scalar_one(),
        write=False,
    )
    assert undone == 1


def test_a_shield_waiting_on_a_merge_of_its_child_follows_it(db: Database) -> None:
    # Found by probing (two records replicas): SetShielded(B) racing a merge of B into A answered
    # NOT_FOUND, and the merged child was left unshielded.
    a = _child(db, "sa-1", "Leopold", "Winterbourne")
    b = _child(db, "sb-22", "Henrietta", "Cavendish")
    answers: list[str] = []

    def shield() -> None:
        answers.append(
            db.run_sync(
                lambda c: (
                    shielding.set_shielded(
                        c, manager=MANAGER, contactpoint_id=b, shielded=True, reason="risk", now=NOW
                    ).contactpoint_id
                )
            )
        )

    _while_a_merge_holds_its_locks(db, a, b, shield)
    assert answers == [a] and _shielded(db, a)


@pytest.mark.parametrize("first_id", ["f", "0"])
def test_two_merges_at_one_instant_are_undone_in_the_order_they_were_made(
    db: Database, monkeypatch: pytest.MonkeyPatch, first_id: str
) -> None:
    """Found by probing: two merges into one child at the same instant were ordered by their
    random ids, so undoing the one that brought a shield could leave the child shielded for
    nothing (and remember it so)."""
    a = _child(db, "a-1", "Barnaby", "Quillfeather")
    b = _child(db, "b-22", "Cressida", "Tollemache")
    c = _child(db, "c-333", "Peregrine", "Ashdown")
    _shield(db, a)
    ids = iter([first_id * 32, ("0" if first_id == "f" else "f") * 32])
    monkeypatch.setattr(merging.uuid, "uuid4", lambda: uuid.UUID(next(ids)))
    _merge(db, b, a)
    _merge(db, b, c)
    _unmerge(db, a)
    assert _shielded(db, a) and not _shielded(db, b)
    _unmerge(db, c)
    assert not _shielded(db, b) and not _shielded(db, c)


def test_a_task_of_a_pair_kept_apart_meanwhile_is_never_handed_out(db: Database) -> None:
    # However such a task came to be open (a record raising it as the pair was kept apart, found
    # by probing), the queue closes it as overtaken instead of proposing the pair again.
    a = _submit(db, make_record("sc-95")).contactpoint_id
    b = _submit(db, make_record("sc-96")).contactpoint_id
    assert db.run_sync(lambda c: review_repo.open_task_of_pair(c, a, b), write=False) is not None
    db.run_sync(lambda c: kept_apart_repo.keep_apart(c, a, b, manager="dm-b", reason="two", now=NOW))
    for _ in range(2):
        with pytest.raises(NotFound):
            db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))


def test_a_task_linked_after_a_merge_brought_in_a_child_kept_apart_is_overtaken(db: Database) -> None:
    # Found by review: N was kept apart from D; the task (N, C) was handed out; D was merged into
    # C; the task's LINK joined N to C, and so to D, undoing the decision unseen.
    candidate = _submit(db, make_record("sc-97")).contactpoint_id
    new = _submit(db, make_record("sc-98")).contactpoint_id
    other = _child(db, "d-1", "Ottoline", "Quince")
    db.run_sync(lambda c: kept_apart_repo.keep_apart(c, new, other, manager="dm-b", reason="two", now=NOW))
    task = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    assert (task.new_child.contactpoint_id, task.candidate.contactpoint_id) == (new, candidate)
    _merge(db, candidate, other)
    with pytest.raises(FailedPrecondition) as refused:
        db.run_sync(
            lambda c: review.resolve_task(
                c, manager=MANAGER, task_id=task.task_id, decision=LINK, reason="one child", now=NOW
            )
        )
    assert refused.value.reason == "TASK_OBSOLETE"
    assert _reads_as(db, new) == new and _reads_as(db, candidate) == candidate
