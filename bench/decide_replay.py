"""Matching's decisions replayed: the CPU of `Matcher.decide` alone, on the candidates a real
stream met, and a check that code under test decides every one of them the same.

    .venv/bin/python bench/decide_replay.py capture TEMPLATE CHILDREN RECORDS FILE
    .venv/bin/python bench/decide_replay.py time FILE [--check]

`capture` streams the first RECORDS records of `ingest_stream.py`'s stream (the template must
exist: that command loads it) in-process into a file copy of TEMPLATE, as `ingest_inprocess.py`
does, and pickles every call of `Matcher.decide` (the new record's features, its key, its
candidates) with the decision it made, for a registry of CHILDREN. The file holds synthetic
children only; it stays in the temporary directory.

`time` decides each captured record again: the first half warms the process (the name caches
included), the second half is timed, in µs of CPU a decision. Its pairs of records are new to the
process, as a stream's are; so it is timed once a process, and a comparison runs it several
times. `--check` compares every decision with the
captured one (action, child, score, reasons, and the other children named) and fails on any
difference: a change meant to make matching cheaper must not change what it decides. To compare
two commits, capture once, then time from a `git worktree` of each with `PYTHONPATH` set to it,
alternating."""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_stream as stream_bench

from services.records.linkage import Decision
from services.records.matching import Matcher

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 200


def capture(template: str, children: int, records: int, out: Path) -> int:
    from contactpoint.platform.logging import configure_logging
    from services.records import admin
    from services.records.preparing import Submission

    configure_logging(level="warning", fmt="console")
    _, items = stream_bench.feed(children, 10_000, 1, template=template, postgres_url=ADMIN_URL)
    captured: list[tuple[Any, ...]] = []
    decide = Matcher.decide

    def recorded(self: Matcher, features: Any, *, key: Any, candidates: Any) -> Decision:
        decision = decide(self, features, key=key, candidates=candidates)
        captured.append((features, key, list(candidates), decision))
        return decision

    Matcher.decide = recorded  # type: ignore[method-assign]
    matcher = Matcher(children=children)
    by_org: dict[str, list[Submission]] = defaultdict(list)
    for n, item in enumerate(items[:records]):
        by_org[item.organisation].append(Submission(f"s-{n}", item.record))
    with stream_bench.template_copy(template, "cp_bench_capture", ADMIN_URL) as db:
        for organisation, submissions in sorted(by_org.items()):
            for start in range(0, len(submissions), BATCH):
                batch = submissions[start : start + BATCH]
                admin.ingest(db, organisation=organisation, submissions=batch, matcher=matcher)
    out.write_bytes(pickle.dumps((children, captured)))
    print(f"{len(captured)} decisions, {sum(len(c[2]) for c in captured)} candidates → {out}")
    return 0


def _same(a: Decision, b: Decision) -> bool:
    def shape(d: Decision) -> tuple[Any, ...]:
        child = d.candidate.contactpoint_id if d.candidate else None
        also = tuple((x.candidate.contactpoint_id, x.score, x.reasons) for x in d.also)
        return (d.action, child, d.score, tuple(d.reasons), also, d.nhs_same)

    return shape(a) == shape(b)


def replay(path: Path, *, check: bool) -> int:
    children, captured = pickle.loads(path.read_bytes())  # noqa: S301 - this script's own capture
    matcher = Matcher(children=children)
    half = len(captured) // 2
    first = [matcher.decide(f, key=k, candidates=c) for f, k, c, _ in captured[:half]]
    started = time.process_time()
    second = [matcher.decide(f, key=k, candidates=c) for f, k, c, _ in captured[half:]]
    timed = 1e6 * (time.process_time() - started) / (len(captured) - half)
    candidates = sum(len(c) for _, _, c, _ in captured) / len(captured)
    print(f"{len(captured)} decisions, {candidates:.1f} candidates each: {timed:.1f} µs a decision")
    if not check:
        return 0
    differ = sum(not _same(d, old[3]) for d, old in zip(first + second, captured, strict=True))
    print(f"decisions that differ from the captured ones: {differ}")
    return 1 if differ else 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("capture")
    c.add_argument("template")
    c.add_argument("children", type=int)
    c.add_argument("records", type=int)
    c.add_argument("file", type=Path)
    t = sub.add_parser("time")
    t.add_argument("file", type=Path)
    t.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    if args.command == "capture":
        return capture(args.template, args.children, args.records, args.file)
    return replay(args.file, check=args.check)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
