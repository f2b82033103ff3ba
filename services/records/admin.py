"""Records' own administration, for the `contactpoint` command and the service's schedule:
the lifecycle rules, re-estimating the match model, and bulk ingestion for seeding. The CLI calls
these; it never reaches into the records service's internals."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from contactpoint.platform.db import Database, TransactionConflict, database_errors, retrying_sync
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.write_turns import WriteTurns, turn_when_asked
from services.records import data_keys, ingestion, key_scheme, lifecycle, old_archives, preparing, task_upkeep
from services.records.linkage import Model, Thresholds
from services.records.matching import Matcher
from services.records.model import DEFAULT_LIMITS, AgeLimits, ConcurrentChange, Submitted
from services.records.repository import children as children_repo
from services.records.repository import lifecycle as lifecycle_repo
from services.records.repository.sealing import vault_for
from services.records.settings import RecordsSettings
from services.records.training import estimate_from_registry

T = TypeVar("T")

ATTEMPTS = 3


def open_database(settings: RecordsSettings) -> Database:
    """Records' database for a command, its data keys checked and bound (as the service does on
    start-up; rows still in the clear are sealed first, and records filed under an older key
    scheme are filed again)."""
    db = Database(settings.database_url)
    try:
        vault = data_keys.open_vault(db, settings)
        data_keys.seal_clear_rows(db, vault)
        check_old_archives(db, AgeLimits(settings.max_age_years, settings.extended_max_age_years))
        key_scheme.rebuild_blocking_keys(db, vault)
    except BaseException:
        db.dispose()
        raise
    return db


def data_key_status(db: Database) -> data_keys.KeyStatus:
    """Which data keys the ring holds and how many rows each seals (`records data-keys`)."""
    return data_keys.key_status(db, vault_for(db).ring)


def rotate_data_key(settings: RecordsSettings, *, standby: bool = False) -> int:
    """A new seal key in the key file (`records rotate-data-key`); its id."""
    return data_keys.rotate(settings, standby=standby)


def retire_data_key(db: Database, settings: RecordsSettings, key_id: int) -> None:
    """Drop a seal key that no row is sealed with (`records retire-data-key`)."""
    data_keys.retire(db, settings, key_id)


def configured_matcher(settings: RecordsSettings) -> Matcher:
    """The default model with the configured thresholds (a stored model replaces it on refresh)."""
    return Matcher(
        thresholds=Thresholds(
            link=settings.match_link_threshold,
            review=settings.match_review_threshold,
            auto_link=settings.auto_link,
            same_source=settings.match_same_source_link_threshold,
            nhs_date_slips=settings.match_nhs_date_slips,
        )
    )


def run_lifecycle(
    db: Database, *, today: dt.date, limits: AgeLimits = DEFAULT_LIMITS, dry_run: bool = False
) -> lifecycle.LifecycleReport:
    """Archive and purge everything due on `today`, in small transactions. With `dry_run`, the
    same work is done in one transaction that is then rolled back: the counts of what would be
    archived and purged, and nothing changed."""
    if not dry_run:
        report = _lifecycle(functools.partial(_retried, db), today=today, limits=limits)
        if report.purged:
            # The purged text (data managers' reasons, the records' sealed bytes) must not stay
            # in the write-ahead log until it is reused (found by probing).
            db.forget_freed()
        return report
    with database_errors(), db.writer.connect() as conn:
        work = conn.begin()

        def in_one_transaction(fn: Callable[[Connection], T]) -> T:
            return fn(conn)

        try:
            return _lifecycle(in_one_transaction, today=today, limits=limits)
        finally:
            work.rollback()


def check_old_archives(db: Database, limits: AgeLimits = DEFAULT_LIMITS) -> int:
    """Give children archived before the day's keyed check was kept the check of their day, where
    their records still give it (`old_archives`): how many got one. Run on start-up, before any
    record is taken; each such child is looked at only until it has one."""
    checked, after = 0, ""
    while True:
        n, following = _retried(db, functools.partial(old_archives.check_batch, limits=limits, after=after))
        checked += n
        if following is None:
            return checked
        after = following


def _retried(db: Database, fn: Callable[[Connection], T]) -> T:
    # A batch that lost a race with another replica's (a deadlock: found by probing two
    # `records lifecycle` at once, one ended in a traceback) is run again.
    return retrying_sync(lambda: db.run_sync(fn), busy="the records database is busy; run it again")


class _Runs(Protocol):
    """How `_lifecycle` runs each batch: a transaction of its own, or the dry run's one."""

    def __call__(self, fn: Callable[[Connection], T], /) -> T: ...


