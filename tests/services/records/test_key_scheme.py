"""Stored blocking keys rebuilt when the key scheme changes (`services.records.key_scheme`), on
SQLite and PostgreSQL: every record keyed by an older scheme is filed under exactly the keys a new
record of the same content gets, once; withdrawn records stay filed under none; matching then
finds an older record through a key only the current scheme has; the service does it on start-up."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Connection, delete, select, text, update

from contactpoint.common.v1 import child_pb2
from contactpoint.platform import migrate
from contactpoint.platform.auth import SERVICE, Principal, set_principal
from contactpoint.platform.db import Database, TransactionConflict
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin, data_keys, ingestion, key_scheme, withdrawal
from services.records.linkage import Features
from services.records.linkage.blocking import SCHEME
from services.records.main import MIGRATIONS, build
from services.records.model import Outcome
from services.records.repository import rekeying
from services.records.repository.sealing import source_context, vault_for
from services.records.repository.writes import insert_rows, key_hash, pack_hashes, unpack_hashes
from services.records.servicer import RecordsServicer
from services.records.settings import RecordsSettings
from services.records.tables import blocking_keys, source_records
from tests.services.records.conftest import BIRTH_YEAR, ORG_A, ORG_B, date, make_record, offline_settings
from tests.services.records.test_ingestion import NOW, submit


def _filed(db: Database) -> dict[str, set[int]]:
    """The blocking key hashes each source record is filed under, from the keys table."""
    out: dict[str, set[int]] = defaultdict(set)
    with db.transaction(write=False) as conn:
        for key, source_id in conn.execute(select(blocking_keys.c.key, blocking_keys.c.source_id)):
            out[source_id].add(key)
    return dict(out)


def _kept(db: Database) -> dict[str, tuple[set[int], int]]:
    """The hashes kept beside each source record, and the scheme it notes."""
    with db.transaction(write=False) as conn:
        rows = conn.execute(
            select(source_records.c.id, source_records.c.blocking, source_records.c.key_scheme)
        )
        return {r.id: (set(unpack_hashes(bytes(r.blocking))), r.key_scheme) for r in rows}


def _as_scheme_one(db: Database, source_ids: list[str]) -> None:
    """Make records look as an older release filed them: under only their NHS and postcode-and-year
    keys (none of the keys for a wrong part of the date), noting scheme 1."""
    vault = vault_for(db)
    with db.transaction() as conn:
        for sid in source_ids:
            row = conn.execute(
                select(
                    source_records.c.features, source_records.c.blocking, source_records.c.withdrawn
                ).where(source_records.c.id == sid)
            ).one()
            conn.execute(
                delete(blocking_keys).where(
                    blocking_keys.c.source_id == sid,
                    blocking_keys.c.key.in_(unpack_hashes(bytes(row.blocking))),
                )
            )
            features = Features.from_json(vault.open_text(row.features, source_context(sid, "features")))
            old = [] if row.withdrawn else [f"pcy:{features.postcode}:{BIRTH_YEAR}", "nhs:0000000000"]
            hashes = [key_hash(k, vault.ring.index) for k in old]
            insert_rows(conn, blocking_keys, ("key", "source_id"), [(h, sid) for h in hashes])
            conn.execute(
                update(source_records)
                .where(source_records.c.id == sid)
                .values(blocking=pack_hashes(hashes), key_scheme=1)
            )


def _source_ids(db: Database) -> list[str]:
    with db.transaction(write=False) as conn:
        return sorted(conn.execute(select(source_records.c.id)).scalars())


def test_records_of_an_older_scheme_are_filed_under_the_current_keys_once(db: Database) -> None:
    submit(db, make_record("rk-1"))
    submit(db, make_record("rk-2", source_system="education"), org=ORG_B)
    submit(
        db, make_record("rk-3", name=child_pb2.PersonName(given_names="Zebedee", family_name="Quartermain"))
    )
    submit(db, make_record("rk-4", name=child_pb2.PersonName(given_names="Ada", family_name="Lovelace")))
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="rk-4", now=NOW
        )
    )
    current, kept = _filed(db), _kept(db)
    ids = _source_ids(db)
    assert len(ids) == 4 and len(current) == 3  # the withdrawn record is filed under no key
    assert all(kept[sid] == (current.get(sid, set()), SCHEME) for sid in ids)

    _as_scheme_one(db, ids)
    assert _filed(db) != current and {s for _, s in _kept(db).values()} == {1}

    vault = vault_for(db)
    assert key_scheme.rebuild_blocking_keys(db, vault) == 4
    assert _filed(db) == current
    assert _kept(db) == kept
    assert key_scheme.rebuild_blocking_keys(db, vault) == 0  # once only


def test_matching_finds_an_older_record_through_a_key_only_the_current_scheme_has(db: Database) -> None:
    first = submit(db, make_record("old-1"))
    _as_scheme_one(db, _source_ids(db))
    key_scheme.rebuild_blocking_keys(db, vault_for(db))
    # The same child from another council with the day of birth wrong, after a move: only the keys
    # for a wrong part of the date (both names' sounds, the year and month) reach the first record.
    moved = make_record(
        "new-1",
        source_system="education",
        nhs_number="",
        date_of_birth=date(BIRTH_YEAR, 3, 15),
        address=child_pb2.Address(lines=["4 Mill Lane"], town="Leeds", postcode="LS1 6AB"),
    )
    again = submit(db, moved, org=ORG_B)
    # Found: linked, or (one part of the date wrong and every address field different) proposed.
    assert again.outcome in (Outcome.LINKED, Outcome.POSSIBLE_MATCH)
    if again.outcome == Outcome.LINKED:
        assert again.contactpoint_id == first.contactpoint_id


def _registry_of_scheme_one(database_url: str, tmp_path: Path) -> tuple[dict[str, set[int]], RecordsSettings]:
    """A registry with one record filed as scheme 1; the keys it should end with, and the
    service's settings for it."""
    migrate.upgrade("records", MIGRATIONS, database_url)
    db = Database(database_url)
    try:
        data_keys.open_file_vault(db, tmp_path / "records.keys")
        submit(db, make_record("old-scheme-1"))
        current = _filed(db)
        _as_scheme_one(db, _source_ids(db))
    finally:
        db.dispose()
    return current, offline_settings(database_url, tmp_path / "records.keys")


