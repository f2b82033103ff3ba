"""GetChildRecord's fast path (`reading`: one statement on the event loop) against the general
path (`children.get_child`), on SQLite and PostgreSQL: the same child, field for field, for a
child of several sources in as_of order, with a withdrawn source, before and past its archive
date, shielded, unknown, malformed, and wholly withdrawn; a retired id is left to the general path."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import update

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import InvalidArgument, NotFound
from contactpoint.platform.statements import Statements
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import children, ingestion, reading, withdrawal
from services.records.repository.sealing import vault_for
from services.records.tables import MERGED
from services.records.tables import children as children_table
from tests.services.records.conftest import make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _ts(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _submit(db: Database, organisation: str, record: pb.SourceRecord) -> str:
    submitted = db.run_sync(
        lambda c: ingestion.submit(
            c,
            organisation=organisation,
            request_id=f"{organisation}-{record.source_record_id}",
            record=record,
            now=NOW,
        )
    )
    return submitted.contactpoint_id


async def _both(db: Database, store: Statements, contactpoint_id: str, today: dt.date) -> object:
    """What both paths answer: the child (equal on both) or the error's type (the same on both)."""
    try:
        general: object = db.run_sync(
            lambda c: children.get_child(c, contactpoint_id=contactpoint_id, today=today), write=False
        )
    except (NotFound, InvalidArgument) as exc:
        general = type(exc)
    try:
        fast: object = await reading.get_child(
            store, vault_for(db), contactpoint_id=contactpoint_id, today=today
        )
    except (NotFound, InvalidArgument) as exc:
        fast = type(exc)
    assert fast == general
    return fast


async def test_the_fast_path_reads_what_the_general_path_reads(db: Database) -> None:
    older = make_record("r-1", as_of=_ts(NOW - dt.timedelta(days=40)))
    older.name.family_name = "Smith"
    newer = make_record("r-2", as_of=_ts(NOW - dt.timedelta(days=2)), source_system="education")
    newer.address.postcode = "M2 2BB"
    late = make_record("r-3", as_of=_ts(NOW - dt.timedelta(days=90)), source_system="health")
    child_id = _submit(db, "E08000003", older)
    assert _submit(db, "E08000025", newer) == child_id  # the same NHS number: one child
    assert _submit(db, "E08000004", late) == child_id
    alone = make_record("solo-1", nhs_number="", name=older.name)
    alone.date_of_birth.year -= 3
    alone.name.given_names = "Zachary"
    alone_id = _submit(db, "E08000003", alone)
    store = Statements(db)
    try:
        today = NOW.date()
        child = await _both(db, store, child_id, today)
        assert isinstance(child, child_pb2.Child)
        assert child.address.postcode == "M2 2BB" and child.name.family_name == "Okafor"
        # A withdrawn source no longer counts, on both.
        db.run_sync(
            lambda c: withdrawal.withdraw(
                c, organisation="E08000025", source_system="education", source_record_id="r-2", now=NOW
            )
        )
        assert (await _both(db, store, child_id, today)).address.postcode == "M1 1AE"  # type: ignore[attr-defined]
        # Shielded: both say so.
        db.run_sync(lambda c: c.execute(update(children_table).values(shielded=True)))
        assert (await _both(db, store, child_id, today)).shielded  # type: ignore[attr-defined]
        # Past the 18th birthday: hidden on both, though not yet archived.
        assert await _both(db, store, child_id, today.replace(year=today.year + 11)) is NotFound
        assert await _both(db, store, "123456789018", today) is NotFound  # never issued
        assert await _both(db, store, "12345", today) is InvalidArgument
        # Every source withdrawn: no child.
        db.run_sync(
            lambda c: withdrawal.withdraw(
                c, organisation="E08000003", source_system="social-care", source_record_id="solo-1", now=NOW
            )
        )
        assert await _both(db, store, alone_id, today) is NotFound
        # A retired id is read the general way, which follows the merge.
        db.run_sync(
            lambda c: c.execute(
                update(children_table)
                .where(children_table.c.contactpoint_id == alone_id)
                .values(status=MERGED, merged_into=child_id)
            )
        )
        with pytest.raises(reading.Merged):
            await reading.get_child(store, vault_for(db), contactpoint_id=alone_id, today=today)
    finally:
        await store.close()
