"""Our side of `linkage_quality.py`: every synthetic record through the real ingestion path, in
arrival order, into a fresh records database, and what came of it (labels, outcomes, review tasks,
each record's decision)."""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import linkage_refs as refs
import psycopg
from sqlalchemy import make_url, select

# Records of one organisation per ingest call, and records between counts of the registry's size
# for the match model's prior (`Matcher.children`): as `contactpoint seed` sends and counts them.
from contactpoint.cli.seeding import BATCH, RECOUNT
from contactpoint.cli.synthetic import SyntheticRecord
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.logging import configure_logging


@dataclass
class Ours:
    labels: list[str]
    seconds: float
    outcomes: Counter[str]
    review: list[tuple[int, str]]  # (record, candidate child) of each POSSIBLE_MATCH
    splits: list[tuple[str, str]]  # (other child, joined child) of each task for a split child
    decided: dict[tuple[str, str, str], tuple[str, float | None, list[str]]]  # outcome, score, reasons
    order: list[int]  # records in the order they were submitted
    children: int = 0  # active children at the end: the size the prior was last scaled to


def run_ours(
    items: Sequence[SyntheticRecord], url: str, *, seed: int, same_source: float | None = None
) -> Ours:
    """Every record through `admin.ingest` in arrival order, ≤ BATCH of one organisation at a time,
    with the default thresholds (and `same_source` as `Thresholds.same_source`)."""
    from contactpoint.platform.vault import KeyRing, Vault
    from services.records import admin
    from services.records.linkage import Thresholds
    from services.records.main import MIGRATIONS
    from services.records.matching import Matcher
    from services.records.model import Outcome
    from services.records.preparing import Submission
    from services.records.repository.sealing import bind
    from services.records.tables import review_tasks, source_records

    configure_logging(level="warning")  # one line per batch would drown the report
    migrate.upgrade("records", MIGRATIONS, url)
    db = Database(url)
    # A throwaway database: a fresh key ring, bound as the service binds its own.
    bind(db, Vault(KeyRing.new()))
    matcher = Matcher(thresholds=Thresholds(same_source=same_source))
    labels = [f"rejected-{i}" for i in range(len(items))]
    outcomes: Counter[str] = Counter()
    possible: dict[str, int] = {}
    pending: dict[str, list[int]] = defaultdict(list)
    order: list[int] = []
    seconds = 0.0
    shown = time.monotonic()

    counted = 0

    def flush(organisation: str) -> None:
        nonlocal seconds, shown, matcher, counted
        if len(order) - counted >= RECOUNT:
            matcher, counted = admin.current_matcher(db, matcher), len(order)
        batch = pending.pop(organisation, [])
        order.extend(batch)
        subs = [
            Submission(f"bench-{seed}-{items[i].record.source_system}-{i}", items[i].record) for i in batch
        ]
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
        if time.monotonic() - shown > 30:
            shown = time.monotonic()
            rate = len(order) / seconds if seconds else 0.0
            print(
                f"  ours: {len(order):,}/{len(items):,} records, {rate:,.0f}/s", file=sys.stderr, flush=True
            )

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
                select(
                    s.organisation,
                    s.source_system,
                    s.source_record_id,
                    s.match_outcome,
                    s.match_score,
                    s.match_reasons,
                )
            ).all(),
            write=False,
        )
        matcher = admin.current_matcher(db, matcher)
    finally:
        db.dispose()
    review = [(possible[new], candidate) for new, candidate in tasks if new in possible]
    splits = [(new, candidate) for new, candidate in tasks if new not in possible]
    decided = {(r[0], r[1], r[2]): (r[3], r[4], list(r[5] or [])) for r in rows}
    return Ours(labels, seconds, outcomes, review, splits, decided, order, matcher.children)


def with_reviews_linked(
    labels: Sequence[str], review: Sequence[tuple[int, str]], splits: Sequence[tuple[str, str]]
) -> list[int]:
    """The clustering if every review task were linked by a data manager: each POSSIBLE_MATCH
    joined to its candidate, and each split child's two children merged."""
    return _joined(labels, review, splits, lambda _i, _candidate: True, lambda _a, _b: True)


def with_reviews_decided(
    labels: Sequence[str],
    review: Sequence[tuple[int, str]],
    splits: Sequence[tuple[str, str]],
    persons: Sequence[int],
) -> list[int]:
    """The clustering once data managers have answered every review task from the truth, at the
    end of the feed: a POSSIBLE_MATCH joined to its candidate when its record is truly one of the
    candidate's child's, and a split child's two children merged when they hold one true child;
    every other task kept apart. What the registry holds once its review queue is worked, with
    every decision right; matching's own decisions are as they were made."""
    members: dict[str, set[int]] = defaultdict(set)
    for label, person in zip(labels, persons, strict=True):
        members[label].add(person)
    return _joined(
        labels,
        review,
        splits,
        lambda i, candidate: persons[i] in members[candidate],
        lambda a, b: bool(members[a] & members[b]),
    )


def _joined(
    labels: Sequence[str],
    review: Sequence[tuple[int, str]],
    splits: Sequence[tuple[str, str]],
    link_review: Callable[[int, str], bool],
    merge_split: Callable[[str, str], bool],
) -> list[int]:
    """The clustering with the review tasks `link_review` and `merge_split` answer "link" joined."""
    index: dict[str, int] = {}
    ids = [index.setdefault(label, len(index)) for label in labels]
    edges = [(ids[i], index[c]) for i, c in review if c in index and link_review(i, c)]
    edges += [(index[a], index[b]) for a, b in splits if a in index and b in index and merge_split(a, b)]
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