def test_the_service_rebuilds_older_keys_on_start_up(database_url: str, tmp_path: Path) -> None:
    current, settings = _registry_of_scheme_one(database_url, tmp_path)

    async def start_and_stop() -> None:
        built = await build(settings)
        await _ingestion_open(built.services[0].servicer)
        for close in built.on_stop:
            await close()

    asyncio.run(start_and_stop())
    db = Database(database_url)
    try:
        data_keys.open_file_vault(db, tmp_path / "records.keys")
        assert _filed(db) == current
        with db.transaction(write=False) as conn:
            schemes = set(conn.execute(text("SELECT key_scheme FROM source_records")).scalars())
        assert schemes == {SCHEME}
    finally:
        db.dispose()


def test_a_withdrawn_record_sent_again_is_filed_under_the_current_scheme(db: Database) -> None:
    submit(db, make_record("again-1"))
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="again-1", now=NOW
        )
    )
    _as_scheme_one(db, _source_ids(db))
    assert _filed(db) == {}
    changed = make_record("again-1", gender=child_pb2.GENDER_NOT_KNOWN)  # sent again, changed
    db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="again-2", record=changed, now=NOW)
    )
    ((hashes, scheme),) = _kept(db).values()
    assert scheme == SCHEME and hashes and _filed(db) == {sid: hashes for sid in _source_ids(db)}


