"""The review queue hands a data manager the oldest waiting task of their organisation, the one
they already hold first, on either engine. Found while reading the queue's plan: on PostgreSQL a
manager who asked again was handed a second task, not the one they held (a comparison with no
holder sorted before true), holding both for ten minutes."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from services.records import ingestion
from services.records.repository import review as review_repo
from tests.services.records.conftest import ORG_A, ORG_B, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PEOPLE = {
    ORG_A: [("Priya", "Raman", 3), ("Tomasz", "Nowak", 9), ("Ada", "Finch", 21), ("Kwame", "Mensah", 12)],
    ORG_B: [("Isla", "Reid", 5), ("Oscar", "Lund", 17), ("Maya", "Patel", 26), ("Yusuf", "Demir", 8)],
}


def _children(db: Database, org: str) -> list[str]:
    ids: list[str] = []
    for n, (given, family, day) in enumerate(PEOPLE[org]):
        record = make_record(
            f"{org}-{n}", name=child_pb2.PersonName(given_names=given, family_name=family), nhs_number=""
        )
        record.date_of_birth.day = day
        rid = hashlib.sha256(record.SerializeToString()).hexdigest()[:16]
        submitted = db.run_sync(
            lambda c, r=record, i=rid: ingestion.submit(c, organisation=org, request_id=i, record=r, now=NOW)
        )
        ids.append(submitted.contactpoint_id)
    return ids


def _next(db: Database, manager: str, *, org: str = ORG_A, now: dt.datetime = NOW) -> str | None:
    def take(c: object) -> str | None:
        row = review_repo.next_open_task(c, organisation=org, manager=manager, now=now)  # type: ignore[arg-type]
        if row is None:
            return None
        review_repo.hold_task(c, row.task_id, manager=manager, until=now + dt.timedelta(minutes=10))  # type: ignore[arg-type]
        return row.task_id

    return db.run_sync(take)


def test_a_manager_asking_again_gets_the_task_they_hold_and_others_the_next(db: Database) -> None:
    ours, theirs = _children(db, ORG_A), _children(db, ORG_B)
    tasks = [
        review_repo.NewTask(f"t{n}", theirs[n], ours[n], 20.0, [], raised_at=NOW - dt.timedelta(hours=4 - n))
        for n in range(3)
    ]
    # Another organisation's task, older than all: never ORG_A's managers'.
    tasks.append(
        review_repo.NewTask("t-b", ours[3], theirs[3], 20.0, [], raised_at=NOW - dt.timedelta(days=1))
    )
    db.run_sync(lambda c: review_repo.insert_tasks(c, tasks, now=NOW))
    assert _next(db, "nadia") == "t0"
    assert _next(db, "malik") == "t1"
    assert _next(db, "malik") == "t1"  # the one held, not t2
    assert _next(db, "nadia") == "t0"
    assert _next(db, "kofi") == "t2"
    assert _next(db, "lena") is None
    # Ten minutes on, the holds have lapsed: the oldest task goes to whoever asks first.
    later = NOW + dt.timedelta(minutes=11)
    assert _next(db, "lena", now=later) == "t0"
    assert _next(db, "kofi", now=later) == "t2"  # still his own first
    assert _next(db, "bea", org=ORG_B) == "t-b"


def test_one_manager_asking_twice_at_once_holds_one_task(db: Database) -> None:
    """Found by probing: the same data manager asking two records replicas at once (or one twice,
    a client retrying after a timeout) was handed two tasks, the second held out of everyone's
    sight for ten minutes. The second ask now waits for the first and gets the same task."""
    ours, theirs = _children(db, ORG_A), _children(db, ORG_B)
    tasks = [
        review_repo.NewTask(f"t{n}", theirs[n], ours[n], 20.0, [], raised_at=NOW - dt.timedelta(hours=4 - n))
        for n in range(2)
    ]
    db.run_sync(lambda c: review_repo.insert_tasks(c, tasks, now=NOW))
    taken, release = threading.Event(), threading.Event()

    def first(c: object) -> str | None:
        row = review_repo.next_open_task(c, organisation=ORG_A, manager="nadia", now=NOW)  # type: ignore[arg-type]
        assert row is not None
        review_repo.hold_task(c, row.task_id, manager="nadia", until=NOW + dt.timedelta(minutes=10))  # type: ignore[arg-type]
        taken.set()
        release.wait(10)  # the transaction stays open while the second ask comes
        return row.task_id

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(db.run_sync, first)
        assert taken.wait(10)
        two = pool.submit(_next, db, "nadia")
        time.sleep(0.3)
        assert not two.done()  # waiting for the first ask's transaction
        release.set()
        assert one.result(10) == "t0"
        assert two.result(10) == "t0"
    assert _next(db, "malik") == "t1"
