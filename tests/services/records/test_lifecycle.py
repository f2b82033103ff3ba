"""The lifecycle rules at each boundary date, on SQLite and PostgreSQL: archived at 18 (25 when
extended) or a year after death, purged six years after archiving, the id reserved for ever."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from google.type import date_pb2
from sqlalchemy import func, make_url, select

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database, TransactionConflict, is_sqlite
from contactpoint.platform.errors import NotFound
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin, children, ingestion, merging, shielding, withdrawal
from services.records.children import add_years, archive_date
from services.records.model import Outcome
from services.records.preparing import Submission
from services.records.repository import children as child_repo
from services.records.repository import review as review_repo
from services.records.repository import sources as source_repo
from services.records.stewardship import Manager
from services.records.tables import (
    blocking_keys,
    kept_apart,
    match_keys,
    merges,
    review_tasks,
    shields,
    source_records,
)
from services.records.tables import children as child_table
from tests.services.records.conftest import ORG_A, ORG_B, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _date(day: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def _submit(db: Database, record: pb.SourceRecord) -> str:
    return db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=ORG_A, request_id=record.source_record_id, record=record, now=NOW
        )
    ).contactpoint_id


def _visible(db: Database, contactpoint_id: str, today: dt.date) -> bool:
    try:
        db.run_sync(
            lambda c: children.get_child(c, contactpoint_id=contactpoint_id, today=today), write=False
        )
    except NotFound:
        return False
    return True


def _education_record(rid: str, given: str, family: str, born: dt.date) -> pb.SourceRecord:
    # Another child's record, from another source system of the same council, with no NHS number.
    return make_record(
        rid,
        source_system="education",
        name=child_pb2.PersonName(given_names=given, family_name=family),
        date_of_birth=_date(born),
        nhs_number="",
    )


def _merge(db: Database, survivor: str, retired: str) -> None:
    manager = Manager("dm-a", ORG_A)
    db.run_sync(
        lambda c: merging.merge(
            c, manager=manager, survivor_id=survivor, retired_id=retired, reason="one", now=NOW
        )
    )


def _status(db: Database, contactpoint_id: str) -> str:
    row = db.run_sync(lambda c: child_repo.child(c, contactpoint_id), write=False)
    assert row is not None
    return row.status


@pytest.mark.parametrize(
    ("born", "extended", "archived_on"),
    [
        (dt.date(2010, 3, 14), False, dt.date(2028, 3, 14)),
        (dt.date(2012, 2, 29), False, dt.date(2030, 3, 1)),  # no 29 February in 2030
        (dt.date(2005, 7, 1), True, dt.date(2030, 7, 1)),
    ],
)
def test_archive_at_18_or_25_then_purge_six_years_later(
    db: Database, born: dt.date, extended: bool, archived_on: dt.date
) -> None:
    record = make_record("r-1", extended=extended, date_of_birth=_date(born))
    cp = _submit(db, record)
    day_before = archived_on - dt.timedelta(days=1)
    assert admin.run_lifecycle(db, today=day_before).archived == 0
    assert _visible(db, cp, day_before) and _status(db, cp) == "active"

    assert admin.run_lifecycle(db, today=archived_on).archived == 1
    assert _status(db, cp) == "archived" and not _visible(db, cp, archived_on)
    assert admin.run_lifecycle(db, today=archived_on).archived == 0  # nothing twice

    purge_on = add_years(archived_on, 6)
    assert admin.run_lifecycle(db, today=purge_on - dt.timedelta(days=1)).purged == 0
    assert (
        db.run_sync(
            lambda c: c.execute(select(func.count()).select_from(source_records)).scalar(), write=False
        )
        == 1
    )
    report = admin.run_lifecycle(db, today=purge_on)
    assert report.purged == 1 and _status(db, cp) == "purged"
    # Personal data gone; the id stays reserved (its row remains, so it is never issued again).
    for table in (source_records, blocking_keys, match_keys):
        assert (
            db.run_sync(
                lambda c, t=table: c.execute(select(func.count()).select_from(t)).scalar(), write=False
            )
            == 0
        )
    assert db.run_sync(lambda c: child_repo.child_exists(c, cp), write=False)


def test_death_archives_the_record_a_year_later(db: Database) -> None:
    died = dt.date(2026, 1, 10)
    record = make_record("r-1", date_of_birth=_date(dt.date(2015, 3, 14)), date_of_death=_date(died))
    cp = _submit(db, record)
    assert _visible(db, cp, dt.date(2027, 1, 9))
    assert admin.run_lifecycle(db, today=dt.date(2027, 1, 9)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2027, 1, 10)).archived == 1
    assert not _visible(db, cp, dt.date(2027, 1, 10))


def test_archive_date_rules() -> None:
    base = make_record("r", date_of_birth=_date(dt.date(2012, 5, 20)))
    assert archive_date([base]) == dt.date(2030, 5, 20)
    extended = make_record("r", date_of_birth=_date(dt.date(2012, 5, 20)), extended=True)
    # Any source saying extended extends it; the latest date of birth wins.
    assert archive_date([base, extended]) == dt.date(2037, 5, 20)
    died = make_record(
        "r", date_of_birth=_date(dt.date(2012, 5, 20)), date_of_death=_date(dt.date(2040, 1, 1))
    )
    assert archive_date([died]) == dt.date(2030, 5, 20)  # already archived at 18 before that
    assert archive_date([]) is None


def test_a_date_of_death_must_make_sense(db: Database) -> None:
    from contactpoint.platform.errors import InvalidArgument

    future = make_record("r-1", date_of_death=_date((NOW + dt.timedelta(days=3)).date()))
    before_birth = make_record("r-2", date_of_death=_date(dt.date(1990, 1, 1)))
    for record in (future, before_birth):
        with pytest.raises(InvalidArgument) as err:
            _submit(db, record)
        assert [v.field for v in err.value.violations] == ["record.date_of_death"]


def test_an_empty_date_of_death_is_no_death(db: Database) -> None:
    """`Date{}` set explicitly (as Java and Go builders may send an unset field) is no date, as an
    empty date of birth is a missing one (found by probing: it was refused as no real date)."""
    record = make_record("r-empty", date_of_death=date_pb2.Date())
    record.involvements[0].start_date.CopyFrom(date_pb2.Date())
    assert record.HasField("date_of_death")
    cp = _submit(db, record)
    assert _visible(db, cp, NOW.date())
    stored = db.run_sync(lambda c: source_repo.active_sources(c, [cp]), write=False)
    kept = pb.SourceRecord.FromString(stored[0].record)
    assert not kept.HasField("date_of_death") and not kept.involvements[0].HasField("start_date")


def test_the_stored_archive_date_gives_away_only_a_month(db: Database) -> None:
    """The exact archive date is a birthday: only its month is stored (issue 8)."""
    cid = _submit(db, make_record("month-1", date_of_birth=_date(dt.date(2014, 9, 23))))
    row = db.run_sync(lambda c: child_repo.child(c, cid), write=False)
    assert row is not None and row.archive_on == dt.date(2032, 9, 1)


def test_children_not_yet_due_in_their_month_never_hold_up_the_others(db: Database) -> None:
    """Within an archive month, a child due later is looked at and left; those after it are
    still archived (batches move on past it), each on its exact day."""
    from services.records import lifecycle

    late = _submit(db, make_record("month-late", date_of_birth=_date(dt.date(2015, 11, 28))))
    early = [
        _submit(db, make_record(f"month-early-{n}", date_of_birth=_date(dt.date(2015, 11, 2 + n))))
        for n in range(3)
    ]
    today = dt.date(2033, 11, 10)
    archived, after = 0, None
    while True:  # one child a batch, as a run over a long month would meet them
        n, after = db.run_sync(lambda c, a=after: lifecycle.archive_batch(c, today=today, after=a, limit=1))
        archived += n
        if after is None:
            break
    assert archived == 3
    assert [_status(db, cid) for cid in early] == ["archived"] * 3
    assert _status(db, late) == "active"
    assert admin.run_lifecycle(db, today=dt.date(2033, 11, 27)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2033, 11, 28)).archived == 1


def _submit_as(db: Database, organisation: str, record: pb.SourceRecord, now: dt.datetime) -> tuple[str, str]:
    submitted = db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=organisation, request_id=record.source_record_id, record=record, now=now
        )
    )
    return submitted.contactpoint_id, submitted.outcome


def test_another_feed_of_a_child_archived_after_death_joins_it_and_stays_hidden(db: Database) -> None:
    # One id for life, visible to no one once archived: a second council that does not know of
    # the death sends the child; it must not become a new child anyone can read.
    died = dt.date(2025, 5, 1)
    record = make_record("r-1", date_of_death=_date(died))
    cp = _submit(db, record)
    assert admin.run_lifecycle(db, today=NOW.date()).archived == 1
    again = make_record("hv-1", source_system="health-visiting")
    assert _submit_as(db, ORG_B, again, NOW) == (cp, "LINKED")
    assert _status(db, cp) == "archived" and not _visible(db, cp, NOW.date())
    assert db.run_sync(lambda c: c.execute(select(func.count()).select_from(child_table)).scalar()) == 1


def test_an_extended_record_of_a_child_archived_at_18_brings_it_back(db: Database) -> None:
    born = dt.date(2008, 7, 1)
    cp = _submit(db, make_record("r-1", date_of_birth=_date(born)))
    eighteen = dt.date(2026, 7, 1)
    assert admin.run_lifecycle(db, today=eighteen).archived == 1
    later = dt.datetime(2026, 7, 2, 9, 0, tzinfo=dt.UTC)
    # A care leaver's extended record from another council: archived at 25 instead, so the
    # child (under its own id) is shown again until then.
    extended = make_record("lc-1", source_system="leaving-care", date_of_birth=_date(born), extended=True)
    assert _submit_as(db, ORG_B, extended, later) == (cp, "LINKED")
    assert _status(db, cp) == "active" and _visible(db, cp, later.date())
    assert admin.run_lifecycle(db, today=dt.date(2033, 6, 30)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2033, 7, 1)).archived == 1


def _archive_on(db: Database, contactpoint_id: str) -> dt.date | None:
    row = db.run_sync(lambda c: child_repo.child(c, contactpoint_id), write=False)
    assert row is not None
    return row.archive_on


def test_a_batch_that_makes_a_child_and_extends_it_archives_it_at_25(db: Database) -> None:
    # The child is made by the batch's first record and joined by its second, an extended record
    # from a leaving-care system: the archive date counts both, though neither was stored before.
    born = dt.date(2009, 9, 9)
    first = make_record("r-1", date_of_birth=_date(born))
    extended = make_record("lc-1", source_system="leaving-care", date_of_birth=_date(born), extended=True)
    batch = [Submission("q-1", first), Submission("q-2", extended)]
    results = db.run_sync(lambda c: ingestion.submit_many(c, organisation=ORG_A, submissions=batch, now=NOW))
    assert [type(r).__name__ for r in results] == ["Submitted", "Submitted"]
    cp = results[0].contactpoint_id  # type: ignore[union-attr]
    assert results[1].contactpoint_id == cp  # type: ignore[union-attr]
    assert _archive_on(db, cp) == dt.date(2034, 9, 1)  # the month of its 25th birthday, not its 18th
    assert admin.run_lifecycle(db, today=dt.date(2027, 9, 9)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2034, 9, 9)).archived == 1


def test_one_batch_refiles_every_child_it_touches_and_brings_back_only_the_archived_one(db: Database) -> None:
    # Three children, one archived at 18; one batch brings a record of each. The archived one's
    # record is extended (back until 25), the others' each bring a date of death.
    people = [("Amelia", "Okafor", dt.date(2008, 7, 1)), ("Ethan", "Corbridge", dt.date(2015, 5, 5))]
    people.append(("Noor", "Haddad", dt.date(2016, 1, 20)))
    ids = []
    for i, (given, family, born) in enumerate(people):
        name = child_pb2.PersonName(given_names=given, family_name=family)
        ids.append(_submit(db, make_record(f"r-{i}", name=name, date_of_birth=_date(born), nhs_number="")))
    assert len(set(ids)) == 3
    assert admin.run_lifecycle(db, today=dt.date(2026, 7, 1)).archived == 1
    later = dt.datetime(2026, 7, 2, 9, 0, tzinfo=dt.UTC)
    died = _date(dt.date(2026, 6, 30))
    batch = []
    for i, (given, family, born) in enumerate(people):
        name = child_pb2.PersonName(given_names=given, family_name=family)
        extra: dict[str, Any] = {"extended": True} if i == 0 else {"date_of_death": died}
        record = make_record(f"r-{i}", name=name, date_of_birth=_date(born), nhs_number="", **extra)
        batch.append(Submission(f"again-{i}", record))
    results = db.run_sync(
        lambda c: ingestion.submit_many(c, organisation=ORG_A, submissions=batch, now=later)
    )
    assert [r.contactpoint_id for r in results] == ids  # type: ignore[union-attr]
    assert _status(db, ids[0]) == "active" and _archive_on(db, ids[0]) == dt.date(2033, 7, 1)
    assert [_status(db, cid) for cid in ids[1:]] == ["active", "active"]
    assert [_archive_on(db, cid) for cid in ids[1:]] == [dt.date(2027, 6, 1), dt.date(2027, 6, 1)]


def test_withdrawing_the_record_that_archived_a_child_brings_it_back(db: Database) -> None:
    cp = _submit(db, make_record("r-1", date_of_death=_date(dt.date(2025, 3, 1))))
    assert admin.run_lifecycle(db, today=NOW.date()).archived == 1
    assert _submit_as(db, ORG_B, make_record("hv-1", source_system="health-visiting"), NOW) == (cp, "LINKED")
    # The death was recorded in error, and its record withdrawn: the other council's record of
    # a living child is what is left, and the child is shown again.
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="r-1", now=NOW
        )
    )
    assert _status(db, cp) == "active" and _visible(db, cp, NOW.date())


def test_unmerging_the_child_whose_death_archived_a_living_child_brings_it_back(db: Database) -> None:
    living = _submit(db, make_record("r-1", nhs_number=""))
    dead = make_record(
        "r-2",
        source_system="education",
        name=child_pb2.PersonName(given_names="Ethan", family_name="Corbridge"),
        date_of_birth=_date(dt.date(2012, 5, 5)),
        date_of_death=_date(dt.date(2025, 7, 1)),
        nhs_number="",
    )
    other = _submit(db, dead)
    assert other != living
    manager = Manager("dm-a", ORG_A)
    # Merged before the dead child's archive date (after it, it is no data manager's to merge).
    db.run_sync(
        lambda c: merging.merge(
            c, manager=manager, survivor_id=living, retired_id=other, reason="wrongly", now=NOW
        )
    )
    due = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert admin.run_lifecycle(db, today=due.date()).archived == 1
    assert not _visible(db, living, due.date())
    db.run_sync(lambda c: merging.unmerge(c, manager=manager, retired_id=other, reason="two", now=due))
    assert _status(db, living) == "active" and _visible(db, living, due.date())


def _count(db: Database, table: Any) -> int:
    return db.run_sync(lambda c: c.execute(select(func.count()).select_from(table)).scalar(), write=False)


@pytest.mark.parametrize("extended", [False, True])
def test_a_child_whose_every_record_is_withdrawn_is_archived_and_purged_on_time(
    db: Database, extended: bool
) -> None:
    # Found by review: withdrawing a child's last record cleared its archive date, so the
    # withdrawn record's personal data was kept for ever.
    born = dt.date(2010, 3, 14)
    archived_on = add_years(born, 25 if extended else 18)
    cp = _submit(db, make_record("r-1", extended=extended, date_of_birth=_date(born)))
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="r-1", now=NOW
        )
    )
    assert not _visible(db, cp, NOW.date())
    assert admin.run_lifecycle(db, today=archived_on - dt.timedelta(days=1)).archived == 0
    assert admin.run_lifecycle(db, today=archived_on).archived == 1
    assert _status(db, cp) == "archived"
    purge_on = add_years(archived_on, 6)
    assert admin.run_lifecycle(db, today=purge_on - dt.timedelta(days=1)).purged == 0
    assert _count(db, source_records) == 1
    assert admin.run_lifecycle(db, today=purge_on).purged == 1
    assert _status(db, cp) == "purged" and _count(db, source_records) == 0


def test_a_record_sent_again_after_every_one_was_withdrawn_keeps_its_child_on_its_dates(db: Database) -> None:
    # Revived after the withdrawal, the child is dated by its active record again (extended: 25).
    born = dt.date(2009, 5, 5)
    cp = _submit(db, make_record("r-1", date_of_birth=_date(born)))
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="r-1", now=NOW
        )
    )
    again = make_record("r-1", extended=True, date_of_birth=_date(born))
    revived = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="r-1-again", record=again, now=NOW)
    )
    assert revived.contactpoint_id == cp
    assert admin.run_lifecycle(db, today=add_years(born, 18)).archived == 0
    assert admin.run_lifecycle(db, today=add_years(born, 25)).archived == 1


def test_purge_comes_six_years_after_the_archive_date_however_late_the_run(db: Database) -> None:
    # The job did not run for a week (found by probing: purge counted from the run, so personal
    # data outlived the retention rule by however late the job was).
    cp = _submit(db, make_record("r-1", date_of_birth=_date(dt.date(2010, 3, 14))))
    assert admin.run_lifecycle(db, today=dt.date(2028, 3, 21)).archived == 1
    assert admin.run_lifecycle(db, today=dt.date(2034, 3, 13)).purged == 0
    assert admin.run_lifecycle(db, today=dt.date(2034, 3, 14)).purged == 1
    assert _status(db, cp) == "purged"


def test_a_child_archived_by_a_run_dated_ahead_stays_archived_when_its_feeds_change(db: Database) -> None:
    # `contactpoint records lifecycle --today D` with D after the real date archives what is due
    # by D; a later record that does not move the archive date on must not bring the child back
    # (found by probing: any change did, as the child's archive date was still ahead of the
    # real today).
    born = dt.date(2010, 3, 14)
    cp = _submit(db, make_record("r-1", date_of_birth=_date(born)))
    assert admin.run_lifecycle(db, today=dt.date(2028, 3, 14)).archived == 1
    again = make_record("hv-1", source_system="health-visiting", date_of_birth=_date(born))
    assert _submit_as(db, ORG_B, again, NOW) == (cp, "LINKED")
    assert _status(db, cp) == "archived"
    moved = make_record("r-1", date_of_birth=_date(born))
    moved.address.lines[:] = ["2 Another Street"]
    resent = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="r-1-moved", record=moved, now=NOW)
    )
    assert resent.contactpoint_id == cp and resent.outcome == "LINKED"
    assert _status(db, cp) == "archived" and not _visible(db, cp, NOW.date())
    # A care leaver's extended record does move it on, past the day it was archived.
    extended = make_record("lc-1", source_system="leaving-care", date_of_birth=_date(born), extended=True)
    assert _submit_as(db, ORG_B, extended, NOW) == (cp, "LINKED")
    assert _status(db, cp) == "active" and _visible(db, cp, NOW.date())


def test_an_unmerge_after_a_run_dated_ahead_leaves_both_children_archived(db: Database) -> None:
    # Found by re-probing: the child the unmerge put back was shown in full, though the run that
    # archived its survivor had reached its archive date too.
    born = dt.date(2009, 1, 10)
    a = _submit(db, make_record("r-1", date_of_birth=_date(born), nhs_number=""))
    b = _submit(db, _education_record("r-2", "Iggy", "Pemberton", born))
    assert a != b
    manager = Manager("dm-a", ORG_A)
    told = "Iggy Pemberton of 12 Quillanor Walk"
    db.run_sync(
        lambda c: merging.merge(c, manager=manager, survivor_id=a, retired_id=b, reason=told, now=NOW)
    )
    assert admin.run_lifecycle(db, today=dt.date(2027, 1, 10)).archived == 1
    db.run_sync(lambda c: merging.unmerge(c, manager=manager, retired_id=b, reason=told, now=NOW))
    assert (_status(db, a), _status(db, b)) == ("archived", "archived")
    assert not _visible(db, b, NOW.date())
    # Purged six years after that archive date, with its survivor.
    assert admin.run_lifecycle(db, today=dt.date(2033, 1, 10)).purged == 2
    # The data manager's reasons about them are gone too (found by probing a stolen records.db:
    # a reason naming a child and its address outlived the purge); the pair stays kept apart.
    stored = db.run_sync(
        lambda c: [
            *c.execute(select(merges.c.reason, merges.c.undo_reason)).all(),
            *c.execute(select(kept_apart.c.reason)).all(),
        ],
        write=False,
    )
    assert stored == [("(purged)", "(purged)"), ("(purged)",)]
    # ...and from the files (found by probing: the write-ahead log kept them until it was reused).
    if is_sqlite(db.url):
        path = Path(str(make_url(db.url).database))
        for file in (path, Path(f"{path}-wal")):
            assert not file.exists() or b"Quillanor" not in file.read_bytes(), file


def test_a_purge_forgets_which_organisations_shielded_the_child(db: Database) -> None:
    # Found by review: the purge deleted a child's records and reasons, and kept for good which
    # councils had shielded it, and when.
    born = dt.date(2009, 2, 11)
    child = _submit(db, make_record("r-shielded", date_of_birth=_date(born), nhs_number=""))
    manager = Manager("dm-a", ORG_A)
    db.run_sync(
        lambda c: shielding.set_shielded(
            c, manager=manager, contactpoint_id=child, shielded=True, reason="moved to a refuge", now=NOW
        )
    )

    def shield_rows() -> int:
        query = select(func.count()).select_from(shields).where(shields.c.contactpoint_id == child)
        return int(db.run_sync(lambda c: c.execute(query).scalar(), write=False))

    assert shield_rows() == 1
    admin.run_lifecycle(db, today=dt.date(2027, 2, 11))
    assert _status(db, child) == "archived" and shield_rows() == 1
    admin.run_lifecycle(db, today=dt.date(2033, 2, 11))
    assert _status(db, child) == "purged" and shield_rows() == 0


def test_an_unmerge_gets_back_a_younger_child_a_wrong_merge_archived(db: Database) -> None:
    # A probe asked why an unmerge answers for a retired id whose survivor is archived, when
    # merging or shielding it is NOT_FOUND. On purpose: a child of 11 merged by mistake into a
    # child of 18 is archived with it, and the unmerge is how a data manager gets it back; the
    # survivor stays archived (the test above: the child put back stays archived if its own
    # date has come too).
    young = _education_record("r-2", "Iggy", "Pemberton", dt.date(2015, 5, 5))
    younger = _submit(db, young)
    # The older child's record is the newer one, so the merged child takes its date of birth.
    old = make_record("r-1", date_of_birth=_date(dt.date(2009, 1, 10)), nhs_number="")
    older = _submit_as(db, ORG_A, old, NOW + dt.timedelta(minutes=1))[0]
    manager = Manager("dm-a", ORG_A)
    db.run_sync(
        lambda c: merging.merge(
            c, manager=manager, survivor_id=older, retired_id=younger, reason="one", now=NOW
        )
    )
    assert admin.run_lifecycle(db, today=dt.date(2027, 1, 11)).archived == 1
    assert not _visible(db, younger, dt.date(2027, 1, 11))
    db.run_sync(lambda c: merging.unmerge(c, manager=manager, retired_id=younger, reason="wrong", now=NOW))
    assert (_status(db, older), _status(db, younger)) == ("archived", "active")
    assert _visible(db, younger, dt.date(2027, 1, 11)) and not _visible(db, older, dt.date(2027, 1, 11))


def test_a_lifecycle_batch_that_lost_a_race_runs_again(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by probing: two `records lifecycle` runs at once on PostgreSQL deadlocked, and one
    # ended in a traceback. A lost batch now runs again (nothing it did was kept).
    cp = _submit(db, make_record("race-1", date_of_birth=_date(dt.date(2010, 3, 14))))
    real = db.run_sync
    lost: list[object] = []

    def first_loses(fn: Any, **kwargs: Any) -> Any:
        if not lost:
            lost.append(fn)
            raise TransactionConflict("the transaction lost a race; retry it")
        return real(fn, **kwargs)

    monkeypatch.setattr(db, "run_sync", first_loses)
    assert admin.run_lifecycle(db, today=dt.date(2028, 3, 14)).archived == 1
    assert lost and _status(db, cp) == "archived"


def test_a_changed_record_of_an_archived_child_like_another_child_is_stored_without_a_task(
    db: Database,
) -> None:
    """Found while checking the batch's locks: a held record of an archived child, sent again
    with content like another child's, raised a task naming the archived child, which the batch
    then refused to write for ever (it expected the child active): the record could never be
    updated. An archived child is never a review task's."""
    born = dt.date(2010, 3, 14)
    archived = _submit(db, make_record("r-1", date_of_birth=_date(born)))
    assert admin.run_lifecycle(db, today=dt.date(2028, 3, 14)).archived == 1
    theodora = child_pb2.PersonName(given_names="Theodora", family_name="Quenby")
    # Born the same day, filed after the run: active.
    other = _submit(
        db, make_record("b-1", source_system="education", name=theodora, date_of_birth=_date(born))
    )
    changed = make_record("r-1", name=theodora, date_of_birth=_date(born))
    resent = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="r-1-again", record=changed, now=NOW)
    )
    assert resent.contactpoint_id == archived and _status(db, archived) == "archived"
    tasks = db.run_sync(lambda c: review_repo.open_tasks_of(c, other), write=False)
    assert tasks == []


