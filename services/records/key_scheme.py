"""Stored blocking keys brought up to the current version of `linkage.blocking`.

Every source record notes the scheme its keys were made by. When a release changes the keys, the
service files every older record again on start-up, before it serves, batch by batch (each batch
one transaction: its old keys deleted, its new ones written, both logged as key changes), so a
new record's lookups find every older record under the keys it now uses. Replicas starting
together share the work (rows one holds are skipped by the others), and each waits until none is
left, as it does for sealing rows held in the clear."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from sqlalchemy import Connection

from contactpoint.platform.db import Database, TransactionConflict
from contactpoint.platform.logging import get_logger
from contactpoint.platform.vault import Vault
from services.records.linkage import Features, blocking_keys
from services.records.linkage.blocking import SCHEME
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


def _refile_batch(conn: Connection, *, index_key: bytes, after: str) -> tuple[int, str | None]:
    # (records filed again, the last id looked at: None when no row after `after` is stale)
    stale = rekeying.stale_sources(conn, after=after, limit=BATCH)
    rekeying.refile(
        conn,
        [(s, [] if s.withdrawn else hashes_of(Features.from_json(s.features), index_key)) for s in stale],
    )
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


def rebuild_blocking_keys(db: Database, vault: Vault) -> int:
    """File every source record keyed by an older scheme under the current one; how many were.
    Returns once no record is left on an older scheme (rows another replica is filing included)."""
    total = 0
    started = time.monotonic()
    while True:
        after: str | None = ""
        while after is not None:
            n, after = _with_retries(
                db, functools.partial(_refile_batch, index_key=vault.ring.index, after=after)
            )
            total += n
            if n and total // PROGRESS_EVERY != (total - n) // PROGRESS_EVERY:
                log.info("records.rekeying", source_records=total, seconds=round(time.monotonic() - started))
        if not db.run_sync(rekeying.stale_count, write=False):
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
