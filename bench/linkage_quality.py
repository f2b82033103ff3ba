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
  child, a second row shows the clustering if every review were answered "link", and a third
  the clustering once data managers have answered each task from the truth at the end of the
  feed (linked when truly one child, else kept apart: what the registry holds once its review
  queue is worked, with the number of tasks that takes). A rejected
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
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from contactpoint.cli.synthetic import synthetic_feed

sys.path.insert(0, str(Path(__file__).resolve().parent))
import linkage_metrics as metrics
import linkage_refs as refs
from linkage_ours import Ours, fresh_postgres, run_ours, with_reviews_decided, with_reviews_linked


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
    decided = metrics.score(
        "ours, reviews decided by data managers",
        with_reviews_decided(ours.labels, ours.review, ours.splits, persons),
        items,
        ours.seconds,
    )
    tasks = len(ours.review) + len(ours.splits)
    decided.note = (
        f"each of the {tasks:,} review tasks ({1000 * tasks / len(items):.1f} a thousand records)"
        " answered from the truth at the end of the feed: linked when truly one child, else kept apart"
    )
    scores.append(decided)
    say(f"ours: {ours.seconds:,.1f} s, {scores[0].note}")

    explained, explained_name, explained_threshold = ours, "ours", None
    for threshold in args.same_source_threshold:
        also = ours_with(threshold)
        if args.explain_same_source:
            explained, explained_name = also, f"ours, same source ≥ {threshold:g}"
            explained_threshold = threshold
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
    report["explained"] = explained_name
    report["explain"] = metrics.explain(
        items,
        rows,
        explained.labels,
        explained.order,
        explained.decided,
        examples=args.examples,
        children=explained.children,
        same_source=explained_threshold,
    )
    return report


def as_text(report: dict[str, Any]) -> str:
    """The markdown report."""
    scores: list[metrics.Scores] = report["_scores"]
    upper_bounds = ("ours, every review linked", "ours, reviews decided by data managers")
    main = [s for s in scores if s.method not in upper_bounds]
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
    lines.append(f"\nErrors explained below: {report['explained']}.")
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
    p.add_argument(
        "--explain-same-source",
        action="store_true",
        help="explain the errors of the last --same-source-threshold run instead of the default's",
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
