"""A feed sent again: what records the registry already holds cost when they come back.

    .venv/bin/python bench/ingest_refeed.py TEMPLATE CHILDREN [RECORDS]

Council systems send their records again: unchanged but newer (`as_of` moved on, a monthly full
extract), or changed (a move, a new school). On a fresh file copy of TEMPLATE (loaded by
`ingest_stream.py --preload CHILDREN --template TEMPLATE`), in-process through
`services.records.admin.ingest` in batches of 200 of one organisation, one thread:

1. the first RECORDS records of that command's stream (default 4,000) are ingested (new);
2. the same records again, each a day newer (`as_of`), nothing else changed;
3. the same records again, a day newer still, each with its first address line changed (a
   move within the street: the record is stored again, its keys filed again and it is matched
   again against its child).

Prints records/s and the process's CPU a record for each pass, the outcomes and the review tasks
held after it; then drops the copy. Nothing personal is printed."""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_stream as stream_bench

from contactpoint.platform.db import Database
from contactpoint.platform.logging import configure_logging
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin
from services.records.matching import Matcher
from services.records.preparing import Submission
from services.records.tables import review_tasks

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 200
DAY = 86_400


def _pass(db: Database, by_org: dict[str, list[Submission]], label: str) -> None:
    outcomes: Counter[str] = Counter()
    count = sum(len(subs) for subs in by_org.values())
    started, cpu = time.perf_counter(), time.process_time()
    for org, subs in sorted(by_org.items()):
        for start in range(0, len(subs), BATCH):
            answers = admin.ingest(
                db, organisation=org, submissions=subs[start : start + BATCH], matcher=Matcher()
            )
            outcomes.update(getattr(getattr(a, "outcome", None), "name", type(a).__name__) for a in answers)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    with db.transaction(write=False) as conn:
        tasks = conn.execute(select(func.count()).select_from(review_tasks)).scalar_one()
    outcomes["(review tasks in all)"] = tasks
    per_record = 1e6 * cpu / count
    print(f"{label}: {count} records, {count / wall:.0f}/s, CPU {per_record:.0f} µs each,", dict(outcomes))


def _again(record: pb.SourceRecord, days: int, *, moved: bool) -> pb.SourceRecord:
    again = pb.SourceRecord()
    again.CopyFrom(record)
    again.as_of.seconds = record.as_of.seconds + days * DAY
    if moved and again.address.lines:
        again.address.lines[0] = f"Flat {days} {again.address.lines[0]}"
    return again


def main(argv: list[str]) -> int:
    template, children = argv[0], int(argv[1])
    wanted = int(argv[2]) if len(argv) > 2 else 4_000
    configure_logging(level="warning", fmt="console")
    _, items = stream_bench.feed(children, 10_000, 1, template=template, postgres_url=ADMIN_URL)
    items = items[:wanted]
    with stream_bench.template_copy(template, "cp_bench_refeed", ADMIN_URL) as db:
        for label, days, moved in (("new", 0, False), ("a day newer", 1, False), ("moved", 2, True)):
            by_org: dict[str, list[Submission]] = defaultdict(list)
            for n, item in enumerate(items):
                record = _again(item.record, days, moved=moved) if days else item.record
                by_org[item.organisation].append(Submission(f"{label}-{n}", record))
            _pass(db, by_org, label)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
