"""The key-change log: a batch that read its key hits before taking its locks learns, from the
changes logged since, exactly whether any of its keys changed (PostgreSQL), or reads them all
again (SQLite, or a log pruned past its mark)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete

from contactpoint.platform.db import Database
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import ingestion, placement, withdrawal
from services.records.repository import candidates as candidate_repo
from services.records.repository import key_changes
from services.records.repository.sealing import vault_for
from services.records.tables import key_changes as key_changes_table
from services.records.validation import checked_record
from tests.services.records.conftest import ORG_A, ORG_B, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _hashes(db: Database, record: pb.SourceRecord) -> list[int]:
    normal, problems = checked_record(record, now=NOW)
    assert normal is not None, problems
    return list(placement.prepare(ORG_A, normal, vault_for(db).ring.index).blocking_hashes.values())


def _submit(db: Database, record: pb.SourceRecord, org: str, rid: str) -> None:
    db.run_sync(lambda c: ingestion.submit(c, organisation=org, request_id=rid, record=record, now=NOW))


def _withdraw(db: Database, record: pb.SourceRecord, org: str) -> None:
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c,
            organisation=org,
            source_system=record.source_system,
            source_record_id=record.source_record_id,
            now=NOW,
        )
    )


def _sibling_free(rid: str, given: str, family: str, day: int) -> pb.SourceRecord:
    record = make_record(rid, nhs_number="")
    record.name.given_names, record.name.family_name = given, family
    record.date_of_birth.day = day
    record.address.postcode = "LS16 6AB" if family == "Okafor" else "M1 1AE"
    return record


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)  # SQLite keeps no log
def test_only_changes_under_the_batchs_own_keys_count(db: Database) -> None:
    ours = _sibling_free("kc-1", "Gabriela", "Okafor", 27)
    mine = _hashes(db, ours)
    _submit(db, ours, ORG_A, "kc-a")
    seen = db.run_sync(lambda c: candidate_repo.read_hits(c, mine), write=False)
    assert seen.mark is not None and seen.pairs

    def changed() -> bool | None:
        assert seen.mark is not None
        return db.run_sync(lambda c: key_changes.changed_since(c, seen.mark or (), mine), write=False)

    assert changed() is False  # nothing since
    _submit(db, _sibling_free("kc-2", "Henrietta", "Zbigniewska", 3), ORG_B, "kc-b")
    assert changed() is False  # another child entirely: none of our keys
    assert not db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)

    again = pb.SourceRecord()
    again.CopyFrom(ours)
    again.source_system, again.source_record_id = "education", "kc-9"
    _submit(db, again, ORG_B, "kc-c")  # the same child from another council: under our keys
    assert changed() is True
    assert db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
def test_a_withdrawal_under_the_batchs_keys_counts(db: Database) -> None:
    ours = _sibling_free("kc-w", "Gabriela", "Okafor", 27)
    mine = _hashes(db, ours)
    _submit(db, ours, ORG_A, "kc-w")
    seen = db.run_sync(lambda c: candidate_repo.read_hits(c, mine), write=False)
    _withdraw(db, ours, ORG_A)
    assert db.run_sync(lambda c: key_changes.changed_since(c, seen.mark or (), mine), write=False) is True
    assert db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
def test_a_log_pruned_past_the_mark_means_reading_every_key_again(db: Database) -> None:
    ours = _sibling_free("kc-p", "Gabriela", "Okafor", 27)
    mine = _hashes(db, ours)
    seen = db.run_sync(lambda c: candidate_repo.read_hits(c, mine), write=False)
    _submit(db, _sibling_free("kc-q", "Henrietta", "Zbigniewska", 3), ORG_B, "kc-q")
    db.run_sync(lambda c: c.execute(delete(key_changes_table)))  # as if pruned
    assert db.run_sync(lambda c: key_changes.changed_since(c, seen.mark or (), mine), write=False) is None
    # Unknowable from the log, so every key is read again: still exact.
    assert not db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)
    _submit(db, ours, ORG_A, "kc-p")
    assert db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)


def test_a_record_filed_under_the_keys_is_a_change_on_both_databases(db: Database) -> None:
    ours = _sibling_free("kc-s", "Gabriela", "Okafor", 27)
    mine = _hashes(db, ours)
    seen = db.run_sync(lambda c: candidate_repo.read_hits(c, mine), write=False)
    if seen.mark is None:  # SQLite keeps no log (one writer at a time): every key is read again
        assert db.run_sync(lambda c: key_changes.changed_since(c, (), mine), write=False) is None
    assert not db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)
    _submit(db, ours, ORG_A, "kc-s")
    assert db.run_sync(lambda c: candidate_repo.hits_changed(c, mine, seen), write=False)


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
def test_a_withdrawal_and_a_link_to_the_same_child_do_not_deadlock(db: Database) -> None:
    """A withdrawal notes its deleted keys and then touches its child; a batch linking a record to
    that child share-locks the child first and notes its keys later. Were the note written when
    made, the two would wait on each other whenever they drew the same shard (the batch for the
    shard row, the withdrawal for the child). Notes are written at commit, so they never do."""
    import threading

    from sqlalchemy import text

    from services.records.repository import children as child_repo
    from services.records.repository import sources as source_repo
    from services.records.repository.rows import SourceKey

    record = make_record("kc-dl")
    submitted = db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="kc-dl", record=record, now=NOW)
    )
    child = submitted.contactpoint_id
    key = SourceKey(ORG_A, record.source_system, record.source_record_id)
    source_id = db.run_sync(lambda c: source_repo.sources_by_key(c, [key]))[key].id

    linking = db.writer.connect()
    linking.begin()
    shard = linking.execute(text("SELECT txid_current() % 16")).scalar()
    while True:  # a withdrawing transaction in the same shard
        withdrawing = db.writer.connect()
        withdrawing.begin()
        if withdrawing.execute(text("SELECT txid_current() % 16")).scalar() == shard:
            break
        withdrawing.rollback()
        withdrawing.close()
    outcome: dict[str, str] = {}
    try:
        child_repo.children_by_id(linking, [child], share_lock=True)
        source_repo.withdraw(withdrawing, source_id, now=NOW)  # notes the deleted keys

        def touch() -> None:
            try:
                child_repo.touch(withdrawing, child, now=NOW, archive_on=None)  # waits for `linking`
                withdrawing.commit()
                outcome["withdrawal"] = "committed"
            except Exception as exc:  # a deadlock would land here
                outcome["withdrawal"] = type(exc).__name__

        waiter = threading.Thread(target=touch)
        waiter.start()
        key_changes.note(linking, [12345])
        linking.commit()  # its note is written now, and the withdrawal's child lock is released
        waiter.join(20)
        assert outcome == {"withdrawal": "committed"}
    finally:
        for conn in (linking, withdrawing):
            conn.rollback()
            conn.close()
    changes = db.run_sync(
        lambda c: key_changes.changed_since(c, (0,) * key_changes.SHARDS, [12345]), write=False
    )
    assert changes is True