def _lifecycle(run: _Runs, *, today: dt.date, limits: AgeLimits) -> lifecycle.LifecycleReport:
    archived = purged = 0
    after: tuple[dt.date, str] | None = None
    while True:
        n, after = run(functools.partial(lifecycle.archive_batch, today=today, limits=limits, after=after))
        archived += n
        if after is None:
            break
    purging: tuple[dt.datetime, str] | None = None
    while True:
        n, purging = run(functools.partial(lifecycle.purge_batch, today=today, limits=limits, after=purging))
        purged += n
        if purging is None:
            break
    run(functools.partial(task_upkeep.close_overtaken, now=lifecycle.midnight(today)))
    return lifecycle.LifecycleReport(archived=archived, purged=purged)


def current_matcher(db: Database, matcher: Matcher) -> Matcher:
    """`matcher` with the registry's size counted again, and the newest stored match model if a
    newer one than its own was stored."""
    children = db.run_sync(children_repo.count_active, write=False)
    if children != matcher.children:
        matcher = replace(matcher, children=children)
    latest = db.run_sync(lifecycle_repo.latest_model_id, write=False)
    if latest == matcher.model_id:
        return matcher
    stored = db.run_sync(lifecycle_repo.latest_model, write=False)
    if stored is None:
        return matcher
    return replace(matcher, model=Model.from_json(stored[1]), model_id=stored[0])


@dataclass(frozen=True)
class TrainReport:
    """What a re-estimation of the match model did."""

    model_id: int
    pairs: int
    prior: float
    active: bool


def train_matching(
    db: Database, *, iterations: int = 20, sample: int = 200_000, activate: bool = False
) -> TrainReport:
    """Re-estimate m/u and name frequencies by EM from the registry's own records, and store the
    model. Only an activated model is used (running services pick it up within
    `model_refresh_seconds`): siblings share so many fields that EM alone can learn to join
    them, so a trained model is checked on labelled pairs before it is switched on."""
    model, pairs = db.run_sync(
        lambda c: estimate_from_registry(c, iterations=iterations, sample=sample), write=False
    )
    now = dt.datetime.now(dt.UTC)
    model_id = db.run_sync(
        lambda c: lifecycle_repo.insert_model(c, model.to_json(), pairs=pairs, active=activate, now=now)
    )
    return TrainReport(model_id=model_id, pairs=pairs, prior=model.prior, active=activate)


def ingest(
    db: Database,
    *,
    organisation: str,
    submissions: Sequence[preparing.Submission],
    matcher: Matcher,
    limits: AgeLimits = DEFAULT_LIMITS,
) -> list[Submitted | ContactPointError]:
    """Submit a batch through the one ingestion path (as StreamSourceRecords does)."""
    batch = preparing.prepare_batch(
        organisation=organisation, submissions=submissions, index_key=vault_for(db).ring.index, limits=limits
    )
    return store(db, batch, matcher=matcher, limits=limits)


def store(
    db: Database,
    batch: preparing.PreparedBatch,
    *,
    matcher: Matcher,
    limits: AgeLimits = DEFAULT_LIMITS,
    key_turns: WriteTurns | None = None,
) -> list[Submitted | ContactPointError]:
    """Store a prepared batch in one transaction, again if it lost a race to a concurrent writer.
    With `key_turns` (PostgreSQL), the transaction takes a turn before it takes its key locks and
    holds it to its commit (`ingestion.store_batch`)."""
    for _ in range(ATTEMPTS):
        try:
            with turn_when_asked(key_turns) as before_locks:
                return db.run_sync(
                    lambda c: ingestion.store_batch(
                        c, batch, matcher=matcher, limits=limits, before_locks=before_locks
                    )
                )
        except (TransactionConflict, ConcurrentChange):
            continue  # another writer won a race (a key, a deadlock): the whole batch again
    raise ConcurrentChange("the batch kept colliding with concurrent writers")
