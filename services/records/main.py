"""Assembles and runs the records service."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import grpc

from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.db import Database
from contactpoint.platform.logging import get_logger
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.peers import ServiceToken, open_channel, remote_verifier
from contactpoint.platform.server import ServiceSpec
from contactpoint.platform.service import Built, run_service
from contactpoint.platform.settings import load_settings
from contactpoint.platform.tls import load_tls
from contactpoint.platform.tracing import tracing_for
from contactpoint.platform.write_turns import bulk_writes
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.records import admin, data_keys, key_scheme
from services.records.linkage import given_names
from services.records.model import AgeLimits
from services.records.repository import review as review_repo
from services.records.servicer import ACCESS, DESCRIPTOR, RecordsServicer
from services.records.settings import RecordsSettings
from services.records.values import today_in_england

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def _every(seconds: float, name: str, job: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """Run `job` now and then every `seconds`; a failure is logged and the schedule goes on."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("records.job_failed", job=name)
            await asyncio.sleep(seconds)

    return asyncio.get_running_loop().create_task(loop(), name=name)


async def build(settings: RecordsSettings) -> Built:
    """The records service, assembled from its settings: it also runs the lifecycle rules on a
    schedule and picks up a re-estimated match model when one is stored."""
    db = Database(settings.database_url)
    limits = AgeLimits(settings.max_age_years, settings.extended_max_age_years)
    try:
        # A missing or wrong data key stops the service here, before it serves anything.
        vault = await asyncio.to_thread(data_keys.open_vault, db, settings)
        await asyncio.to_thread(data_keys.seal_clear_rows, db, vault)
        checked = await asyncio.to_thread(admin.check_old_archives, db, limits)
        if checked:
            log.info("records.old_archives_checked", children=checked)
        # Usually nothing is filed under an older key scheme, and ingestion opens at once; after
        # an upgrade across a key change it opens once every record is filed again.
        filing = key_scheme.Filing(done=not await asyncio.to_thread(key_scheme.stale, db))
    except BaseException:
        db.dispose()
        raise
    tls = load_tls(settings).channel_credentials()
    tracing = tracing_for(settings, "records")
    identity = open_channel(settings.identity_target, tls, tracing=tracing)
    token = ServiceToken(identity, *settings.machine_credentials())
    verifier = remote_verifier(settings, identity, token)
    channels: list[grpc.aio.Channel] = [identity]
    audit: AuditWriter | None = None
    if settings.audit_target:
        audit_channel = open_channel(settings.audit_target, tls, tracing=tracing)
        channels.append(audit_channel)
        audit = AuditWriter(audit_channel, token)
    else:
        # Found by probing: it served, and only a data manager's first call said why it could not.
        log.warning(
            "records.audit_not_configured",
            effect="data managers' calls answer UNAVAILABLE until CONTACTPOINT_RECORDS_AUDIT_TARGET is set",
        )
    servicer = RecordsServicer(
        db=db, settings=settings, audit=audit, verifier=verifier, vault=vault, filing=filing
    )
    # The registry's size (and a stored model) before the first record is matched, not a
    # refresh later.
    servicer.matcher = await asyncio.to_thread(admin.current_matcher, db, servicer.matcher)
    await asyncio.to_thread(given_names.warm)  # the twins rule's list of names, before any request
    metrics = Metrics()
    metrics.watch_database(db.writer, db.reader)
    metrics.gauge_of(
        "contactpoint_records_review_queue",
        "possible matches waiting for a data manager",
        lambda: db.run_sync(review_repo.open_task_count, write=False),
    )
    spec = ServiceSpec(
        servicer,
        pb_grpc.add_RecordsServiceServicer_to_server,
        DESCRIPTOR,
        ACCESS,
        on_refused=servicer.record_refusal,
    )

    async def refresh_model() -> None:
        servicer.matcher = await asyncio.to_thread(admin.current_matcher, db, servicer.matcher)

    async def lifecycle() -> None:
        with bulk_writes():  # a schedule's writes wait behind a person's (`write_turns`)
            report = await asyncio.to_thread(admin.run_lifecycle, db, today=today_in_england(), limits=limits)
        if report.archived or report.purged:
            log.info("records.lifecycle", archived=report.archived, purged=report.purged)

    async def reseal() -> None:
        with bulk_writes():
            await asyncio.to_thread(data_keys.reseal, db, vault)

    jobs: list[asyncio.Task[None]] = []

    def start_jobs() -> None:
        # Not while records are being filed again: purging or re-sealing a record then would race
        # its re-filing.
        jobs.extend(
            [
                _every(settings.model_refresh_seconds, "match-model", refresh_model),
                _every(settings.lifecycle_interval_seconds, "lifecycle", lifecycle),
                _every(settings.reseal_interval_seconds, "reseal", reseal),
            ]
        )

    stop_filing = threading.Event()
    refiling: asyncio.Task[None] | None = None
    if filing.done:
        start_jobs()
    else:
        log.info("records.rekeying_started")
        refiling = asyncio.get_running_loop().create_task(
            key_scheme.refile_in_background(db, vault, filing, stop=stop_filing, then=start_jobs),
            name="rekeying",
        )

    async def close() -> None:
        stop_filing.set()
        if refiling is not None:
            await asyncio.gather(refiling, return_exceptions=True)  # ends after its current batch
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        for channel in channels:
            await channel.close(None)
        await asyncio.to_thread(servicer.workers.close)
        await servicer.store.close()
        db.dispose()

    # The prepare workers start now, not with the first stream's first batch (a second's wait). A
    # worker that cannot start stops the service here, and what was built is closed again.
    try:
        started = await servicer.workers.start()
    except BaseException:
        await close()
        raise
    log.info("records.workers_started", workers=started, of=servicer.workers.workers)
    return Built(
        [spec],
        verifier,
        [close],
        on_drain=[servicer.close],
        on_last_call=[servicer.last_call],
        metrics=metrics,
        tracing=tracing,
        checks=[db.problem],
    )


def run(env: Mapping[str, str]) -> None:
    """`contactpoint serve records`."""
    settings = load_settings(RecordsSettings, env)
    run_service("records", settings, MIGRATIONS, lambda: build(settings))