def test_a_due_childs_record_is_no_review_within_one_batch_either(db: Database) -> None:
    # A child dead over a year is due at once. A council's second record of it in the same batch
    # meets the first as the batch's own record, which must count as due as a stored one does
    # (it answered POSSIBLE_MATCH, with a task no data manager would be handed).
    died = _date(NOW.date() - dt.timedelta(days=400))
    batch = [
        Submission("d-1", make_record("sc-1", date_of_death=died)),
        Submission("d-2", make_record("sc-2", nhs_number="")),
    ]
    results = db.run_sync(lambda c: ingestion.submit_many(c, organisation=ORG_A, submissions=batch, now=NOW))
    assert [r.outcome for r in results if not isinstance(r, Exception)] == [Outcome.CREATED, Outcome.CREATED]
    dead, again = (r.contactpoint_id for r in results if not isinstance(r, Exception))
    assert not _visible(db, dead, NOW.date()) and _visible(db, again, NOW.date())
    assert db.run_sync(lambda c: review_repo.open_tasks_of(c, again), write=False) == []


def _dates_stored(db: Database, contactpoint_id: str) -> list[dt.date]:
    # Every date and time the children table keeps in the clear for one child.
    query = select(child_table).where(child_table.c.contactpoint_id == contactpoint_id)
    row = db.run_sync(lambda c: c.execute(query).one(), write=False)
    return [v.date() if isinstance(v, dt.datetime) else v for v in row if isinstance(v, dt.date)]


