"""Personal data sealed at rest (issue 8): nothing that names or locates a child is stored in the
clear, FindChild and matching work through keyed hashes, a missing or wrong key stops the service,
a rotation re-seals everything, and rows held from before sealing are sealed on start-up."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from contactpoint.common.v1 import child_pb2
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.ids import new_contactpoint_id
from contactpoint.platform.vault import (
    DataKeyError,
    KeyRing,
    Vault,
    read_key_ring,
    save_key_ring,
    sealed_key_id,
)
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import children, data_keys, ingestion
from services.records.linkage import blocking_keys, features_of
from services.records.main import MIGRATIONS
from services.records.model import FindCriteria, Outcome
from services.records.repository import remembered_services as remembered_repo
from services.records.repository import sealed_rows
from services.records.repository.sealing import vault_for
from services.records.repository.writes import pack_hashes
from services.records.settings import RecordsSettings
from services.records.tables import match_keys, match_models, metadata, source_records
from services.records.validation import checked_record
from tests.harness import bind_records_keys, records_key_file
from tests.services.records.conftest import BIRTH_YEAR, ORG_A, ORG_B, make_record
from tests.services.records.test_ingestion import NOW, submit

OLD_ID = new_contactpoint_id()
# What must never be stored in the clear: the child's and carer's names, address and postcode.
SECRETS = (
    *(b"Amelia", b"Okafor", b"High Street", b"M1 1AE", b"M11AE", b"okafor", b"amelia", b"Manchester"),
    *(b"Grace", b"0161 496 0000", b"01614960000", b"943 476 5919", b"9434765919"),
    # The sensitive service it is involved with (also remembered beside the record, sealed).
    *(b"Sexual Health", b"sexual health"),
    *(f"{BIRTH_YEAR}-03-14".encode(), f"{BIRTH_YEAR + 18}-03-14".encode(), f"{BIRTH_YEAR}0314".encode()),
)


def _stored_bytes(db: Database) -> bytes:
    """Every value of every records table, as stored."""
    out = bytearray()
    with db.transaction(write=False) as conn:
        for name in sorted(metadata.tables):
            for row in conn.execute(text(f"SELECT * FROM {name}")):  # noqa: S608 - our own names
                for value in row:
                    out += value if isinstance(value, bytes | memoryview) else str(value).encode()
    return bytes(out)


def _find(db: Database, **criteria: object) -> str:
    values: dict[str, object] = {
        "family_name": "Okafor",
        "given_name": "Amelia",
        "date_of_birth": (BIRTH_YEAR, 3, 14),
        **criteria,
    }
    return db.run_sync(
        lambda c: children.find_child(c, criteria=FindCriteria(**values), today=NOW.date()),  # type: ignore[arg-type]
        write=False,
    ).contactpoint_id


def test_nothing_that_names_or_locates_a_child_is_stored_in_the_clear(db: Database) -> None:
    first = submit(db, make_record("seal-1"))
    second = submit(db, make_record("seal-2", source_system="education"), org=ORG_B)
    assert second.outcome == Outcome.LINKED and second.contactpoint_id == first.contactpoint_id
    stored = _stored_bytes(db)
    for secret in SECRETS:
        assert secret not in stored, secret
    # ...and yet the child reads whole, and FindChild finds it every way it could before.
    child = db.run_sync(
        lambda c: children.get_child(c, contactpoint_id=first.contactpoint_id, today=NOW.date()), write=False
    )
    assert child.name.family_name == "Okafor" and child.address.postcode == "M1 1AE"
    assert _find(db) == first.contactpoint_id
    assert _find(db, family_name="Okafur", fuzzy=True) == first.contactpoint_id
    assert _find(db, family_name="Okafur", postcode="m11ae", fuzzy=True) == first.contactpoint_id
    with pytest.raises(Exception, match="no child matches"):
        _find(db, postcode="M1 1AF")


def test_no_stored_hash_lets_a_guess_be_checked(db: Database) -> None:
    """Found by probing: the request and content hashes were plain SHA-256 of the record, so a
    copy of the database checked a guessed date of birth in 0.2 s. They are keyed now; and a retry
    of a request answered while they were not is still recognised."""
    record = make_record("hash-1")
    first = submit(db, record)
    normal, _ = checked_record(record, now=NOW)
    assert normal is not None
    without_as_of = pb.SourceRecord()
    without_as_of.CopyFrom(normal)
    without_as_of.ClearField("as_of")
    guesses = {
        hashlib.sha256(r.SerializeToString(deterministic=True)).hexdigest()
        for r in (record, normal, without_as_of)
    }
    stored = db.run_sync(
        lambda c: [
            *c.execute(text("SELECT content_hash FROM source_records")).scalars(),
            *c.execute(text("SELECT request_hash FROM submissions")).scalars(),
        ],
        write=False,
    )
    assert stored and not guesses & set(stored)
    # A request stored with the unkeyed hash (before this change), retried: the same answer.
    rid = f"{ORG_A}-{record.source_system}-{record.source_record_id}-{record.SerializeToString().hex()[:16]}"
    legacy = hashlib.sha256(record.SerializeToString(deterministic=True)).hexdigest()
    db.run_sync(
        lambda c: c.execute(
            text("UPDATE submissions SET request_hash = :h WHERE request_id = :r"), {"h": legacy, "r": rid}
        )
    )
    assert submit(db, record) == first


def test_every_sealed_row_names_the_key_it_is_sealed_with(db: Database) -> None:
    submit(db, make_record("seal-key-1"))
    vault = vault_for(db)
    counts = db.run_sync(sealed_rows.rows_by_key, write=False)
    assert set(counts) == {vault.newest}


def _rewrite(db: Database, statement: object) -> None:
    with db.transaction() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def test_a_sealed_value_moved_to_another_row_does_not_open(db: Database) -> None:
    a = submit(db, make_record("move-1"))
    b = submit(
        db,
        make_record("move-2", name=child_pb2.PersonName(given_names="Zebedee", family_name="Quartermain")),
    )
    with db.transaction(write=False) as conn:
        rows = {
            r.contactpoint_id: r
            for r in conn.execute(
                select(source_records.c.id, source_records.c.contactpoint_id, source_records.c.record)
            )
        }
    _rewrite(
        db,
        update(source_records)
        .where(source_records.c.id == rows[b.contactpoint_id].id)
        .values(record=rows[a.contactpoint_id].record),
    )
    with pytest.raises(DataKeyError, match="does not open"):
        db.run_sync(
            lambda c: children.get_child(c, contactpoint_id=b.contactpoint_id, today=NOW.date()), write=False
        )


def test_a_database_opened_with_another_key_file_is_refused(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url)
    first, second = Database(database_url), Database(database_url)
    try:
        data_keys.open_file_vault(first, tmp_path / "right.keys")
        submit(first, make_record("wrong-key-1"))
        save_key_ring(tmp_path / "other.keys", KeyRing.new())
        with pytest.raises(DataKeyError, match="index key is not the one"):
            data_keys.open_file_vault(second, tmp_path / "other.keys")
        # Same index key, another seal key 1: still refused, naming the key.
        right = read_key_ring(tmp_path / "right.keys")
        save_key_ring(tmp_path / "forged.keys", KeyRing(right.index, KeyRing.new().seal))
        with pytest.raises(DataKeyError, match="data key 1 is not the key"):
            data_keys.open_file_vault(second, tmp_path / "forged.keys")
        # A lost key file is never silently replaced by a new one.
        with pytest.raises(DataKeyError, match="missing"):
            data_keys.open_file_vault(second, tmp_path / "lost.keys")
        assert not (tmp_path / "lost.keys").exists()
        (tmp_path / "broken.keys").write_text("index notbase64\nseal 1 xyz\n")
        with pytest.raises(DataKeyError, match="malformed"):
            data_keys.open_file_vault(second, tmp_path / "broken.keys")
    finally:
        first.dispose()
        second.dispose()


def test_a_new_key_file_is_private(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url)
    db = Database(database_url)
    try:
        data_keys.open_file_vault(db, tmp_path / "keys" / "records.keys")
    finally:
        db.dispose()
    assert (tmp_path / "keys" / "records.keys").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_rotation_re_seals_everything_and_the_old_key_can_then_retire(db: Database) -> None:
    made = submit(db, make_record("rotate-1"))
    path = records_key_file(db.url)
    vault = vault_for(db)
    old = vault.newest
    save_key_ring(path, read_key_ring(path).rotated())
    assert data_keys.reseal(db, vault) > 0
    assert vault.newest == old + 1
    counts = db.run_sync(sealed_rows.rows_by_key, write=False)
    assert set(counts) == {vault.newest}
    # A replica that had not re-read the file meets the new key and re-reads it by itself.
    lagging = Vault(KeyRing(vault.ring.index, vault.ring.seal[:-1]), reload=lambda: read_key_ring(path))
    with db.transaction(write=False) as conn:
        record = conn.execute(
            select(source_records.c.id, source_records.c.record).where(
                source_records.c.contactpoint_id == made.contactpoint_id
            )
        ).first()
    assert record is not None
    assert lagging.open(record.record, f"source_records:{record.id}:record".encode())
    # Reads and finds after re-sealing, and the old key retires once nothing uses it.
    assert _find(db) == made.contactpoint_id
    # Not before every replica has had three re-seal intervals to re-read the key file.
    with pytest.raises(DataKeyError, match="has not sealed for 180 s"):
        data_keys.retire(db, _settings(db), old)
    time.sleep(0.05)
    data_keys.retire(db, _settings(db, interval=0.01), old)
    assert [i for i, _ in read_key_ring(path).seal] == [old + 1]
    # The services a record remembers as sensitive were re-sealed with it.
    sealed = db.run_sync(
        lambda c: c.execute(select(source_records.c.sensitive_services)).scalars().all(), write=False
    )
    assert sealed and {sealed_key_id(bytes(s)) for s in sealed if s is not None} == {old + 1}
    remembered = db.run_sync(
        lambda c: remembered_repo.remembered_by_child(c, made.contactpoint_id), write=False
    )
    assert [service.name for service in remembered] == ["Sexual Health Clinic"]
    with pytest.raises(DataKeyError, match="newest"):
        data_keys.retire(db, _settings(db, interval=0.01), old + 1)


def test_a_key_still_in_use_cannot_retire(db: Database) -> None:
    submit(db, make_record("retire-1"))
    path = records_key_file(db.url)
    old = vault_for(db).newest
    save_key_ring(path, read_key_ring(path).rotated())
    vault = vault_for(db)
    assert vault.refresh()  # this replica seals with the new key (and registers it)
    db.run_sync(lambda c: data_keys.check_keys(c, vault))
    time.sleep(0.05)
    with pytest.raises(DataKeyError, match="still seals"):
        data_keys.retire(db, _settings(db, interval=0.01), old)


def test_the_keys_in_use_are_found_as_the_counts_find_them(db: Database) -> None:
    """Start-up asks which keys seal some row by stepping along the `sealed_with` indexes, not
    by counting every row: the same answer, mid-rotation and after, and a key in use that the
    ring lacks is still refused."""
    submit(db, make_record("in-use-1"))
    path = records_key_file(db.url)
    old = vault_for(db).newest
    save_key_ring(path, read_key_ring(path).rotated())
    vault = vault_for(db)
    assert vault.refresh()
    db.run_sync(lambda c: data_keys.check_keys(c, vault))
    submit(db, make_record("in-use-2"))  # sealed with the new key; the first still with the old

    def in_use() -> list[int]:
        return list(db.run_sync(sealed_rows.key_ids_in_use, write=False))

    def counted() -> list[int]:
        return sorted(k for k in db.run_sync(sealed_rows.rows_by_key, write=False) if k is not None)

    assert in_use() == counted() == [old, vault.newest]
    without_old = Vault(KeyRing(vault.ring.index, tuple(k for k in vault.ring.seal if k[0] != old)))
    with pytest.raises(DataKeyError, match=f"data key {old} sealed data in this database"):
        db.run_sync(lambda c: data_keys.verify_keys(c, without_old), write=False)
    assert data_keys.reseal(db, vault) > 0
    assert in_use() == counted() == [vault.newest]
    db.run_sync(lambda c: data_keys.verify_keys(c, without_old), write=False)


def test_a_reloaded_ring_that_does_not_open_the_database_is_refused(db: Database) -> None:
    """Another copy of the key file with its own "key 2": refused before anything is sealed with
    it, and the ring in use stays."""
    submit(db, make_record("copies-1"))
    path = records_key_file(db.url)
    vault = vault_for(db)
    original = read_key_ring(path)
    save_key_ring(path, original.rotated())
    assert data_keys.reseal(db, vault) > 0  # key 2 registered and in use
    save_key_ring(path, original.rotated())  # someone else's key 2
    with pytest.raises(DataKeyError, match="data key 2 is not the key"):
        vault.refresh()
    assert vault.ring != read_key_ring(path)
    assert _find(db)


def test_a_standby_key_opens_but_does_not_seal(db: Database) -> None:
    submit(db, make_record("standby-1"))
    path = records_key_file(db.url)
    vault = vault_for(db)
    before = vault.newest
    save_key_ring(path, read_key_ring(path).rotated(standby=True))
    data_keys.reseal(db, vault)
    assert vault.newest == before and before + 1 in vault.key_ids
    assert set(db.run_sync(sealed_rows.rows_by_key, write=False)) == {before}


def _settings(db: Database, *, interval: float = 60.0) -> RecordsSettings:
    return RecordsSettings.model_validate(
        {
            "reseal_interval_seconds": interval,
            "database_url": db.url,
            "identity_target": "127.0.0.1:1",
            "data_key_file": str(records_key_file(db.url)),
        }
    )


# --- rows held from before sealing ---------------------------------------------------------------


def _plain_key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _unkeyed_content_hash(record: pb.SourceRecord) -> str:
    # The content hash as it was stored before it was keyed: SHA-256 of the record without as_of.
    copy = pb.SourceRecord()
    copy.CopyFrom(record)
    copy.ClearField("as_of")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _store_as_before_sealing(url: str, record: pb.SourceRecord, *, cid: str, source_id: str) -> None:
    """A child and its source record as revision 0003 stored them: protobuf, features JSON and
    unkeyed blocking hashes in the clear, name keys in the clear."""
    normal, problems = checked_record(record, now=NOW)
    assert normal is not None, problems
    features = features_of(normal)
    hashes = [_plain_key_hash(k) for k in sorted(set(blocking_keys(features)))]
    db = Database(url)
    try:
        with db.transaction() as conn:
            conn.execute(
                text(
                    "INSERT INTO children (contactpoint_id, status, shielded, provisional_shield, created_at,"
                    " updated_at) VALUES (:cid, 'active', false, false, :now, :now)"
                ),
                {"cid": cid, "now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO source_records (id, organisation, source_system, source_record_id,"
                    " contactpoint_id, record, features, blocking, content_hash, withdrawn, match_outcome,"
                    " match_reasons, created_at, updated_at) VALUES (:id, :org, :sys, :rid, :cid, :record,"
                    " :features, :blocking, :hash, false, 'created', '[]', :now, :now)"
                ),
                {
                    "id": source_id,
                    "org": ORG_A,
                    "sys": normal.source_system,
                    "rid": normal.source_record_id,
                    "cid": cid,
                    "record": normal.SerializeToString(deterministic=True),
                    "features": features.to_json(),
                    "blocking": pack_hashes(hashes),
                    "hash": _unkeyed_content_hash(normal),
                    "now": NOW,
                },
            )
            for h in hashes:
                conn.execute(
                    text("INSERT INTO blocking_keys (key, source_id) VALUES (:k, :s)"),
                    {"k": h, "s": source_id},
                )
            conn.execute(
                text(
                    "INSERT INTO match_keys (source_id, position, contactpoint_id, family_key, given_keys,"
                    " date_of_birth, postcode_key, gender) VALUES (:s, 0, :cid, 'okafor', 'amelia', :dob,"
                    " 'M11AE', 2)"
                ),
                {"s": source_id, "cid": cid, "dob": dt.date(BIRTH_YEAR, 3, 14)},
            )
            conn.execute(
                text(
                    "INSERT INTO match_models (model, pairs, active, created_at) VALUES (:m, 1, false, :now)"
                ),
                {"m": '{"names": ["okafor"]}', "now": NOW},
            )
    finally:
        db.dispose()


def test_rows_from_before_sealing_are_sealed_on_start_and_still_match(
    database_url: str, tmp_path: Path
) -> None:
    migrate.upgrade("records", MIGRATIONS, database_url, revision="0003")
    _store_as_before_sealing(database_url, make_record("old-1"), cid=OLD_ID, source_id="a" * 32)
    migrate.upgrade("records", MIGRATIONS, database_url)
    db = Database(database_url)
    try:
        vault = data_keys.open_file_vault(db, tmp_path / "records.keys")
        assert data_keys.seal_clear_rows(db, vault) == 1
        assert data_keys.seal_clear_rows(db, vault) == 0  # once only
        stored = _stored_bytes(db)
        for secret in SECRETS:
            assert secret not in stored, secret
        assert set(db.run_sync(sealed_rows.rows_by_key, write=False)) == {vault.newest}
        # FindChild finds the old child; matching links a new record to it through re-keyed keys.
        assert _find(db) == OLD_ID
        again = submit(db, make_record("old-2", source_system="education"), org=ORG_B)
        assert again.outcome == Outcome.LINKED and again.contactpoint_id == OLD_ID
        with db.transaction(write=False) as conn:
            model = conn.execute(select(match_models.c.model, match_models.c.sealed_with)).first()
            names = conn.execute(select(match_keys.c.sealed_with)).all()
        assert model is not None and model.sealed_with == vault.newest and b"okafor" not in bytes(model.model)
        assert names and all(n.sealed_with == vault.newest for n in names)
    finally:
        db.dispose()


def test_a_service_without_its_key_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    """The service's own start-up: a one-line reason, before anything is served."""
    import asyncio

    from contactpoint.platform.settings import ConfigurationError
    from services.records.main import build
    from services.records.settings import RecordsSettings

    migrate.upgrade("records", MIGRATIONS, database_url)
    db = Database(database_url)
    try:
        data_keys.open_file_vault(db, tmp_path / "right.keys")
        submit(db, make_record("start-1"))
    finally:
        db.dispose()
    base = {"database_url": database_url, "identity_target": "127.0.0.1:1"}
    for settings, reason in [
        (base, "set CONTACTPOINT_RECORDS_DATA_KEY_FILE"),
        ({**base, "data_key_file": str(tmp_path / "gone.keys")}, "missing"),
        ({**base, "data_keys": KeyRing.new().render()}, "index key is not the one"),
    ]:
        with pytest.raises(ConfigurationError, match=reason) as caught:
            asyncio.run(build(RecordsSettings.model_validate(settings)))
        assert "\n" not in str(caught.value)


