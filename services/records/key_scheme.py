"""What is derived from each stored source record brought up to the current release: its
features (what matching compares), blocking keys and FindChild's name keys.

Every source record notes the scheme (`blocking.SCHEME`) they were derived by. When a release
changes how they are derived (new keys, or names normalised differently), the service files every
older record again on start-up, batch by batch, deriving all three afresh from the record as
stored (each batch one transaction: its old keys deleted, its new ones written, both logged as key
changes), so that a new record's lookups find every older record under the keys it now uses, its
comparisons read the older record as a new one would be read, and FindChild finds it by a name
spelt as the current release normalises it. Replicas starting together share the
work (rows one holds are skipped by the others), and each waits until none is left.

Meanwhile the service serves what does not depend on the keys (reads, finds, data managers'
work): only what files or unfiles records (`Filing.require`: submitting, streaming, withdrawing)
and the scheduled jobs wait, refused UNAVAILABLE until the re-filing ends."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection

from contactpoint.platform.db import Database, TransactionConflict
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.logging import get_logger
from contactpoint.platform.vault import Vault
from contactpoint.platform.write_turns import bulk_writes
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.linkage import Features, blocking_keys, features_of
from services.records.linkage.blocking import SCHEME
from services.records.record_keys import name_rows
from services.records.repository import rekeying
from services.records.repository.writes import key_hash

log = get_logger(__name__)
BATCH = 500
WAIT_SECONDS = 0.5  # between looks at rows another replica is filing
PROGRESS_EVERY = 100_000  # records, between progress lines in the log
ATTEMPTS = 5  # of a batch that lost a race


def hashes_of(features: Features, index_key: bytes) -> list[int]:
    """A record's blocking keys under the current scheme, as filed: keyed hashes, in key order."""
    return [key_hash(k, index_key) for k in sorted(set(blocking_keys(features)))]


def derived(stale: rekeying.StaleSource, index_key: bytes) -> rekeying.Refiled:
    """A stale record's features, blocking keys and name rows, derived from the record as stored
    exactly as for a new record of the same content (a withdrawn record is filed under none)."""
    record = pb.SourceRecord.FromString(stale.record)
    features = features_of(record)
    if stale.withdrawn:
        return rekeying.Refiled(stale, features.to_json(), [], [])
    return rekeying.Refiled(stale, features.to_json(), hashes_of(features, index_key), name_rows(record))


def _refile_batch(conn: Connection, *, index_key: bytes, after: str) -> tuple[int, str | None]:
    # (records filed again, the last id looked at: None when no row after `after` is stale)
    stale = rekeying.stale_sources(conn, after=after, limit=BATCH)
    rekeying.refile(conn, [derived(s, index_key) for s in stale])
    return len(stale), (stale[-1].id if stale else None)


def _with_retries(
    db: Database, batch: Callable[[Connection], tuple[int, str | None]]
) -> tuple[int, str | None]:
    # A batch that lost a race (a deadlock with a withdrawal, say) is run again; only a batch
    # that keeps losing stops the start-up.
    for attempt in range(ATTEMPTS):
        try:
            return db.run_sync(batch)
        except TransactionConflict:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(WAIT_SECONDS)
    raise AssertionError("unreachable")


class Filing:
    """Whether every source record is filed under the current key scheme. Until it is, matching
    would miss records still filed under the old keys, so ingestion and withdrawals are refused."""

    def __init__(self, *, done: bool = False) -> None:
        self._done = threading.Event()
        if done:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def mark_done(self) -> None:
        self._done.set()

    def require(self) -> None:
        """Unavailable while records are still being filed under new keys."""
        if not self._done.is_set():
            raise Unavailable(
                "records are being filed under new blocking keys after an upgrade; "
                "submissions and withdrawals resume when that ends: retry later"
            )


def stale(db: Database) -> bool:
    """Whether any source record is keyed by an older scheme."""
    return bool(db.run_sync(rekeying.stale_count, write=False))


def rebuild_blocking_keys(db: Database, vault: Vault, *, stop: threading.Event | None = None) -> int:
    """File every source record keyed by an older scheme under the current one; how many were.
    Returns once no record is left on an older scheme (rows another replica is filing included),
    or, early, once `stop` is set (between two batches)."""
    total = 0
    started = time.monotonic()
    while True:
        after: str | None = ""
        while after is not None:
            if stop is not None and stop.is_set():
                log.info("records.rekeying_stopped", source_records=total)
                return total
            n, after = _with_retries(
                db, functools.partial(_refile_batch, index_key=vault.ring.index, after=after)
            )
            total += n
            if n and total // PROGRESS_EVERY != (total - n) // PROGRESS_EVERY:
                log.info("records.rekeying", source_records=total, seconds=round(time.monotonic() - started))
        if not stale(db):
            break
        time.sleep(WAIT_SECONDS)  # held by another replica, or stored meanwhile by an older one
    if total:
        log.info(
            "records.rekeyed",
            source_records=total,
            scheme=SCHEME,
            seconds=round(time.monotonic() - started, 1),
        )
    return total


RETRY_SECONDS = 30.0  # after a re-filing that failed outright, before it starts again


async def refile_in_background(
    db: Database, vault: Vault, filing: Filing, *, stop: threading.Event, then: Callable[[], None]
) -> None:
    """`rebuild_blocking_keys` while the service serves, then `filing.mark_done()` and `then()`.
    A failure is logged and the re-filing starts again; `stop` (shutdown) ends it between batches."""
    while not stop.is_set():
        try:
            with bulk_writes():  # behind a person's writes (`write_turns`)
                await asyncio.to_thread(rebuild_blocking_keys, db, vault, stop=stop)
        except Exception:
            log.exception("records.rekeying_failed")
            for _ in range(int(RETRY_SECONDS / WAIT_SECONDS)):
                if stop.is_set():
                    return
                await asyncio.sleep(WAIT_SECONDS)
            continue
        if not stop.is_set():
            filing.mark_done()
            log.info("records.ingestion_open")
            then()
        return