@pytest.mark.parametrize(
    ("born", "died", "archived_on"),
    [
        (dt.date(2010, 3, 14), None, dt.date(2028, 3, 14)),
        (dt.date(2012, 4, 23), dt.date(2025, 9, 17), dt.date(2026, 9, 17)),
    ],
)
def test_no_day_of_birth_or_death_is_kept_in_the_clear_when_archived_or_purged(
    db: Database, born: dt.date, died: dt.date | None, archived_on: dt.date
) -> None:
    # Found by probing a stolen records.db: `archived_at` held the exact day a child was archived
    # (its 18th birthday, or a year after its death), and so did its update time, and the purge
    # six years on kept it; beside the child's lifelong id that is its date of birth or death.
    record = make_record("r-1", date_of_birth=_date(born), nhs_number="")
    if died is not None:
        record.date_of_death.CopyFrom(_date(died))
    cp = _submit(db, record)
    # A second record of one source system: a possible match, whose task the archiving ends.
    record.source_record_id = "r-2"
    twin = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="r-2", record=record, now=NOW)
    )
    assert twin.outcome == "POSSIBLE_MATCH"
    assert admin.run_lifecycle(db, today=archived_on - dt.timedelta(days=1)).archived == 0
    assert admin.run_lifecycle(db, today=archived_on).archived == 2
    assert _status(db, cp) == "archived"
    created = NOW.date()
    assert {d for d in _dates_stored(db, cp) if d != created} == {archived_on.replace(day=1)}
    tasks = db.run_sync(lambda c: c.execute(select(review_tasks)).all(), write=False)
    task_dates = {v.date() for row in tasks for v in row if isinstance(v, dt.datetime)}
    assert len(tasks) == 1 and task_dates - {created} == {archived_on.replace(day=1)}, tasks
    # The purge still comes six years after that very day, worked out from the sealed records.
    purge_day = add_years(archived_on, 6)
    assert admin.run_lifecycle(db, today=purge_day - dt.timedelta(days=1)).purged == 0
    assert admin.run_lifecycle(db, today=purge_day).purged == 2
    assert _status(db, cp) == "purged"
    assert {d for d in _dates_stored(db, cp) if d != created} == {dt.date(purge_day.year, 1, 1)}


