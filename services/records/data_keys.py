"""Records' data keys: opened on start-up (a missing or wrong key stops the service with its
reason, never reads garbage), rows held from before sealing sealed once, and re-sealing in the
background after a rotation, without downtime."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from contactpoint.platform.db import Database, is_sqlite
from contactpoint.platform.logging import get_logger
from contactpoint.platform.settings import ConfigurationError
from contactpoint.platform.vault import (
    DataKeyError,
    KeyRing,
    Vault,
    create_key_ring,
    read_key_ring,
    save_key_ring,
)
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import record_keys
from services.records.key_scheme import hashes_of
from services.records.linkage import Features
from services.records.repository import sealed_rows, source_keys
from services.records.repository.sealing import bind
from services.records.repository.writes import pack_hashes
from services.records.settings import RecordsSettings

log = get_logger(__name__)
BATCH = 500


def open_vault(db: Database, settings: RecordsSettings) -> Vault:
    """The service's vault, checked against what the database was sealed with, and bound to `db`.
    A key file is created only while the database holds nothing sealed: a lost key file must be
    restored, not silently replaced."""
    secret = settings.data_keys.get_secret_value()
    if secret.strip():
        try:
            vault = Vault(KeyRing.parse(secret))
        except DataKeyError as exc:
            raise DataKeyError(f"CONTACTPOINT_RECORDS_DATA_KEYS is malformed: {exc}") from None
    elif settings.data_key_file is not None:
        return open_file_vault(db, settings.data_key_file)
    else:
        raise ConfigurationError(
            "set CONTACTPOINT_RECORDS_DATA_KEY_FILE (or CONTACTPOINT_RECORDS_DATA_KEYS): the data keys "
            "that seal children's personal data at rest"
        )
    db.run_sync(lambda conn: check_keys(conn, vault))
    bind(db, vault)
    return vault


def open_file_vault(db: Database, path: Path) -> Vault:
    """`open_vault` with the key ring in `path` (re-read when it changes)."""
    if path.exists():
        ring = read_key_ring(path)
        if path.stat().st_mode & 0o077:
            log.warning(
                "records.data_key_file_readable_by_others", path=str(path), mode=oct(path.stat().st_mode)
            )
    elif db.run_sync(sealed_rows.checks, write=False):
        raise DataKeyError(
            f"the data key file {path} is missing, but this database holds data sealed with its "
            "keys: restore the file from its backup"
        )
    else:
        ring = create_key_ring(path)
    vault = Vault(
        ring,
        reload=lambda: read_key_ring(path),
        # A reloaded ring is used only once it opens what the database holds.
        accept=lambda new: _verify_ring(db, new),
    )
    db.run_sync(lambda conn: check_keys(conn, vault))
    bind(db, vault)
    return vault


def _verify_ring(db: Database, ring: KeyRing) -> None:
    db.run_sync(lambda conn: verify_keys(conn, Vault(ring)), write=False)


def _index_check(vault: Vault) -> bytes:
    return struct.pack(">q", vault.hash64(sealed_rows.CHECK_PLAIN))


def check_keys(conn: Connection, vault: Vault) -> None:
    """DataKeyError unless `vault` opens everything this database was sealed and keyed with;
    then the check values of keys the database has not seen are stored."""
    known, index = verify_keys(conn, vault)
    now = dt.datetime.now(dt.UTC)
    if index is None:
        sealed_rows.add_check(conn, sealed_rows.INDEX_KEY_ID, _index_check(vault), now=now)
    for key_id in vault.key_ids:
        if key_id not in known:
            check = vault.seal(sealed_rows.CHECK_PLAIN, sealed_rows.CHECK_CONTEXT, key_id=key_id)
            sealed_rows.add_check(conn, key_id, check, now=now)


def verify_keys(conn: Connection, vault: Vault) -> tuple[dict[int, bytes], bytes | None]:
    """DataKeyError unless `vault` opens everything this database was sealed and keyed with:
    (the seal keys' check values, the index key's), as stored."""
    known = sealed_rows.checks(conn)
    index = known.pop(sealed_rows.INDEX_KEY_ID, None)
    if index is not None and index != _index_check(vault):
        raise DataKeyError(
            "the data keys' index key is not the one this database was keyed with (wrong key file?)"
        )
    in_use = set(sealed_rows.key_ids_in_use(conn))
    for key_id, check in sorted(known.items()):
        if key_id not in vault.key_ids:
            if key_id in in_use:
                raise DataKeyError(
                    f"data key {key_id} sealed data in this database but is not in the key ring"
                )
            continue
        try:
            vault.open(check, sealed_rows.CHECK_CONTEXT)
        except DataKeyError:
            raise DataKeyError(
                f"data key {key_id} is not the key that sealed this database's data (wrong key file?)"
            ) from None
    return known, index


def _seal_clear_batch(conn: Connection, index_key: bytes) -> tuple[int, bool]:
    """Seal up to BATCH source records held in the clear, filing them under keyed blocking and
    name keys; (how many, whether more may remain)."""
    rows = sealed_rows.clear_sources(conn, limit=BATCH)
    sealed_rows.forget_clear_hashes(conn, [r.id for r in rows])  # the unkeyed hashes filed before
    sealed: list[_Keys] = []
    for row in rows:
        record = pb.SourceRecord.FromString(row.record)
        hashes = [] if row.withdrawn else hashes_of(Features.from_json(row.features), index_key)
        if sealed_rows.seal_source(conn, row, blocking=pack_hashes(hashes)) and not row.withdrawn:
            sealed.append(_keys_of(row, record, hashes))
    source_keys.insert_keys(conn, sealed)
    return len(rows), len(rows) == BATCH


@dataclass(frozen=True, slots=True)
class _Keys:
    """What `insert_keys` files for a record sealed in place (the row itself is already stored)."""

    id: str
    contactpoint_id: str
    blocking_hashes: list[int]
    names: list[source_keys.MatchKeyRow]


def _keys_of(row: sealed_rows.ClearSource, record: pb.SourceRecord, hashes: list[int]) -> _Keys:
    return _Keys(row.id, row.contactpoint_id, hashes, record_keys.name_rows(record))


def seal_clear_rows(db: Database, vault: Vault) -> int:
    """Seal everything still held in the clear from before sealing existed (a one-off on the first
    start with data keys, batch by batch); how many source records. On SQLite the freed pages are
    zeroed and the write-ahead log truncated, so the old text leaves the files too."""
    total = 0
    more = True
    while more:
        n, more = db.run_sync(lambda conn: _seal_clear_batch(conn, vault.ring.index))
        total += n
    # Rows another replica is sealing right now were skipped: wait until it has, so that nothing
    # in the clear is read through this one.
    while db.run_sync(sealed_rows.clear_count, write=False):
        time.sleep(0.5)
    models = db.run_sync(sealed_rows.seal_clear_models)
    if total or models:
        log.info("records.sealed_clear_rows", source_records=total, models=models)
        if is_sqlite(db.url):
            db.forget_freed(vacuum=True)
        else:
            log.warning(
                "records.vacuum_advised",
                reason="old row versions keep the text until VACUUM FULL source_records, match_keys, "
                "match_models, blocking_keys, key_changes",
            )
    return total


def reseal(db: Database, vault: Vault) -> int:
    """Re-read the key file; register a new key; re-seal, batch by batch, whatever an older key
    sealed. How many rows were re-sealed."""
    if vault.refresh():
        log.info("records.data_keys_reloaded", newest=vault.newest)
    db.run_sync(lambda conn: check_keys(conn, vault))
    total = 0
    while n := db.run_sync(lambda conn: sealed_rows.reseal_batch(conn, vault, limit=BATCH)):
        total += n
    if total:
        log.info("records.resealed", rows=total, key=vault.newest)
    return total


@dataclass(frozen=True)
class KeyStatus:
    """Which seal keys the ring holds, which seals, and how many rows each seals."""

    newest: int
    ring: tuple[int, ...]
    rows: dict[int | None, int]


def key_status(db: Database, ring: KeyRing) -> KeyStatus:
    """`contactpoint records data-keys`."""
    rows = db.run_sync(sealed_rows.rows_by_key, write=False)
    return KeyStatus(ring.newest, tuple(i for i, _ in ring.seal), rows)


def rotate(settings: RecordsSettings, *, standby: bool = False) -> int:
    """A new seal key appended to the key file: every replica seals with it once it has re-read
    the file (within `reseal_interval_seconds`, or at once on meeting a value it sealed), and
    re-seals older rows in the background. With `standby` the key only opens until a later
    rotation (or a `sealing` line) puts it to use. The new key's id."""
    path = _key_file(settings)
    with _locked(path):  # two rotations at once must not both write "key N+1"
        ring = read_key_ring(path).rotated(standby=standby)
        save_key_ring(path, ring)
    return ring.seal[-1][0]


