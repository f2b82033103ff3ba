"""Review tasks through a merge and its undoing, in the domain on SQLite and PostgreSQL: a task the
merge carried from the child put back goes back to it alone, a task the survivor had before stays
the survivor's alone (found leaving: every survivor's pair was given to the child put back too,
so a data manager could be shown two unrelated children as a possible match), and a pair either
could have raised is raised for both."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import NotFound
from contactpoint.platform.ids import RANDOM
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import ingestion, merging, placement, review, shielding, task_upkeep, withdrawal
from services.records.model import DEFAULT_LIMITS as LIMITS
from services.records.model import ConcurrentChange, Outcome
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository.rows import SourceKey
from services.records.stewardship import KEEP_APART, Manager
from services.records.tables import review_tasks
from tests.services.records.conftest import ORG_A, ORG_B, make_record

RAISED = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
MERGED = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 6, 1, 11, 0, tzinfo=dt.UTC)
UNMERGED = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
MANAGER = Manager("dm-a", ORG_A)
MANAGER_B = Manager("dm-b", ORG_B)
NAMES = {
    "s": ("Barnaby", "Quillfeather"),
    "r": ("Cressida", "Tollemache"),
    "q": ("Peregrine", "Ashdown"),
    "p": ("Ottoline", "Fairweather"),
    "n": ("Leopold", "Hartigan"),
    "c": ("Wilhelmina", "Strickland"),
    "z": ("Ignatius", "Blenkinsop"),
    "x": ("Philippa", "Yardley"),
}
HOUR = dt.timedelta(hours=1)


def _record(key: str) -> pb.SourceRecord:
    n = list(NAMES).index(key)
    given, family = NAMES[key]
    return make_record(
        f"{key}-1",
        source_system=f"system-{key}",
        name=child_pb2.PersonName(given_names=given, family_name=family),
        nhs_number="",
        address=child_pb2.Address(lines=[f"{n + 1} {family} Road"], postcode="LS1 4AP"),
    )


def _children(db: Database, of_b: str = "") -> dict[str, str]:
    """One child for each name, none resembling another: ORG_B's for the keys in `of_b`, else
    ORG_A's."""
    ids = {}
    for key in NAMES:
        org, record = ORG_B if key in of_b else ORG_A, _record(key)
        ids[key] = db.run_sync(
            lambda c, r=record, o=org: ingestion.submit(
                c, organisation=o, request_id=r.source_record_id, record=r, now=RAISED
            )
        ).contactpoint_id
    return ids


def _offered(db: Database, organisation: str) -> list[set[str]]:
    """Every pair the organisation's data managers are offered, each held by one of them."""
    pairs: list[set[str]] = []
    for n in range(10):
        manager = Manager(f"dm-{organisation}-{n}", organisation)
        try:
            task = db.run_sync(lambda c, m=manager: review.next_task(c, manager=m, now=UNMERGED))
        except NotFound:
            return pairs
        pairs.append({task.new_child.contactpoint_id, task.candidate.contactpoint_id})
    raise AssertionError("more tasks than expected")


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


def _merge_b(db: Database, survivor: str, retired: str, *, at: dt.datetime) -> None:
    db.run_sync(
        lambda c: merging.merge(
            c, manager=MANAGER_B, survivor_id=survivor, retired_id=retired, reason="one child", now=at
        )
    )


def _unmerge_b(db: Database, retired: str, *, at: dt.datetime) -> None:
    db.run_sync(lambda c: merging.unmerge(c, manager=MANAGER_B, retired_id=retired, reason="two", now=at))


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