def test_the_upgrade_keeps_only_the_month_archived_and_the_year_purged(database_url: str) -> None:
    from sqlalchemy import text

    from contactpoint.platform import migrate
    from contactpoint.platform.db import make_engine
    from services.records.main import MIGRATIONS

    migrate.upgrade("records", MIGRATIONS, database_url, revision="0010")
    engine = make_engine(database_url)
    insert = (
        "INSERT INTO children (contactpoint_id, status, shielded, provisional_shield, created_at,"
        " updated_at, archive_on, archived_at, purged_at) VALUES (:id, :status, false, false, :created,"
        " :at, :on, :archived, :purged)"
    )
    created, archived, purged = (
        dt.datetime(2020, 5, 6, 7, 8, tzinfo=dt.UTC),
        dt.datetime(2028, 3, 14, tzinfo=dt.UTC),
        dt.datetime(2034, 3, 14, tzinfo=dt.UTC),
    )
    try:
        with engine.begin() as conn:
            for cid, status, at, on, archived_at, purged_at in (
                ("100000000001", "archived", archived, dt.date(2028, 3, 1), archived, None),
                ("100000000002", "purged", purged, None, archived, purged),
                ("100000000003", "active", created, dt.date(2028, 3, 1), None, None),
            ):
                values = {"id": cid, "status": status, "created": created, "at": at, "on": on}
                conn.execute(text(insert), {**values, "archived": archived_at, "purged": purged_at})
        migrate.upgrade("records", MIGRATIONS, database_url)
        with engine.begin() as conn:
            rows = conn.execute(select(child_table).order_by(child_table.c.contactpoint_id)).all()
    finally:
        engine.dispose()

    def day(value: dt.datetime | None) -> dt.date | None:
        return None if value is None else value.date()

    assert [(day(r.archived_at), day(r.purged_at), day(r.updated_at)) for r in rows] == [
        (dt.date(2028, 3, 1), None, dt.date(2028, 3, 1)),
        (None, dt.date(2034, 1, 1), dt.date(2034, 1, 1)),
        (None, None, created.date()),
    ]


