"""What sealing personal data at rest costs ingestion and reads, with and without, in one run.

    .venv/bin/python bench/sealing_cost.py [--children 2000] [--reads 1000] [--repeat 3]
        [--backend postgresql|sqlite|both] [--postgres-url URL] [--json]

Each repeat loads the same synthetic feed (`contactpoint.cli.synthetic`, several councils'
systems, matching on) through records' real ingestion path (`services.records.admin.ingest`,
batches of 200 of one organisation) into two fresh databases: one with the service's vault
(AES-256-GCM seals, keyed hashes), one with `ClearVault`, which stores the very same bytes
unsealed (its hashes stay keyed: a keyed BLAKE2b costs what the unkeyed one did). Then it reads
`--reads` children both ways records reads them: `GetChildRecord`'s fast path (`reading.get_child`,
one statement on the event loop) and `FindChildRecord` (`children.find_child`, exact criteria).
The modes alternate within a repeat, so drift of the machine falls on both; medians over the
repeats are reported with the sealed ÷ clear ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence

from gateway_getchild import Postgres, sqlalchemy_url  # bench/gateway_getchild.py, beside this file

from contactpoint.cli.synthetic import SyntheticRecord, synthetic_feed
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition, NotFound
from contactpoint.platform.logging import configure_logging
from contactpoint.platform.statements import Statements
from contactpoint.platform.vault import KeyRing, Vault
from services.records import admin, children, reading
from services.records.main import MIGRATIONS
from services.records.matching import Matcher
from services.records.model import FindCriteria
from services.records.preparing import Submission
from services.records.repository.sealing import bind

BATCH = 200


class ClearVault(Vault):
    """The reference: every value stored as it is given (what records did before sealing)."""

    def seal(self, plain: bytes, context: bytes, *, key_id: int | None = None) -> bytes:
        return plain

    def open(self, sealed: bytes, context: bytes) -> bytes:
        return bytes(sealed)


def _ingest(db: Database, items: Sequence[SyntheticRecord]) -> tuple[float, dict[str, str]]:
    """Seconds to ingest `items`; each person's ContactPoint ID."""
    matcher = Matcher()
    pending: dict[str, list[tuple[SyntheticRecord, Submission]]] = defaultdict(list)
    ids: dict[str, str] = {}
    seconds = 0.0

    def flush(organisation: str) -> None:
        nonlocal seconds
        batch = pending.pop(organisation)
        started = time.perf_counter()
        answers = admin.ingest(
            db, organisation=organisation, submissions=[s for _, s in batch], matcher=matcher
        )
        seconds += time.perf_counter() - started
        for (item, _), answer in zip(batch, answers, strict=True):
            if not isinstance(answer, Exception):
                ids.setdefault(str(item.person), answer.contactpoint_id)

    for n, item in enumerate(items):
        pending[item.organisation].append((item, Submission(f"seal-{n}", item.record)))
        if len(pending[item.organisation]) >= BATCH:
            flush(item.organisation)
    for organisation in list(pending):
        flush(organisation)
    return seconds, ids


def _reads(
    db: Database, vault: Vault, ids: Sequence[str], finds: Sequence[FindCriteria]
) -> tuple[float, float]:
    """Median µs of one GetChildRecord (fast path) and of one FindChildRecord."""
    store = Statements(db)

    async def gets() -> list[float]:
        out = []
        for cid in ids:
            started = time.perf_counter()
            with contextlib.suppress(NotFound):  # archived since the feed's day: costs the same
                await reading.get_child(store, vault, contactpoint_id=cid)
            out.append(time.perf_counter() - started)
        await store.close()
        return out

    get_times = asyncio.run(gets())
    find_times = []
    for criteria in finds:
        started = time.perf_counter()
        with contextlib.suppress(NotFound, FailedPrecondition):  # none or too many: the same work
            db.run_sync(lambda c, k=criteria: children.find_child(c, criteria=k), write=False)
        find_times.append(time.perf_counter() - started)
    return statistics.median(get_times) * 1e6, statistics.median(find_times) * 1e6


def _criteria(item: SyntheticRecord) -> FindCriteria:
    r = item.record
    d = r.date_of_birth
    return FindCriteria(r.name.family_name, r.name.given_names, (d.year, d.month, d.day))


def run(args: argparse.Namespace, backend: str) -> dict[str, object]:
    today = dt.datetime.now(dt.UTC).date()
    items = list(synthetic_feed(args.children, args.seed, today=today))
    rng = random.Random(args.seed)
    finds = [_criteria(i) for i in rng.sample(items, min(args.reads, len(items)))]
    rows: dict[str, list[dict[str, float]]] = {"sealed": [], "clear": []}
    pg = Postgres(args.postgres_url) if backend == "postgresql" else None
    try:
        with tempfile.TemporaryDirectory(prefix="cp-bench-seal-") as tmp:
            for repeat in range(args.repeat):
                order = ["sealed", "clear"] if repeat % 2 == 0 else ["clear", "sealed"]
                for mode in order:
                    url = (
                        sqlalchemy_url(pg.new(f"seal_{mode}"))
                        if pg
                        else f"sqlite:///{tmp}/{mode}-{repeat}.db"
                    )
                    migrate.upgrade("records", MIGRATIONS, url)
                    db = Database(url)
                    ring = KeyRing.new()
                    vault = Vault(ring) if mode == "sealed" else ClearVault(ring)
                    bind(db, vault)
                    try:
                        seconds, ids = _ingest(db, items)
                        sample = rng.sample(sorted(ids.values()), min(args.reads, len(ids)))
                        get_us, find_us = _reads(db, vault, sample, finds)
                    finally:
                        db.dispose()
                    rows[mode].append(
                        {
                            "ingest_records_per_s": len(items) / seconds,
                            "get_child_us": get_us,
                            "find_child_us": find_us,
                        }
                    )
                    print(f"  {backend} {mode} #{repeat}: {rows[mode][-1]}", file=sys.stderr, flush=True)
    finally:
        if pg:
            pg.drop_all()
    out: dict[str, object] = {"records": len(items), "repeats": rows}
    for measure in ("ingest_records_per_s", "get_child_us", "find_child_us"):
        sealed = statistics.median(r[measure] for r in rows["sealed"])
        clear = statistics.median(r[measure] for r in rows["clear"])
        out[measure] = {
            "sealed": round(sealed, 1),
            "clear": round(clear, 1),
            "ratio": round(sealed / clear, 3),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--children", type=int, default=2000)
    p.add_argument("--reads", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    p.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    configure_logging(level="warning", fmt="console")
    backends = ["postgresql", "sqlite"] if a.backend == "both" else [a.backend]
    result: dict[str, object] = {"argv": sys.argv, "load": os.getloadavg()}
    for backend in backends:
        result[backend] = run(a, backend)
    print(json.dumps(result, indent=2) if a.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
