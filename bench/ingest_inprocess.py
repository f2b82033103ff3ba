"""Ingestion in-process, without gRPC: CPU a record, and how the candidates were read.

    .venv/bin/python bench/ingest_inprocess.py TEMPLATE CHILDREN [THREADS]

Streams the same records as `ingest_stream.py --preload CHILDREN --template TEMPLATE` (the
template must exist: that command loads it) into a fresh file copy of the template, through
`services.records.admin.ingest` in batches of 200 of one organisation, from THREADS threads
(default 1, each a share of the organisations). Prints records/s, the process's CPU a record
(preparation included), how often the check under the locks found a concurrent change, and the
two-stage candidate counts (`staged_candidates.StagedCandidates.stats`), then drops the copy."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_stream as stream_bench

from contactpoint.platform.logging import configure_logging
from services.records import admin
from services.records.matching import Matcher
from services.records.preparing import Submission
from services.records.repository import candidates as candidate_repo
from services.records.staged_candidates import StagedCandidates

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 200


def main(argv: list[str]) -> int:
    template, children = argv[0], int(argv[1])
    threads = int(argv[2]) if len(argv) > 2 else 1
    configure_logging(level="warning", fmt="console")
    _, items = stream_bench.feed(children, 10_000, 1, template=template, postgres_url=ADMIN_URL)
    with stream_bench.template_copy(template, "cp_bench_inproc", ADMIN_URL) as db:
        changed: Counter[bool] = Counter()
        stages: Counter[str] = Counter()
        hits_changed, init = candidate_repo.hits_changed, StagedCandidates.__init__

        def counted_check(*args: Any, **kwargs: Any) -> bool:
            answer = hits_changed(*args, **kwargs)
            changed[answer] += 1
            return answer

        def counted_init(self: StagedCandidates, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            stages.update(self.stats)
            stages["records"] += len(args[1])

        candidate_repo.hits_changed = counted_check  # type: ignore[assignment]
        StagedCandidates.__init__ = counted_init  # type: ignore[method-assign]
        by_org: dict[str, list[Submission]] = defaultdict(list)
        for n, item in enumerate(items):
            by_org[item.organisation].append(Submission(f"s-{n}", item.record))
        orgs = sorted(by_org)

        def work(share: list[str]) -> None:
            for org in share:
                subs = by_org[org]
                for start in range(0, len(subs), BATCH):
                    admin.ingest(
                        db, organisation=org, submissions=subs[start : start + BATCH], matcher=Matcher()
                    )

        started, cpu = time.perf_counter(), time.process_time()
        workers = [threading.Thread(target=work, args=(orgs[i::threads],)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        rate, per_record = len(items) / wall, 1e6 * cpu / len(items)
        print(f"records {len(items)}, {rate:.0f}/s, CPU {per_record:.0f} µs a record")
        print(f"checks that found a change: {changed[True]} of {sum(changed.values())}")
        print(f"candidates: {dict(stages)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