def test_the_upgrade_forgets_the_shields_of_children_already_purged(database_url: str) -> None:
    from sqlalchemy import text

    from contactpoint.platform import migrate
    from contactpoint.platform.db import make_engine
    from services.records.main import MIGRATIONS

    migrate.upgrade("records", MIGRATIONS, database_url, revision="0016")
    engine = make_engine(database_url)
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    try:
        with engine.begin() as conn:
            for cid, status in (("100000000011", "purged"), ("100000000012", "active")):
                conn.execute(
                    text(
                        "INSERT INTO children (contactpoint_id, status, shielded, provisional_shield,"
                        " created_at, updated_at) VALUES (:id, :status, :shielded, false, :at, :at)"
                    ),
                    {"id": cid, "status": status, "shielded": status == "active", "at": at},
                )
                conn.execute(
                    text(
                        "INSERT INTO shields (contactpoint_id, organisation, created_at)"
                        " VALUES (:id, 'E1', :at)"
                    ),
                    {"id": cid, "at": at},
                )
        migrate.upgrade("records", MIGRATIONS, database_url)
        with engine.begin() as conn:
            kept = conn.execute(select(shields.c.contactpoint_id)).scalars().all()
    finally:
        engine.dispose()
    assert kept == ["100000000012"]


def test_a_date_of_death_corrected_to_later_that_month_brings_the_child_back_until_then(db: Database) -> None:
    # Found by re-probing the month-only archive time: the child stayed archived (hidden) for the
    # fortnight between its old archive date and its corrected one, as the month could not tell.
    record = make_record("r-1", date_of_birth=_date(dt.date(2012, 4, 23)), nhs_number="")
    record.date_of_death.CopyFrom(_date(dt.date(2025, 12, 2)))
    cp = _submit(db, record)
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 6)).archived == 1
    record.date_of_death.CopyFrom(_date(dt.date(2025, 12, 20)))
    now = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    corrected = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="r-1-dod", record=record, now=now)
    )
    assert corrected.contactpoint_id == cp
    assert _status(db, cp) == "active" and _visible(db, cp, now.date())
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 19)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 20)).archived == 1