@pytest.mark.parametrize("like", ["r", "s"])
def test_a_possible_match_raised_while_merged_goes_to_the_child_whose_record_it_matched(
    db: Database, like: str
) -> None:
    """Found by probing: a possible match raised while merged was given to both children when
    the merge was undone, so the survivor's data managers were shown a child that only the other
    child's records resembled. Now it goes to the child the matched record came from."""
    k = _children(db)
    _merge(db, k["s"], k["r"])
    # The same system's second record like one child's (reviewed: never linked automatically).
    again = _record(like)
    again.source_record_id = f"{like}-2"
    new = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="again", record=again, now=LATER)
    )
    assert new.outcome == Outcome.POSSIBLE_MATCH and _pairs(db, new.contactpoint_id) == {k["s"]}
    _unmerge(db, k["r"])
    assert _pairs(db, new.contactpoint_id) == {k[like]}


def test_a_shield_the_carried_task_caused_leaves_the_survivor_with_it(db: Database) -> None:
    k = _children(db)
    db.run_sync(
        lambda c: shielding.set_shielded(
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


def test_when_the_other_side_was_merged_too_the_task_still_goes_back_whole(db: Database) -> None:
    """Found by probing: the other side carried as well (p into z before r into s) left s paired
    with z, another organisation's child it never resembled, shown to s's data managers."""
    k = _children(db, of_b="pz")
    _task(db, k["p"], k["r"])
    _merge_b(db, k["z"], k["p"], at=MERGED - HOUR)
    _merge(db, k["s"], k["r"])
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == {k["z"]}
    assert _pairs(db, k["s"]) == set()
    assert {k["s"], k["z"]} not in _offered(db, ORG_A)


@pytest.mark.parametrize("first", ["r", "p"])
def test_a_task_both_of_whose_sides_were_merged_comes_back_whole_in_either_order(
    db: Database, first: str
) -> None:
    k = _children(db, of_b="pz")
    _task(db, k["p"], k["r"])
    _merge(db, k["s"], k["r"])
    _merge_b(db, k["z"], k["p"], at=LATER)
    undo = {"r": _unmerge, "p": _unmerge_b}
    for n, key in enumerate((first, "p" if first == "r" else "r")):
        undo[key](db, k[key], at=UNMERGED + n * HOUR)
    assert _pairs(db, k["r"]) == {k["p"]}
    assert _pairs(db, k["s"]) == _pairs(db, k["z"]) == set()


@pytest.mark.parametrize("later", ["merged into s", "s merged into it"])
def test_another_childs_task_raised_after_the_merge_is_not_the_child_put_backs(
    db: Database, later: str
) -> None:
    """Found by probing: x's own task, raised after r was merged into s, was given to r at r's
    unmerge (taken for one raised while its holder held r's records), whether x was then merged
    into s or s into x; q's organisation was offered r, which never resembled q."""
    k = _children(db, of_b="q")
    _merge(db, k["s"], k["r"])
    _task(db, k["x"], k["q"], at=LATER)
    survivor, retired = (k["s"], k["x"]) if later == "merged into s" else (k["x"], k["s"])
    _merge(db, survivor, retired, at=LATER + HOUR)
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == set()
    assert {k["r"], k["q"]} not in _offered(db, ORG_B)
    _unmerge(db, retired, at=UNMERGED + HOUR)
    assert _pairs(db, k["q"]) == {k["x"]}


def test_the_survivors_own_task_ended_and_raised_again_while_merged_stays_its_own(db: Database) -> None:
    """Found by probing: s's own task, ended when q's only record was withdrawn and raised again
    when it came back, was taken for one raised while merged, and given to r too."""
    k = _children(db)
    _task(db, k["s"], k["q"])
    _merge(db, k["s"], k["r"])
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="system-q", source_record_id="q-1", now=LATER
        )
    )
    again = _record("q")
    db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="q-again", record=again, now=LATER)
    )
    assert _pairs(db, k["s"]) == {k["q"]}
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == set()


