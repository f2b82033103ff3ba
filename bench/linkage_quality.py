"""Record-linkage quality: our online matcher against two offline batch references, on the same
synthetic records with known truth, in one run.

    .venv/bin/python bench/linkage_quality.py [--children 20000] [--seed 1] [--database-url URL]
        [--skip-splink] [--skip-recordlinkage] [--splink-threshold P ...]
        [--same-source-threshold W ...] [--examples N] [--json out.json]

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
  record stays alone. `--same-source-threshold W` adds a row for each W: ours again, from a
  fresh database, with a source system's second record for a child linked at weight W or more.
- **splink** and **recordlinkage**: batch Fellegi-Sunter deduplications of the whole table at
  once with EM-estimated parameters (see `linkage_refs.py` for their configuration).

Scores are pairwise over all pairs of records: a truth pair is two records of one person, a
predicted pair two records in one cluster; TP/FP/FN, precision, recall and F1 come from counting
(cluster, person) cells (no pair is materialised). Also: FP pairs within one household (twins,
siblings); recall across systems (the truth pairs of two different council systems: a system's
own duplicates, which our matcher sends for review by design, left out); per corruption kind, the
recall of the truth pairs where either record carries that kind, and the false pairs where either
does. Seconds are each method's own wall time (ours: the ingest calls; the references: training,
prediction and clustering), for information: ours decides each record once, as it arrives, and
stores it; the references see the whole table at once. `--splink-threshold` takes several match
probabilities (one row each, from one training and prediction).

Last, our errors as events (`linkage_metrics.explain`): each record that missed its child, with
the cause (the decision against the true child alone, recomputed), and each wrong link, grouped,
with the corruption kinds involved and `--examples N` examples of each cause.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url, select

from contactpoint.cli.synthetic import SyntheticRecord, synthetic_feed
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.logging import configure_logging

sys.path.insert(0, str(Path(__file__).resolve().parent))
import linkage_metrics as metrics
import linkage_refs as refs

BATCH = 200  # records of one organisation per ingest call, as `contactpoint seed` sends them


@dataclass
class Ours:
    labels: list[str]
    seconds: float
    outcomes: Counter[str]
    review: list[tuple[int, str]]  # (record, candidate child) of each POSSIBLE_MATCH
    splits: list[tuple[str, str]]  # (other child, joined child) of each task for a split child
    decided: dict[tuple[str, str, str], tuple[str, float | None, list[str]]]  # outcome, score, reasons
    order: list[int]  # records in the order they were submitted


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

    def flush(organisation: str) -> None:
        nonlocal seconds, shown
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
    finally:
        db.dispose()
    review = [(possible[new], candidate) for new, candidate in tasks if new in possible]
    splits = [(new, candidate) for new, candidate in tasks if new not in possible]
    decided = {(r[0], r[1], r[2]): (r[3], r[4], list(r[5] or [])) for r in rows}
    return Ours(labels, seconds, outcomes, review, splits, decided, order)


def with_reviews_linked(
    labels: Sequence[str], review: Sequence[tuple[int, str]], splits: Sequence[tuple[str, str]]
) -> list[int]:
    """The clustering if every review task were linked by a data manager: each POSSIBLE_MATCH
    joined to its candidate, and each split child's two children merged."""
    index: dict[str, int] = {}
    ids = [index.setdefault(label, len(index)) for label in labels]
    edges = [(ids[i], index[candidate]) for i, candidate in review if candidate in index]
    edges += [(index[a], index[b]) for a, b in splits if a in index and b in index]
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


