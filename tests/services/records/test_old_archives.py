"""Children archived by a release before the keyed check of the day (0012): found by probing an
upgrade, they stayed hidden when a date of death was corrected to later in the month, and their
purge followed the corrected date, days early or late; review tasks their archiving ended kept the
day. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from google.type import date_pb2
from sqlalchemy import select, text, update

from contactpoint.platform import migrate
from contactpoint.platform.db import Database, make_engine
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin, ingestion
from services.records.main import MIGRATIONS
from services.records.tables import children
from tests.services.records.conftest import ORG_A, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def _died(record: pb.SourceRecord, day: dt.date) -> pb.SourceRecord:
    record.date_of_death.CopyFrom(date_pb2.Date(year=day.year, month=day.month, day=day.day))
    return record


def _submit(db: Database, record: pb.SourceRecord, request_id: str, now: dt.datetime) -> str:
    return db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id=request_id, record=record, now=now)
    ).contactpoint_id


def _archived_by_an_old_release(db: Database, died: dt.date, today: dt.date) -> tuple[str, pb.SourceRecord]:
    # A child archived as an older release would leave it after the upgrade: the month kept, no
    # keyed check of the day.
    record = _died(make_record(f"r-{died}", nhs_number=""), died)
    cp = _submit(db, record, f"r-{died}", NOW)
    assert admin.run_lifecycle(db, today=today).archived == 1
    db.run_sync(
        lambda c: c.execute(
            update(children).where(children.c.contactpoint_id == cp).values(archived_check=None)
        )
    )
    return cp, record


def _status(db: Database, cp: str) -> str:
    return str(
        db.run_sync(
            lambda c: c.execute(
                select(children.c.status).where(children.c.contactpoint_id == cp)
            ).scalar_one(),
            write=False,
        )
    )


def test_a_date_of_death_corrected_to_later_brings_back_a_child_an_old_release_archived(db: Database) -> None:
    cp, record = _archived_by_an_old_release(db, dt.date(2025, 12, 3), dt.date(2026, 12, 3))
    assert admin.check_old_archives(db) == 1  # on start-up, before any record is taken
    assert admin.check_old_archives(db) == 0  # and then it has its check
    _submit(db, _died(record, dt.date(2025, 12, 20)), "corrected", LATER)
    assert _status(db, cp) == "active"  # visible again until 20 December
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 19)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 20)).archived == 1


def test_the_purge_of_a_child_an_old_release_archived_follows_the_day_it_was_archived(db: Database) -> None:
    cp, record = _archived_by_an_old_release(db, dt.date(2025, 12, 4), dt.date(2026, 12, 4))
    admin.check_old_archives(db)
    _submit(db, _died(record, dt.date(2025, 12, 1)), "corrected", LATER)  # earlier: stays archived
    assert _status(db, cp) == "archived"
    assert admin.run_lifecycle(db, today=dt.date(2032, 12, 3)).purged == 0  # not by the new date
    assert admin.run_lifecycle(db, today=dt.date(2032, 12, 4)).purged == 1


def test_a_child_whose_records_no_longer_give_its_month_keeps_no_check(db: Database) -> None:
    # Its records changed since (under the old release): the day cannot be known, and the child
    # goes by its month, as before; it is looked at again on each start until it has one.
    cp, _ = _archived_by_an_old_release(db, dt.date(2025, 12, 3), dt.date(2026, 12, 3))
    db.run_sync(
        lambda c: c.execute(
            update(children)
            .where(children.c.contactpoint_id == cp)
            .values(archived_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        )
    )
    assert admin.check_old_archives(db) == 0
    check = db.run_sync(
        lambda c: c.execute(
            select(children.c.archived_check).where(children.c.contactpoint_id == cp)
        ).scalar(),
        write=False,
    )
    assert check is None and _status(db, cp) == "archived"


def test_the_upgrade_keeps_only_the_month_of_review_tasks_archiving_ended(database_url: str) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url, revision="0012")
    engine = make_engine(database_url)
    child = (
        "INSERT INTO children (contactpoint_id, status, shielded, provisional_shield, created_at, updated_at)"
        " VALUES (:id, :status, false, false, :t, :t)"
    )
    task = (
        "INSERT INTO review_tasks (task_id, new_child, candidate, score, reasons, status, decision,"
        " decision_reason, created_at, resolved_at) VALUES (:id, :new, :candidate, 20.0, '[]', 'resolved',"
        " :decision, 'overtaken by events', :t, :ended)"
    )
    created = dt.datetime(2026, 5, 6, 7, 8, tzinfo=dt.UTC)
    ended = dt.datetime(2027, 1, 12, 0, 0, tzinfo=dt.UTC)  # the day archiving ended it: a birthday
    try:
        with engine.begin() as conn:
            for cid, status in (
                ("100000000001", "archived"),
                ("100000000002", "active"),
                ("100000000003", "active"),
            ):
                conn.execute(text(child), {"id": cid, "status": status, "t": created})
            for tid, new, decision in (
                ("t1", "100000000002", "OBSOLETE"),  # ended when 100000000001 was archived
                ("t2", "100000000003", "OBSOLETE"),  # ended otherwise, both children active
                ("t3", "100000000002", "KEEP_APART"),  # a data manager's decision
            ):
                candidate = "100000000001" if tid != "t2" else "100000000002"
                conn.execute(
                    text(task),
                    {
                        "id": tid,
                        "new": new,
                        "candidate": candidate,
                        "decision": decision,
                        "t": created,
                        "ended": ended,
                    },
                )
        migrate.upgrade("records", MIGRATIONS, database_url)
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT task_id, resolved_at FROM review_tasks ORDER BY task_id")).all()
    finally:
        engine.dispose()

    def day(value: object) -> str:
        return str(value)[:10]

    assert [(r.task_id, day(r.resolved_at)) for r in rows] == [
        ("t1", "2027-01-01"),
        ("t2", "2027-01-12"),
        ("t3", "2027-01-12"),
    ]