def test_a_task_carried_before_sides_were_remembered_is_raised_for_both(db: Database) -> None:
    """Tasks a merge carried before migration 0008 say nothing of their sides (raised at the
    merge): the child put back gets a copy of each, as before, and nothing is lost."""
    k = _children(db)
    _task(db, k["s"], k["q"])
    _task(db, k["r"], k["p"])
    _merge(db, k["s"], k["r"])
    t = review_tasks.c
    carried = (t.new_child_was != t.new_child) | (t.candidate_was != t.candidate)
    forget = update(review_tasks).where(t.status == "open").values(new_child_was=None, candidate_was=None)
    db.run_sync(lambda c: (c.execute(forget.where(carried).values(created_at=MERGED)), c.execute(forget)))
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == {k["p"]}
    assert _pairs(db, k["s"]) == {k["q"], k["p"]}
    assert _pairs(db, k["q"]) == {k["s"]}


def test_a_pair_only_a_child_merged_into_the_other_had_is_not_shared(db: Database) -> None:
    """Found by re-probing: r's task with p, carried to s and dropped when s was merged into c (c
    had its own task with p), counted as s's own pair when s was unmerged, so s was offered
    beside p, which only r and c resembled."""
    k = _children(db, of_b="p")
    _task(db, k["r"], k["p"])
    _task(db, k["c"], k["p"])
    _merge(db, k["s"], k["r"])
    _merge(db, k["c"], k["s"], at=LATER)
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == {k["p"]}
    _unmerge(db, k["s"], at=UNMERGED + HOUR)
    assert _pairs(db, k["s"]) == set()
    assert _pairs(db, k["p"]) == {k["r"], k["c"]}


def test_a_task_ended_while_carried_comes_back_to_the_child_it_was_raised_for(db: Database) -> None:
    """Found by re-probing: r's task with q, carried to s, ended when q's record was withdrawn;
    after r's unmerge, q's record sent again raised it for s, which never resembled q."""
    k = _children(db, of_b="q")
    _task(db, k["r"], k["q"])
    _merge(db, k["s"], k["r"])
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_B, source_system="system-q", source_record_id="q-1", now=LATER
        )
    )
    _unmerge(db, k["r"])
    again = _record("q")
    db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_B, request_id="q-again", record=again, now=LATER)
    )
    assert _pairs(db, k["r"]) == {k["q"]}
    assert _pairs(db, k["s"]) == set()


def test_a_record_moved_back_and_merged_again_is_followed_through_its_latest_merge(db: Database) -> None:
    """Found by re-probing: r's record, merged into s and then t, moved back to r by r's unmerge
    and merged into t again, was taken for s's (its first merge still lists it), so a possible
    match raised through it stayed with t when r was unmerged again."""
    k = _children(db)
    _merge(db, k["s"], k["r"])
    _merge(db, k["c"], k["s"], at=MERGED + HOUR)
    _unmerge(db, k["r"])
    _merge(db, k["c"], k["r"], at=UNMERGED + HOUR)
    again = _record("r")
    again.source_record_id = "r-2"
    new = db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=ORG_A, request_id="again", record=again, now=UNMERGED + 2 * HOUR
        )
    )
    assert new.outcome == Outcome.POSSIBLE_MATCH and _pairs(db, new.contactpoint_id) == {k["c"]}
    _unmerge(db, k["r"], at=UNMERGED + 3 * HOUR)
    assert _pairs(db, new.contactpoint_id) == {k["r"]}


@pytest.mark.parametrize("decided", ["link", "task"])
def test_a_batch_decided_through_a_record_an_unmerge_moved_meanwhile_decides_again(
    db: Database, decided: str
) -> None:
    """Found by re-probing (PostgreSQL, an unmerge between a batch's decision and its write): the
    batch joined, or raised a task with, the survivor through the child put back's record. The
    survivor stays active, so only the record's child says so: the batch is decided again."""
    k = _children(db)
    _merge(db, k["s"], k["r"])
    batch = placement.Batch()
    if decided == "link":
        batch.linked.add(k["s"])
        batch.evidence.append((k["s"], SourceKey(ORG_A, "system-r", "r-1")))
    else:
        new_child = "000000000000"
        batch.children.append((new_child, False, None))
        batch.new_children.add(new_child)
        record = SourceKey(ORG_A, "system-r", "r-1")
        batch.tasks.append(
            review_repo.NewTask("d" * 32, new_child, k["s"], 8.0, ("w",), candidate_record=record)
        )
    _unmerge(db, k["r"])  # r-1 is r's again; s is still active
    with pytest.raises(ConcurrentChange):
        db.run_sync(lambda c: placement.flush(c, batch, limits=LIMITS, now=LATER))