def _corrected_death(db: Database, record: pb.SourceRecord, died: dt.date, now: dt.datetime) -> None:
    record.date_of_death.CopyFrom(_date(died))
    db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id=f"dod-{died}", record=record, now=now)
    )


def test_a_child_archived_ahead_stays_archived_when_its_date_moves_earlier_within_the_month(
    db: Database,
) -> None:
    # Found by re-probing the keyed check: any other day within the month counted as moved on,
    # so a child archived by a run dated ahead came back when its date of death was corrected to
    # an earlier day (still after the real date), though it was archived after that day.
    record = make_record("r-1", date_of_birth=_date(dt.date(2012, 4, 23)), nhs_number="")
    record.date_of_death.CopyFrom(_date(dt.date(2025, 12, 26)))
    cp = _submit(db, record)
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 28)).archived == 1
    _corrected_death(db, record, dt.date(2025, 12, 23), dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC))
    assert _status(db, cp) == "archived"
    # Moved on past the day it was archived, it is back until then.
    _corrected_death(db, record, dt.date(2025, 12, 29), dt.datetime(2026, 12, 6, 13, tzinfo=dt.UTC))
    assert _status(db, cp) == "active"


def test_the_purge_comes_six_years_after_the_day_archived_whatever_a_correction_says(db: Database) -> None:
    # Found by re-probing: the purge followed the date in the records as they were at the purge,
    # so a date of death corrected after the archiving purged the child two days early.
    record = make_record("r-1", date_of_birth=_date(dt.date(2012, 4, 23)), nhs_number="")
    record.date_of_death.CopyFrom(_date(dt.date(2025, 12, 4)))
    cp = _submit(db, record)
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 4)).archived == 1
    _corrected_death(db, record, dt.date(2025, 12, 2), dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC))
    assert _status(db, cp) == "archived"
    assert admin.run_lifecycle(db, today=dt.date(2032, 12, 3)).purged == 0
    assert admin.run_lifecycle(db, today=dt.date(2032, 12, 4)).purged == 1


