"""Record-linkage quality: our online matcher against two offline batch references, on the same
synthetic records with known truth, in one run.

    .venv/bin/python bench/linkage_quality.py [--children 20000] [--seed 1] [--database-url URL]
        [--skip-splink] [--skip-recordlinkage] [--splink-threshold 0.95] [--examples N] [--json out.json]

The records are `contactpoint.cli.synthetic.synthetic_feed` (households with siblings and twins,
each child held by one to four councils' systems, each copy corrupted on its own; `person` is the
truth). Three methods cluster them:

- **ours**: every record through the real ingestion path (`services.records.admin.ingest`, the
  default `Matcher`), in arrival order, in batches of at most 200 records of one organisation as
  `contactpoint seed` sends them, into a fresh records database (SQLite in a temporary folder, or
  the PostgreSQL database named by `--database-url`, created here and dropped afterwards). Records
  given the same ContactPoint ID are linked. A POSSIBLE_MATCH is not a link (it creates a child
  and a review task): such records are counted apart, with how many were truly the candidate's
  child, and a second row shows the clustering if every review were answered "link". A rejected
  record stays alone.
- **splink** and **recordlinkage**: batch Fellegi–Sunter deduplications of the whole table at
  once with EM-estimated parameters (see `linkage_refs.py` for their configuration).

Scores are pairwise over all pairs of records: a truth pair is two records of one person, a
predicted pair two records in one cluster; TP/FP/FN, precision, recall and F1 come from counting
cluster × person cells (no pair is materialised). Per corruption kind, the recall of the truth
pairs where either record carries that kind, and the false pairs where either does. FP pairs
within one household (twins, siblings) are counted apart. Seconds are each method's own wall
time (ours: the ingest calls; the references: training, prediction and clustering) for
information: ours decides each record once, as it arrives; the references see everything at once.
`--examples N` prints our missed and false pairs grouped by corruption kinds, with N examples each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url, select

from contactpoint.cli.synthetic import KINDS, SyntheticRecord, synthetic_feed
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import linkage_refs as refs  # noqa: E402

BATCH = 200  # records of one organisation per ingest call, as `contactpoint seed` sends them


@dataclass
class Ours:
    labels: list[str]
    seconds: float
    outcomes: Counter[str]
    review: list[tuple[int, str]]  # (record, candidate child) of each POSSIBLE_MATCH
    decided: dict[tuple[str, str, str], tuple[str, float | None, list[str]]]  # outcome, score, reasons


def run_ours(items: Sequence[SyntheticRecord], url: str, *, seed: int) -> Ours:
    """Every record through `admin.ingest` in arrival order, ≤ BATCH of one organisation at a time."""
    from services.records import admin
    from services.records.ingestion import Submission
    from services.records.main import MIGRATIONS
    from services.records.matching import Matcher
    from services.records.model import Outcome
    from services.records.tables import review_tasks, source_records

    migrate.upgrade("records", MIGRATIONS, url)
    db = Database(url)
    matcher = Matcher()
    labels = [f"rejected-{i}" for i in range(len(items))]
    outcomes: Counter[str] = Counter()
    possible: dict[str, int] = {}
    pending: dict[str, list[int]] = defaultdict(list)
    seconds = 0.0

    def flush(organisation: str) -> None:
        nonlocal seconds
        batch = pending.pop(organisation, [])
        subs = [Submission(f"bench-{seed}-{items[i].record.source_system}-{i}", items[i].record) for i in batch]
        started = time.perf_counter()
        answers = admin.ingest(db, organisation=organisation, submissions=subs, matcher=matcher)
        seconds += time.perf_counter() - started
        for i, answer in zip(batch, answers, strict=True):
            if isinstance(answer, ContactPointError):
                outcomes[f"rejected ({answer.code.name})"] += 1
                continue
            labels[i] = answer.contactpoint_id
            outcomes[answer.outcome.value] += 1
            if answer.outcome == Outcome.POSSIBLE_MATCH:
                possible[answer.contactpoint_id] = i

    try:
        for i, item in enumerate(items):
            pending[item.organisation].append(i)
            if len(pending[item.organisation]) >= BATCH:
                flush(item.organisation)
        for organisation in list(pending):
            flush(organisation)
        tasks = db.run_sync(
            lambda c: c.execute(select(review_tasks.c.new_child, review_tasks.c.candidate)).all(), write=False
        )
        s = source_records.c
        rows = db.run_sync(
            lambda c: c.execute(
                select(s.organisation, s.source_system, s.source_record_id, s.match_outcome, s.match_score,
                       s.match_reasons)  # fmt: skip
            ).all(),
            write=False,
        )
    finally:
        db.dispose()
    review = [(possible[new], candidate) for new, candidate in tasks if new in possible]
    decided = {(r[0], r[1], r[2]): (r[3], r[4], list(r[5] or [])) for r in rows}
    return Ours(labels, seconds, outcomes, review, decided)


def with_reviews_linked(labels: Sequence[str], review: Sequence[tuple[int, str]]) -> list[int]:
    """The clustering if every possible match were linked to its candidate by a data manager."""
    index: dict[str, int] = {}
    ids = [index.setdefault(label, len(index)) for label in labels]
    edges = [(ids[i], index[candidate]) for i, candidate in review if candidate in index]
    roots = refs.components(len(index), edges)
    return [roots[x] for x in ids]


def fresh_postgres(url: str) -> Callable[[], None]:
    """Create the database `url` names (it must not exist yet); the returned call drops it."""
    u = make_url(url)
    name = u.database
    if not name or name == "postgres":
        raise SystemExit("--database-url must name a database to create and drop (not 'postgres')")
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise SystemExit(f"database {name!r} exists already: name a new one (it is dropped afterwards)")
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return drop