def test_a_task_ended_while_its_other_child_was_out_of_view_follows_a_merge_made_meanwhile(
    db: Database,
) -> None:
    """Found by re-probing: q's task with r ended when q's record was withdrawn; r was merged into
    s meanwhile; q's record sent again raised nothing (r was no longer active)."""
    k = _children(db, of_b="q")
    _task(db, k["q"], k["r"])
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_B, source_system="system-q", source_record_id="q-1", now=MERGED - HOUR
        )
    )
    _merge(db, k["s"], k["r"])
    again = _record("q")
    db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_B, request_id="q-again", record=again, now=LATER)
    )
    assert _pairs(db, k["q"]) == {k["s"]}
    _unmerge(db, k["r"])  # raised for r: it goes back to r alone
    assert _pairs(db, k["q"]) == {k["r"]}


@pytest.mark.parametrize("open_for", ["r", "s"])
def test_a_pair_raised_for_both_children_while_merged_goes_to_each_when_unmerged(
    db: Database, open_for: str
) -> None:
    """Found by re-probing: s's own possible match with q (a split raised through s's record),
    left out beside the task the merge had carried from r, was lost when r was unmerged. Each
    child gets the pair it was raised for, whichever was raised first."""
    k = _children(db)
    if open_for == "r":
        _task(db, k["r"], k["q"])
    _merge(db, k["s"], k["r"])
    for key in ("s", "r") if open_for == "s" else ("s",):
        raised = review_repo.NewTask(
            f"{key}q".ljust(32, "1"), k["s"], k["q"], 9.0, ("w",), new_child_was=k[key]
        )
        db.run_sync(lambda c, t=raised: task_upkeep.raise_pairs(c, [t], now=LATER))
    assert _pairs(db, k["s"]) == {k["q"]}  # one task waits on the pair
    _unmerge(db, k["r"])
    assert _pairs(db, k["r"]) == {k["q"]}
    assert _pairs(db, k["s"]) == {k["q"]}
    assert _pairs(db, k["q"]) == {k["r"], k["s"]}


def test_a_split_task_whose_other_child_changed_meanwhile_makes_the_batch_decide_again(db: Database) -> None:
    """Found by re-probing (PostgreSQL, threads): a split task's other child was not locked when
    the batch wrote, so an unmerge could move the record it was matched through meanwhile. Both of
    a split task's children are now share-locked and must be as the batch read them."""
    k = _children(db)
    batch = placement.Batch()
    batch.linked.add(k["s"])
    batch.splits.append(review_repo.NewTask("e" * 32, k["s"], k["r"], 12.0, ("w",)))
    _merge(db, k["q"], k["r"])  # r merged away after the batch read it
    with pytest.raises(ConcurrentChange):
        db.run_sync(lambda c: placement.flush(c, batch, limits=LIMITS, now=LATER))


def _raise(db: Database, a: str, b: str, *, for_a: str, for_b: str, at: dt.datetime) -> None:
    task = review_repo.NewTask(RANDOM.hex_id(), a, b, 9.0, ("w",), new_child_was=for_a, candidate_was=for_b)
    db.run_sync(lambda c: task_upkeep.raise_pairs(c, [task], now=at))