def test_a_newer_date_for_an_unchanged_record_refiles_its_childs_archive_date(db: Database) -> None:
    # Found by probing: after a merge, a record sent again unchanged but dated years ago became
    # its child's oldest, which moved the child's date of birth (the newest record's) but not its
    # archive month: the child stayed visible a year past its 18th birthday. An older date than
    # the version held is a late replay and now changes nothing; a newer one refiles the child.
    older = make_record("x-1", date_of_birth=_date(dt.date(2008, 12, 8)), nhs_number="")
    other = _education_record("y-1", "Yara", "Ordertwo", dt.date(2012, 1, 9))
    x = _submit(db, older)
    y = _submit_as(db, ORG_A, other, NOW + dt.timedelta(minutes=1))[0]
    _merge(db, x, y)

    def archive_on() -> dt.date | None:
        row = db.run_sync(lambda c: child_repo.child(c, x), write=False)
        assert row is not None
        return row.archive_on

    assert archive_on() == dt.date(2030, 1, 1)  # the newest record's date of birth, 2012
    other.as_of.FromDatetime(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    replay = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="y-1-old", record=other, now=NOW)
    )
    assert replay.outcome == "UNCHANGED" and archive_on() == dt.date(2030, 1, 1)
    # Sent again dated after everything else, the 2008 record is the newest: archived at 18.
    later = NOW + dt.timedelta(days=1)
    older.as_of.FromDatetime(later)
    resent = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="x-1-new", record=older, now=later)
    )
    assert resent.outcome == "UNCHANGED" and archive_on() == dt.date(2026, 12, 1)
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 7)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2026, 12, 8)).archived == 1


