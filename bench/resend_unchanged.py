"""Time resending unchanged records with a newer `as_of` (a daily full-refresh feed), on SQLite in
one process: 600 children held by two source systems each, all 1,200 records sent again five
times, each day dated later. Prints milliseconds a record for each day and their median.

    PYTHONPATH=. .venv/bin/python bench/resend_unchanged.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from google.type import date_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import ingestion
from services.records.main import MIGRATIONS
from services.records.preparing import Submission
from tests.services.records.conftest import bind_records_keys, make_record

CHILDREN = 600
BATCH = 200
DAYS = 5
ORG = "E08000003"
GIVEN = ["Amelia", "Oliver", "Isla", "Noah", "Ava", "Leo", "Mia", "Jack", "Ivy", "Theo"]
FAMILY = ["Okafor", "Nowak", "Patel", "Hughes", "Kaur", "Evans", "Khan", "Walsh", "Reid", "Lowe"]


def _record(i: int, system: str) -> pb.SourceRecord:
    born = dt.date(2012, 1, 1) + dt.timedelta(days=i)
    record = make_record(
        f"{system}-{i}",
        source_system=system,
        nhs_number="",
        name=child_pb2.PersonName(given_names=GIVEN[i % 10], family_name=f"{FAMILY[(i // 10) % 10]}{i}"),
        date_of_birth=date_pb2.Date(year=born.year, month=born.month, day=born.day),
    )
    record.address.postcode = "M1 1AE"
    return record


def _send(db: Database, records: Sequence[pb.SourceRecord], prefix: str, now: dt.datetime) -> None:
    for start in range(0, len(records), BATCH):
        chunk = [Submission(f"{prefix}-{start + j}", r) for j, r in enumerate(records[start : start + BATCH])]
        db.run_sync(
            lambda c, chunk=chunk: ingestion.submit_many(c, organisation=ORG, submissions=chunk, now=now)
        )


def main() -> None:
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'records.db'}"
    migrate.upgrade("records", MIGRATIONS, url)
    db = Database(url)
    bind_records_keys(db)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    records = [_record(i, system) for system in ("social-care", "education") for i in range(CHILDREN)]
    _send(db, records, "first", now)
    per_record = []
    for day in range(1, DAYS + 1):
        later = now + dt.timedelta(days=day)
        for record in records:
            record.as_of.FromDatetime(later)
        started = time.perf_counter()
        _send(db, records, f"day{day}", later)
        per_record.append((time.perf_counter() - started) / len(records) * 1e3)
    days = ", ".join(f"{ms:.3f}" for ms in per_record)
    print(f"ms a record, {DAYS} days: {days}; median {statistics.median(per_record):.3f}")
    db.dispose()


if __name__ == "__main__":
    main()
