"""Data managers' decisions, reads and records at the same moment, on PostgreSQL (found by probing
with two records replicas; SQLite's writers hold one database lock, so none of these can
interleave there). Each test forces the interleaving the probe hit by running the other call to
its commit from inside the first, at the point where it struck."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from services.records import children, merging, review, shielding, task_upkeep
from services.records.model import FindCriteria
from services.records.repository import children as child_repo
from services.records.repository import merges as merge_repo
from services.records.repository import review as review_repo
from services.records.stewardship import KEEP_APART
from tests.services.records.conftest import make_record
from tests.services.records.test_merge_chains import MANAGER, NOW, _child, _merge, _shielded, _submit


@pytest.fixture
def pg(db: Database) -> Database:
    if db.url.startswith("sqlite"):
        pytest.skip("SQLite's writers hold one database lock: these calls cannot interleave there")
    return db


@pytest.fixture
def in_main_thread() -> Iterator[Callable[[], bool]]:
    main = threading.current_thread()
    yield lambda: threading.current_thread() is main


def _run_to_commit(call: Callable[[], Any], *, wait: float = 10.0) -> threading.Thread:
    """Run `call` on another thread, waiting up to `wait` seconds for it to finish (it may be
    waiting on locks the caller holds: then it finishes later)."""
    thread = threading.Thread(target=call)
    thread.start()
    thread.join(wait)
    return thread


def _shield(db: Database, contactpoint_id: str) -> None:
    db.run_sync(
        lambda c: shielding.set_shielded(
            c, manager=MANAGER, contactpoint_id=contactpoint_id, shielded=True, reason="risk", now=NOW
        )
    )


def test_a_shield_given_as_a_merge_is_undone_stays(
    pg: Database, monkeypatch: pytest.MonkeyPatch, in_main_thread: Callable[[], bool]
) -> None:
    # Found by probing: SetShielded(Y) and UnmergeChildren(X) at once both answered OK, and both
    # children ended unshielded: the unmerge had read what the merge remembered of the shields
    # before the shield committed, and restored that.
    y = _child(pg, "cy-1", "Philippa", "Aldergrove")
    x = _child(pg, "cx-22", "Leopold", "Marchbanks")
    _merge(pg, y, x)
    read_merge = merge_repo.live_merge_of
    shielded_meanwhile: list[threading.Thread] = []

    def shield_after_reading(conn: Any, contactpoint_id: str) -> Any:
        row = read_merge(conn, contactpoint_id)
        if in_main_thread() and not shielded_meanwhile:
            shielded_meanwhile.append(_run_to_commit(lambda: _shield(pg, y), wait=1.0))
        return row

    monkeypatch.setattr(merge_repo, "live_merge_of", shield_after_reading)
    pg.run_sync(lambda c: merging.unmerge(c, manager=MANAGER, retired_id=x, reason="two", now=NOW))
    shielded_meanwhile[0].join(10)
    # Given while they were merged: it stands for both (README, Data managers).
    assert _shielded(pg, y) and _shielded(pg, x)


def test_a_find_reads_a_child_as_it_was_before_a_merge_or_after_never_half(
    pg: Database, monkeypatch: pytest.MonkeyPatch, in_main_thread: Callable[[], bool]
) -> None:
    # Found by probing: FindChild on Y's name read Y's row (unshielded) before a merge of shielded
    # X into Y committed, and Y's records after it: Y unshielded, with X's address.
    alone = make_record(
        "fy-1",
        as_of=Timestamp(seconds=int(NOW.timestamp()) - 86_400),
        source_system="system-fy-1",
        name=child_pb2.PersonName(given_names="Araminta", family_name="Quenby"),
        nhs_number="",
        address=child_pb2.Address(lines=["1 Elm Row"], town="Leeds", postcode="LS1 4AP"),
    )
    y = _submit(pg, alone).contactpoint_id
    # X's record is the newer: once merged, its address is the one shown.
    newer = make_record(
        "fx-22",
        source_system="system-fx-22",
        name=child_pb2.PersonName(given_names="Bartholomew", family_name="Greatorex"),
        nhs_number="",
        address=child_pb2.Address(lines=["5 Greatorex Road"], town="Leeds", postcode="LS2 7EY"),
    )
    newer.as_of.FromDatetime(NOW)
    x = _submit(pg, newer).contactpoint_id
    _shield(pg, x)
    read_child = child_repo.child
    merged_meanwhile: list[threading.Thread] = []

    def merge_after_reading(conn: Any, contactpoint_id: str, **kwargs: Any) -> Any:
        row = read_child(conn, contactpoint_id, **kwargs)
        if in_main_thread() and contactpoint_id == y and not merged_meanwhile:
            merged_meanwhile.append(_run_to_commit(lambda: _merge(pg, y, x), wait=5.0))
        return row

    monkeypatch.setattr(child_repo, "child", merge_after_reading)
    criteria = FindCriteria("Quenby", "Araminta", (2018, 3, 14))
    found = pg.run_sync(lambda c: children.search_child(c, criteria=criteria), write=False)
    assert merged_meanwhile and not merged_meanwhile[0].is_alive()  # the merge did commit meanwhile
    child = found.child
    # As before the merge (Y alone, unshielded) or after it (shielded): never Y unshielded with
    # X's address ("5 Greatorex Road").
    assert child.shielded or list(child.address.lines) == ["1 Elm Row"], child.address


def test_a_pair_kept_apart_as_a_record_raises_it_is_not_proposed_again(pg: Database) -> None:
    # Found by probing: a KEEP_APART and a record that would pair the same two children, at the
    # same moment: the record's check for a kept-apart pair ran before the decision committed, and
    # NextReviewTask then handed out the pair again.
    a = _submit(pg, make_record("ka-1")).contactpoint_id
    b = _submit(pg, make_record("ka-2")).contactpoint_id
    task = pg.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    decided, go = threading.Event(), threading.Event()

    def keep_apart_held_open() -> None:
        with pg.transaction() as conn:
            review.resolve_task(
                conn, manager=MANAGER, task_id=task.task_id, decision=KEEP_APART, reason="two", now=NOW
            )
            decided.set()
            assert go.wait(10)

    def raise_again() -> None:
        again = review_repo.NewTask(uuid.uuid4().hex, b, a, 12.0, ["a new record links to both"])
        pg.run_sync(lambda c: task_upkeep.raise_pairs(c, [again], now=NOW))

    decision = threading.Thread(target=keep_apart_held_open)
    decision.start()
    assert decided.wait(10)
    raising = _run_to_commit(raise_again, wait=0.5)
    assert raising.is_alive()  # it waits for the decision on the pair
    go.set()
    decision.join(10)
    raising.join(10)
    assert pg.run_sync(lambda c: review_repo.open_task_of_pair(c, a, b), write=False) is None


def test_a_pair_raised_as_it_is_kept_apart_is_closed_by_the_decision(pg: Database) -> None:
    # The other order: the record's task is being raised when the decision comes; the decision
    # waits for it, then closes it with its own.
    a = _submit(pg, make_record("kb-1")).contactpoint_id
    b = _submit(pg, make_record("kb-2")).contactpoint_id
    task = pg.run_sync(lambda c: review.next_task(c, manager=MANAGER, now=NOW))
    raised, go = threading.Event(), threading.Event()

    def raise_held_open() -> None:
        again = review_repo.NewTask(uuid.uuid4().hex, b, a, 12.0, ["a new record links to both"])
        with pg.transaction() as conn:
            # (the first task still waits on the pair: this one is kept as waiting beside it)
            task_upkeep.raise_pairs(conn, [again], now=NOW)
            conn.execute(text("SELECT 1"))
            raised.set()
            assert go.wait(10)

    raising = threading.Thread(target=raise_held_open)
    raising.start()
    assert raised.wait(10)
    deciding = _run_to_commit(
        lambda: pg.run_sync(
            lambda c: review.resolve_task(
                c, manager=MANAGER, task_id=task.task_id, decision=KEEP_APART, reason="two", now=NOW
            )
        ),
        wait=0.5,
    )
    assert deciding.is_alive()  # it waits for the record's transaction on the pair
    go.set()
    raising.join(10)
    deciding.join(10)
    assert pg.run_sync(lambda c: review_repo.open_task_of_pair(c, a, b), write=False) is None


def test_the_same_merge_sent_twice_at_once_answers_both_as_merged(
    pg: Database, monkeypatch: pytest.MonkeyPatch, in_main_thread: Callable[[], bool]
) -> None:
    # Found by probing: MergeChildren(F <- E) sent to two replicas at once answered one OK and one
    # NOT_FOUND; the same retried later answers OK.
    f = _child(pg, "mf-1", "Theodora", "Winterbourne")
    e = _child(pg, "me-22", "Cornelius", "Ravenscroft")
    check = merging.active_child
    answers: list[str] = []

    def merge_once() -> None:
        child = pg.run_sync(
            lambda c: merging.merge(c, manager=MANAGER, survivor_id=f, retired_id=e, reason="one", now=NOW)
        )
        answers.append(child.contactpoint_id)

    other: list[threading.Thread] = []

    def the_other_arrives(*args: Any, **kwargs: Any) -> Any:
        if in_main_thread() and not other:
            other.append(_run_to_commit(merge_once, wait=1.0))
        return check(*args, **kwargs)

    monkeypatch.setattr(merging, "active_child", the_other_arrives)
    merge_once()
    other[0].join(10)
    assert answers == [f, f]