def test_an_archived_child_whose_newest_record_changes_to_a_later_birthday_in_the_month_comes_back(
    db: Database,
) -> None:
    # Found by re-probing: only a change of archive month was refiled, so a merged child archived
    # on 10 June stayed archived when a record sent again with a newer date made 20 June its
    # birthday; nor did its update time move when the record it showed changed.
    first = make_record("b-1", date_of_birth=_date(dt.date(2009, 6, 10)), nhs_number="")
    first.as_of.FromDatetime(dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    second = _education_record("b-2", "Hattie", "Quil", dt.date(2009, 6, 20))
    second.as_of.FromDatetime(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    x = _submit(db, first)
    y = _submit_as(db, ORG_A, second, NOW + dt.timedelta(minutes=1))[0]
    _merge(db, x, y)
    assert admin.run_lifecycle(db, today=dt.date(2027, 6, 10)).archived == 1
    second.as_of.FromDatetime(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    later = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    resent = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="b-2-new", record=second, now=later)
    )
    assert resent.outcome == "UNCHANGED"
    assert _status(db, x) == "active" and _visible(db, x, later.date())
    row = db.run_sync(lambda c: child_repo.child(c, x), write=False)
    assert row is not None and row.updated_at == later
    assert admin.run_lifecycle(db, today=dt.date(2027, 6, 19)).archived == 0
    assert admin.run_lifecycle(db, today=dt.date(2027, 6, 20)).archived == 1
