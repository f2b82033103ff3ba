"""`contactpoint seed`: synthetic children through the real ingestion path (records' batched
`submit_many`, the function behind StreamSourceRecords), straight on the records database, with
progress on a terminal, a report of what really happened, and optionally the generated truth."""

from __future__ import annotations

import csv
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import typer
from pydantic import ValidationError

from contactpoint.cli.options import day_option
from contactpoint.cli.synthetic import SyntheticRecord, synthetic_feed
from contactpoint.platform import migrate
from contactpoint.platform.errors import ContactPointError, FailedPrecondition
from contactpoint.platform.logging import configure_logging
from contactpoint.platform.settings import ConfigurationError, load_settings

BATCH = 200
# How often (records) the registry's size is counted again, so that the match model's prior is
# scaled for the registry the seed is growing (as the records service counts on every refresh).
RECOUNT = 5_000


@dataclass(frozen=True)
class SeedReport:
    """What seeding did: outcome counts (and rejections) and the children the registry now holds."""

    outcomes: Counter[str]
    children: int
    records: int
    seconds: float
    # Of the rejections, records whose ids the registry holds for other children (an earlier seed
    # with this --seed, made as of another day).
    reused: int = 0


class Progress:
    """Count, rate and ETA on one line of a terminal (nothing when not a terminal)."""

    def __init__(self, total_children: int, stream: TextIO) -> None:
        self._total = total_children
        self._stream = stream
        self._on = stream.isatty()
        self._started = time.monotonic()
        self._shown = 0.0

    def update(self, records: int, children: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self._on or (not final and now - self._shown < 0.5):
            return
        self._shown = now
        elapsed = max(now - self._started, 1e-9)
        rate = records / elapsed
        left = (self._total - children) * (records / max(children, 1)) / rate if rate else 0.0
        line = f"\rseeded {children:,}/{self._total:,} children, {records:,} records, {rate:,.0f} records/s"
        line += ", done" if final else f", ETA {int(left // 60)}m{int(left % 60):02d}s"
        self._stream.write(line.ljust(90) + ("\n" if final else ""))
        self._stream.flush()


def seed(
    env: Mapping[str, str],
    *,
    children: int,
    seed_value: int,
    truth: Path | None = None,
    today: str | None = None,
) -> SeedReport:
    """Feed `children` synthetic children, as several councils' systems would send them, made as
    of `today` (YYYY-MM-DD; default today): the same seed and day make the same records."""
    from services.records import admin
    from services.records.ingestion import SOURCE_RECORD_REUSED
    from services.records.main import MIGRATIONS
    from services.records.model import AgeLimits, Submitted
    from services.records.preparing import Submission
    from services.records.repository.lifecycle import count_children
    from services.records.settings import RecordsSettings
    from services.records.values import today_in_england

    # Made as of a fixed day, not the clock's: a run either side of midnight made other records
    # from the same seed (found when CI's second seed ran after midnight). A day ahead makes
    # records from the future, which the registry refuses.
    day = day_option("--today", today, today_in_england)
    if day > today_in_england():
        typer.echo(f"contactpoint seed: --today must not be after today (got {today!r})", err=True)
        raise typer.Exit(2)
    try:
        # Opened before anything is stored (found by probing: a path that could not be written
        # failed with a traceback after records were already fed).
        truth_file = truth.open("w", newline="", encoding="utf-8") if truth else None
        if truth_file is not None:
            truth_file.write("organisation,source_system,source_record_id,person\r\n")
            truth_file.flush()  # a file that opens but takes nothing (/dev/full) fails here
    except OSError as exc:
        typer.echo(f"contactpoint seed: cannot write --truth {truth}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    try:
        settings = load_settings(RecordsSettings, env)
    except ValidationError as exc:
        missing = ", ".join(
            "CONTACTPOINT_RECORDS_" + "_".join(map(str, e["loc"])).upper() for e in exc.errors()
        )
        typer.echo(f"contactpoint seed: bad records configuration: {missing}", err=True)
        raise typer.Exit(2) from None
    configure_logging(level="warning", fmt=settings.log_format)  # one line per batch would drown the report
    migrate.upgrade("records", MIGRATIONS, settings.database_url)
    try:
        db = admin.open_database(settings)
    except ConfigurationError as exc:
        typer.echo(f"contactpoint seed: {exc}", err=True)
        raise typer.Exit(2) from None
    limits = AgeLimits(settings.max_age_years, settings.extended_max_age_years)
    matcher = admin.current_matcher(db, admin.configured_matcher(settings))
    run = uuid.uuid4().hex[:12]
    outcomes: Counter[str] = Counter()
    pending: dict[str, list[SyntheticRecord]] = defaultdict(list)
    progress = Progress(children, sys.stderr)
    started = time.monotonic()
    records = seen = counted = reused = 0
    writer = csv.writer(truth_file) if truth_file else None

    def flush(organisation: str) -> None:
        nonlocal matcher, counted, reused
        batch = pending.pop(organisation, [])
        if not batch:
            return
        if records - counted >= RECOUNT:
            matcher, counted = admin.current_matcher(db, matcher), records
        submissions = [
            # One request id per record and run: a record sent again by a later run with the same
            # seed is answered for what it is now (UNCHANGED), not with the first run's answer
            # (found by probing: a second run reported every record created again).
            Submission(f"seed-{run}-{s.record.source_system}-{s.record.source_record_id}", s.record)
            for s in batch
        ]
        for result in admin.ingest(
            db, organisation=organisation, submissions=submissions, matcher=matcher, limits=limits
        ):
            if isinstance(result, ContactPointError):
                outcomes[f"rejected ({result.code.name})"] += 1
                reused += isinstance(result, FailedPrecondition) and result.reason == SOURCE_RECORD_REUSED
            else:
                assert isinstance(result, Submitted)
                outcomes[result.outcome.value] += 1

    try:
        for item in synthetic_feed(children, seed_value, today=day):
            records += 1
            seen = max(seen, item.person + 1)
            if writer:
                writer.writerow(
                    [item.organisation, item.record.source_system, item.record.source_record_id, item.person]
                )
            pending[item.organisation].append(item)
            if len(pending[item.organisation]) >= BATCH:
                flush(item.organisation)
            progress.update(records, min(seen, children))
        for organisation in list(pending):
            flush(organisation)
        progress.update(records, children, final=True)
        held = db.run_sync(count_children, write=False)
    except OSError as exc:  # the truth file's disk filled up mid-run: what was fed stays fed
        typer.echo(
            f"contactpoint seed: stopped after {records} records: cannot write --truth {truth}: "
            f"{exc.strerror or exc}",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        if truth_file:
            truth_file.close()
        db.dispose()
    return SeedReport(outcomes, held.get("active", 0), records, time.monotonic() - started, reused)