def test_a_pair_kept_waiting_for_a_child_unmerged_since_is_not_given_to_the_holder(db: Database) -> None:
    """Found by probing: x's pair with q, kept waiting beside r's when x was merged into s after
    r, was given to s when r was unmerged, though x had been unmerged (with its pair) before."""
    k = _children(db)
    _task(db, k["r"], k["q"])
    _task(db, k["x"], k["q"])
    _merge(db, k["s"], k["r"])
    _merge(db, k["s"], k["x"], at=MERGED + HOUR)
    _unmerge(db, k["x"])
    _unmerge(db, k["r"], at=UNMERGED + HOUR)
    assert _pairs(db, k["q"]) == {k["r"], k["x"]}
    assert _pairs(db, k["s"]) == set()


def test_a_pair_whose_other_side_left_its_child_is_not_given_back(db: Database) -> None:
    """Found by probing: a pair raised for (r, c) while r was merged into s and c into z was given
    to c when c was unmerged, though r had left s before: only r's records resembled c."""
    k = _children(db)
    _merge(db, k["s"], k["r"])
    _raise(db, k["s"], k["z"], for_a=k["r"], for_b=k["z"], at=MERGED)
    _raise(db, k["s"], k["c"], for_a=k["r"], for_b=k["c"], at=MERGED)
    _merge(db, k["z"], k["c"], at=MERGED + HOUR)  # (s, c) for (r, c) waits beside (s, z) for (r, z)
    _unmerge(db, k["r"])
    assert _pairs(db, k["s"]) == set()
    _raise(db, k["s"], k["z"], for_a=k["s"], for_b=k["z"], at=LATER)  # s's own pair with z
    _unmerge(db, k["c"], at=UNMERGED + HOUR)
    assert k["s"] not in _pairs(db, k["c"])
    assert k["z"] in _pairs(db, k["r"])


def test_a_pair_kept_apart_while_merged_stays_apart_when_unmerged(db: Database) -> None:
    """Stop 34's leftover 1: a task carried to a survivor and kept apart there was remembered for
    the survivor alone, so the child put back could be proposed with the other child again."""
    k = _children(db)
    _task(db, k["p"], k["r"])
    _merge(db, k["s"], k["r"])
    (task,) = db.run_sync(lambda c: review_repo.open_tasks_of(c, k["p"]), write=False)
    assert task.other(k["p"]) == k["s"]  # carried to the survivor
    handed = db.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=LATER))
    assert handed.task_id == task.task_id
    db.run_sync(
        lambda c: review.resolve_task(
            c, manager=MANAGER, task_id=task.task_id, decision=KEEP_APART, reason="two", now=LATER
        )
    )
    _unmerge(db, k["r"])
    assert db.run_sync(lambda c: task_upkeep.kept_apart(c, k["p"], k["r"]), write=False)
    assert db.run_sync(lambda c: task_upkeep.kept_apart(c, k["p"], k["s"]), write=False)
    assert _pairs(db, k["r"]) == set() and _pairs(db, k["p"]) == set()
    # And a new record of r's, like p's, is not proposed with p: they were kept apart.
    _task(db, k["p"], k["r"], at=UNMERGED + HOUR)
    assert _pairs(db, k["p"]) == set()


def test_a_pair_both_of_whose_children_were_merged_into_one_is_not_raised_again_after_an_unmerge(
    db: Database,
) -> None:
    """Stop 34's leftover 2, decided: p's task with r, p merged into s and then r into s (the task
    closes as LINK: one child). Unmerging p says p is not s, and s is r now, so the pair is not
    raised again while r is s; a data manager who thinks otherwise merges."""
    k = _children(db)
    _task(db, k["p"], k["r"])
    _merge(db, k["s"], k["p"])
    _merge(db, k["s"], k["r"], at=LATER)
    _unmerge(db, k["p"])
    assert _pairs(db, k["p"]) == set() and _pairs(db, k["s"]) == set()
    # A record of r's (in s now) like p's is not proposed with p either.
    _task(db, k["p"], k["s"], at=UNMERGED + HOUR)
    assert _pairs(db, k["p"]) == set()