def retire(db: Database, settings: RecordsSettings, key_id: int) -> None:
    """Drop seal key `key_id` from the key file, once no row is sealed with it and every replica
    has had time to re-read the file (three re-seal intervals since the sealing key was first
    used): a replica still sealing with the old key would otherwise write rows nothing opens."""
    path = _key_file(settings)
    with _locked(path):
        ring = read_key_ring(path)
        smaller = ring.without(key_id)
        in_use = db.run_sync(sealed_rows.rows_by_key, write=False).get(key_id, 0)
        if in_use:
            raise DataKeyError(f"data key {key_id} still seals {in_use} rows; wait for re-sealing to finish")
        since = db.run_sync(lambda c: sealed_rows.check_registered_at(c, ring.newest), write=False)
        grace = dt.timedelta(seconds=3 * settings.reseal_interval_seconds)
        if since is None or dt.datetime.now(dt.UTC) - since < grace:
            raise DataKeyError(
                f"data key {ring.newest} has not sealed for {grace.total_seconds():.0f} s yet: every replica "
                "must have re-read the key file first; try again later"
            )
        save_key_ring(path, smaller)
    db.run_sync(lambda conn: sealed_rows.forget_check(conn, key_id))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the key file, for changing it (`rotate`, `retire`)."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _key_file(settings: RecordsSettings) -> Path:
    if settings.data_key_file is None or settings.data_keys.get_secret_value().strip():
        raise ConfigurationError(
            "rotating needs CONTACTPOINT_RECORDS_DATA_KEY_FILE; with CONTACTPOINT_RECORDS_DATA_KEYS, "
            "add a 'seal ID KEY' line to the secret and roll the replicas, then a 'sealing ID' line and "
            "roll them again (docs/operations.md)"
        )
    return settings.data_key_file