def versions() -> dict[str, str]:
    """The commit measured (and whether records' code differed from it), and the tools' versions."""
    here = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(here)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "services/records"], capture_output=True, text=True, check=False
    )
    out = {"commit": head.stdout.strip() + ("+modified services/records" if dirty.stdout.strip() else "")}
    out["python"] = sys.version.split()[0]
    for name in (
        "splink",
        "duckdb",
        "recordlinkage",
        "pandas",
        "numpy",
        "scikit-learn",
        "scipy",
        "jellyfish",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the feed, run each method on it, score them; print progress to stderr."""

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    wall = time.perf_counter()
    today = datetime.now(UTC).date()  # the feed is valid for validation on the day it is made
    items = list(synthetic_feed(args.children, args.seed, today=today))
    rows = refs.flatten(it.record for it in items)
    sources = {(it.organisation, it.record.source_system) for it in items}
    say(f"{args.children:,} children, {len(items):,} records from {len(sources)} council systems")

    def ours_with(same_source: float | None) -> Ours:
        with tempfile.TemporaryDirectory(prefix="cp-linkage-") as tmp:
            url = args.database_url or f"sqlite:///{tmp}/records.db"
            drop = fresh_postgres(url) if args.database_url else None
            try:
                say(f"ours: ingesting into {make_url(url).get_backend_name()}")
                return run_ours(items, url, seed=args.seed, same_source=same_source)
            finally:
                if drop:
                    drop()

    ours = ours_with(None)
    scores = [metrics.score("ours", ours.labels, items, ours.seconds)]
    persons = [it.person for it in items]
    members: dict[str, set[int]] = {}
    for label, person in zip(ours.labels, persons, strict=True):
        members.setdefault(label, set()).add(person)
    scores[0].possible = len(ours.review)
    scores[0].possible_true = sum(persons[i] in members.get(c, set()) for i, c in ours.review)
    split_true = sum(bool(members.get(a, set()) & members.get(b, set())) for a, b in ours.splits)
    scores[0].note = ", ".join(f"{k} {n:,}" for k, n in sorted(ours.outcomes.items()))
    scores[0].note += f"; tasks for a split child {len(ours.splits):,} ({split_true:,} truly one child)"
    reviewed = metrics.score(
        "ours, every review linked",
        with_reviews_linked(ours.labels, ours.review, ours.splits),
        items,
        ours.seconds,
    )
    reviewed.note = (
        "upper bound: each POSSIBLE_MATCH joined to its candidate, and each split child's two"
        " children merged, by a data manager"
    )
    scores.append(reviewed)
    say(f"ours: {ours.seconds:,.1f} s, {scores[0].note}")

    for threshold in args.same_source_threshold:
        also = ours_with(threshold)
        scores.append(metrics.score(f"ours, same source ≥ {threshold:g}", also.labels, items, also.seconds))
        scores[-1].note = ", ".join(f"{k} {n:,}" for k, n in sorted(also.outcomes.items()))
        say(f"ours, same source ≥ {threshold:g}: {also.seconds:,.1f} s, {scores[-1].note}")

    if not args.skip_splink:
        say("splink: training, predicting, clustering")
        for threshold, s in zip(
            args.splink_threshold,
            refs.run_splink(rows, thresholds=args.splink_threshold, seed=args.seed),
            strict=True,
        ):
            scores.append(metrics.score(f"splink (p ≥ {threshold})", s.labels, items, s.seconds))
            scores[-1].note = s.note
        say(f"splink: {scores[-1].seconds:,.1f} s")
    if not args.skip_recordlinkage:
        say("recordlinkage: indexing, comparing, ECM")
        r = refs.run_recordlinkage(rows)
        scores.append(metrics.score("recordlinkage (ECM)", r.labels, items, r.seconds))
        scores[-1].note = r.note
        say(f"recordlinkage: {r.seconds:,.1f} s")

    report: dict[str, Any] = {
        "children": args.children,
        "seed": args.seed,
        "records": len(items),
        "council_systems": len(sources),
        "database": make_url(args.database_url).get_backend_name() if args.database_url else "sqlite",
        "truth_pairs": scores[0].tp + scores[0].fn,
        "wall_seconds": time.perf_counter() - wall,
        "versions": versions(),
        "methods": [s.as_json() for s in scores],
        "_scores": scores,
    }
    report["explain"] = metrics.explain(
        items, rows, ours.labels, ours.order, ours.decided, examples=args.examples
    )
    return report


def as_text(report: dict[str, Any]) -> str:
    """The markdown report."""
    scores: list[metrics.Scores] = report["_scores"]
    main = [s for s in scores if s.method != "ours, every review linked"]
    lines = [
        f"## Record linkage quality: {report['children']:,} children, seed {report['seed']}, "
        f"{report['records']:,} records from {report['council_systems']} council systems "
        f"({report['truth_pairs']:,} truth pairs), ours on {report['database']}\n",
        metrics.results_table(scores),
        "",
        *(f"- {s.method}: {s.note}" for s in scores if s.note),
        "",
        "### Recall by corruption kind (truth pairs where either record has it) and false pairs\n",
        metrics.kind_table(main),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        f"Wall time: {report['wall_seconds']:,.0f} s",
    ]
    lines.append(report["explain"])
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--children", "-n", type=int, default=20_000, help="true children in the feed")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic feed (and splink's sampling)")
    p.add_argument(
        "--database-url",
        help="PostgreSQL URL of a database to create for ours and drop afterwards, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/cp_linkage (default: SQLite in a temporary folder)",
    )
    p.add_argument("--skip-splink", action="store_true", help="do not run splink")
    p.add_argument("--skip-recordlinkage", action="store_true", help="do not run recordlinkage")
    p.add_argument(
        "--splink-threshold",
        type=float,
        nargs="+",
        default=[0.95],
        help="match probabilities to cluster splink's predictions at (one row each; 0.95 as its tutorials)",
    )
    p.add_argument(
        "--same-source-threshold",
        type=float,
        nargs="*",
        default=[],
        help="also run ours with CONTACTPOINT_RECORDS_MATCH_SAME_SOURCE_LINK_THRESHOLD at each of these "
        "weights (one row each; a source system's second record for a child linked at or above it)",
    )
    p.add_argument("--examples", type=int, default=0, help="examples of each cause of our errors")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the temporary database
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = benchmark(args)
    print(as_text(report))
    if args.json:
        data = {k: v for k, v in report.items() if not k.startswith("_")}
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