def test_a_stray_key_row_and_a_lost_race_do_not_stop_the_rebuild(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit(db, make_record("stray-1"))
    current = _filed(db)
    ((sid, hashes),) = current.items()
    _as_scheme_one(db, [sid])
    # A key row of the new scheme already held, which the record's kept hashes do not name.
    stray = min(hashes - _filed(db)[sid])
    with db.transaction() as conn:
        insert_rows(conn, blocking_keys, ("key", "source_id"), [(stray, sid)])
    refile, lost = rekeying.refile, []

    def loses_once(conn: Connection, rows: object) -> None:
        if not lost:
            lost.append(True)
            raise TransactionConflict("deadlock")
        refile(conn, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(rekeying, "refile", loses_once)
    monkeypatch.setattr(key_scheme, "WAIT_SECONDS", 0.0)
    assert key_scheme.rebuild_blocking_keys(db, vault_for(db)) == 1
    assert lost and _filed(db) == current


def test_a_newer_schemes_records_are_left_alone(db: Database) -> None:
    submit(db, make_record("newer-1"))
    before = _filed(db)
    with db.transaction() as conn:
        conn.execute(update(source_records).values(key_scheme=SCHEME + 1))
    assert key_scheme.rebuild_blocking_keys(db, vault_for(db)) == 0
    assert _filed(db) == before and {s for _, s in _kept(db).values()} == {SCHEME + 1}


def test_commands_open_the_database_as_the_service_starts(database_url: str, tmp_path: Path) -> None:
    current, settings = _registry_of_scheme_one(database_url, tmp_path)
    opened = admin.open_database(settings)
    try:
        assert _filed(opened) == current
    finally:
        opened.dispose()


def test_reads_are_served_while_records_are_filed_again_and_ingestion_waits(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An upgrade across a key change: the service starts serving at once; until every record is
    # filed again, submitting, streaming and withdrawing are refused UNAVAILABLE and store
    # nothing, while a child is read as before. Then ingestion opens by itself.
    current, settings = _registry_of_scheme_one(database_url, tmp_path)
    release = threading.Event()
    rebuild = key_scheme.rebuild_blocking_keys

    def held(*args: object, **kwargs: object) -> int:
        release.wait(30)
        return rebuild(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(key_scheme, "rebuild_blocking_keys", held)
    council = Principal(
        subject="council-account",
        name="council",
        organisation=ORG_A,
        roles=frozenset({"council-system"}),
        kind=SERVICE,
        token_id="t",
        expire_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        token="",
    )
    context = cast(Context, None)

    async def submit_one(rid: str) -> pb.SubmitSourceRecordResponse:
        return await servicer.SubmitSourceRecord(
            pb.SubmitSourceRecordRequest(record=make_record(rid), request_id=rid), context
        )

    async def scenario() -> None:
        nonlocal servicer
        built = await build(settings)
        servicer = built.services[0].servicer
        set_principal(council)
        try:
            with pytest.raises(Unavailable):
                await submit_one("new-1")
            with pytest.raises(Unavailable):
                await servicer.WithdrawSourceRecord(
                    pb.WithdrawSourceRecordRequest(
                        source_system="social-care", source_record_id="old-scheme-1"
                    ),
                    context,
                )

            async def one() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
                yield pb.SubmitSourceRecordRequest(record=make_record("new-2"), request_id="new-2")

            with pytest.raises(Unavailable):
                [r async for r in servicer.StreamSourceRecords(one(), context)]
            # Reading does not need the blocking keys.
            (child_id,) = _child_ids(database_url)
            read = await servicer.GetChildRecord(pb.GetChildRecordRequest(contactpoint_id=child_id), context)
            assert read.child.contactpoint_id == child_id
            release.set()
            await _ingestion_open(servicer)
            answer = await submit_one("old-scheme-1")  # sent again: now matched, to its child
            assert answer.contactpoint_id == child_id
        finally:
            set_principal(None)
            release.set()
            for close in built.on_stop:
                await close()

    servicer: RecordsServicer
    asyncio.run(scenario())
    db = Database(database_url)
    try:
        data_keys.open_file_vault(db, tmp_path / "records.keys")
        assert _filed(db) == current
        assert len(_source_ids(db)) == 1  # nothing refused was stored
    finally:
        db.dispose()


async def _ingestion_open(servicer: RecordsServicer) -> None:
    # The service files older records while it serves; ingestion opens once they all are.
    for _ in range(600):
        if servicer._filing.done:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the records were not filed again within 30 s")


def _child_ids(database_url: str) -> set[str]:
    """The children the source records belong to."""
    db = Database(database_url)
    try:
        with db.transaction(write=False) as conn:
            return set(conn.execute(select(source_records.c.contactpoint_id)).scalars())
    finally:
        db.dispose()