def test_a_re_seal_never_overwrites_a_row_rewritten_meanwhile(db: Database) -> None:
    """Re-sealing reads a row, then another replica's ingestion replaces it, then the re-seal's
    update comes: it is conditional on the bytes it read, so the new content stays (PostgreSQL:
    SQLite has one writer, so nothing can come between)."""
    if db.url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: ingestion cannot run inside the re-seal's transaction")
    made = submit(db, make_record("race-1"))
    path = records_key_file(db.url)
    save_key_ring(path, read_key_ring(path).rotated())
    vault = vault_for(db)
    vault.refresh()
    other = Database(db.url)
    bind_records_keys(other)
    newer = make_record("race-1", name=child_pb2.PersonName(given_names="Amelia", family_name="Okafor-Reid"))
    opened = vault.open
    raced = []

    def open_then_race(sealed: bytes, context: bytes) -> bytes:
        plain = opened(sealed, context)
        if not raced and context.endswith(b":record"):
            raced.append(  # commits before the re-seal's update runs
                other.run_sync(
                    lambda c: ingestion.submit(
                        c, organisation=ORG_A, request_id="race-2", record=newer, now=NOW
                    )
                )
            )
        return plain

    try:
        vault.open = open_then_race  # type: ignore[method-assign]
        db.run_sync(lambda c: sealed_rows.reseal_batch(c, vault, limit=500))
    finally:
        del vault.open
        other.dispose()
    assert raced and raced[0].contactpoint_id == made.contactpoint_id
    child = db.run_sync(
        lambda c: children.get_child(c, contactpoint_id=made.contactpoint_id, today=NOW.date()), write=False
    )
    assert child.name.family_name == "Okafor-Reid"  # the later write stands
