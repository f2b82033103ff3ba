"""On PostgreSQL a records process's writers take turns for the key locks (`admin.store`'s
`key_turns`): a batch's key locks take every lock bucket, so batches write one at a time there
anyway, and a council's single record queued behind each batch ahead of it in PostgreSQL's lock
queue (found by measuring: one council's 24 callers got 3.7 records a second, 7.2 s each, under
three councils' streams). Now a single record waits at most for the batch holding the turn."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection

import pytest
from sqlalchemy import Connection, text

from contactpoint.platform.convert import from_date
from contactpoint.platform.db import Database, is_sqlite
from contactpoint.platform.write_turns import Kind, WriteTurns, current_kind, writing_as
from services.records import admin, preparing
from services.records.matching import Matcher
from services.records.repository import candidates as candidate_repo
from services.records.repository.sealing import vault_for
from tests.platform.test_write_turns import holding_turn, until
from tests.services.records.conftest import ORG_A, make_record


def _batch(db: Database, name: str, count: int) -> preparing.PreparedBatch:
    submissions = [
        preparing.Submission(
            f"{name}-{n}",
            make_record(f"{name}-{n}", date_of_birth=from_date(dt.date(2015, 1, 1) + dt.timedelta(days=n))),
        )
        for n in range(count)
    ]
    return preparing.prepare_batch(
        organisation=ORG_A, submissions=submissions, index_key=vault_for(db).ring.index
    )


def _stored(db: Database, name: str) -> int:
    return int(
        db.run_sync(
            lambda c: c.execute(
                text("SELECT count(*) FROM source_records WHERE source_record_id LIKE :n"), {"n": f"{name}-%"}
            ).scalar_one(),
            write=False,
        )
    )


def test_on_postgresql_a_single_record_takes_its_turn_for_the_key_locks_before_waiting_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if is_sqlite(db.url):
        pytest.skip("on SQLite every write transaction takes its turn from its start (test_write_turns)")
    turns = WriteTurns(wait_seconds=30)
    # Who reached the key locks, in order, and what was committed by then.
    locking: list[tuple[Kind, int, int]] = []
    serialise_on = candidate_repo.serialise_on

    def watched(conn: Connection, names: Collection[str]) -> None:
        locking.append((current_kind(), _stored(db, "record"), _stored(db, "batch")))
        serialise_on(conn, names)

    monkeypatch.setattr(candidate_repo, "serialise_on", watched)
    record, batch = _batch(db, "record", 1), _batch(db, "batch", 5)
    results: dict[str, list[object]] = {}

    def store(name: str, kind: Kind, prepared: preparing.PreparedBatch) -> None:
        with writing_as(kind):
            results[name] = admin.store(db, prepared, matcher=Matcher(), key_turns=turns)

    holder, release = holding_turn(turns)  # another batch holds the turn
    writers = [
        threading.Thread(target=store, args=("batch", Kind.BATCH, batch)),
        threading.Thread(target=store, args=("record", Kind.RECORD, record)),
    ]
    writers[0].start()
    until(lambda: turns.waiting() == (0, 0, 1))  # the batch decided, and waits for the turn
    writers[1].start()
    until(lambda: turns.waiting() == (0, 1, 1))
    assert locking == []  # nobody took a key lock while another held the turn
    release.set()
    for thread in [holder, *writers]:
        thread.join(30)
    # The record went first, though the batch asked before it; and the batch reached its locks
    # only once the record was committed (the turn is held to the commit).
    assert locking == [(Kind.RECORD, 0, 0), (Kind.BATCH, 1, 0)]
    assert turns.waiting() == (0, 0, 0)
    assert all(
        isinstance(r, list) and len(r) == n for r, n in ((results["record"], 1), (results["batch"], 5))
    )
    assert (_stored(db, "record"), _stored(db, "batch")) == (1, 5)
