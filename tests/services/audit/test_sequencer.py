"""Group commit (`Sequencer`) on the audit database itself, SQLite and PostgreSQL: batches share a
transaction and a head; a batch that fails (a crash before its head is signed, the database down)
answers every caller with an error and stores nothing; closing writes what is waiting."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform.db import Database, TransactionConflict
from contactpoint.platform.errors import Internal, Unavailable
from contactpoint.platform.statements import Statements
from services.audit import domain
from services.audit.fast_append import FastAppender
from services.audit.sequencer import Sequencer
from services.audit.verify import verify_log


def event(actor: str) -> pb.AuditEvent:
    return pb.AuditEvent(actor=actor, action="GetChild", outcome="ALLOWED", severity="INFO")


def stored(db: Database) -> tuple[int, list[int]]:
    """(leaves, head sizes) in the database."""
    leaves = db.run_sync(lambda c: int(c.execute(text("SELECT count(*) FROM leaves")).scalar_one()))
    heads = db.run_sync(
        lambda c: [int(n) for n in c.execute(text("SELECT tree_size FROM tree_heads ORDER BY 1")).scalars()]
    )
    return leaves, heads


class FailingSigner(domain.Signer):
    """Signs normally, except while `failing`: then the process 'crashes' between writing a
    batch's leaves and signing its head."""

    failing = False

    def head(self, size: int, root: bytes) -> domain.TreeHead:
        if self.failing:
            raise RuntimeError("crashed before the head was signed")
        return super().head(size, root)


def test_a_batch_that_fails_answers_every_caller_and_stores_nothing(db: Database) -> None:
    signer = FailingSigner(Ed25519PrivateKey.generate(), "test/log")

    async def run() -> None:
        sequencer = Sequencer(db, signer)
        try:
            assert await sequencer.append(event("first"), "gateway") == 0
            signer.failing = True
            outcomes = await asyncio.gather(
                *(sequencer.append(event(f"lost{i}"), "gateway") for i in range(8)), return_exceptions=True
            )
            # Nobody was told "written": every caller of the failed batches got an error.
            assert all(isinstance(o, Internal) for o in outcomes), outcomes
            signer.failing = False
            # The log goes on from where the acknowledged events end.
            assert await sequencer.append(event("after"), "gateway") == 1
        finally:
            await sequencer.close()

    asyncio.run(run())
    assert stored(db) == (2, [1, 2])


def test_the_database_down_is_unavailable_to_each_caller(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = domain.Signer(Ed25519PrivateKey.generate(), "test/log")

    def down(*_args: object, **_kwargs: object) -> list[int]:
        raise Unavailable("the database is unavailable")

    async def down_async(*_args: object, **_kwargs: object) -> list[int]:
        raise Unavailable("the database is unavailable")

    async def run() -> list[object]:
        sequencer = Sequencer(db, signer)
        try:
            monkeypatch.setattr(domain, "append_batch", down)  # SQLite's way
            monkeypatch.setattr(Statements, "one", down_async)  # PostgreSQL's (fast_append)
            return await asyncio.gather(
                *(sequencer.append(event(f"e{i}"), "gateway") for i in range(4)), return_exceptions=True
            )
        finally:
            await sequencer.close()

    outcomes = asyncio.run(run())
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert stored(db) == (0, [])


def test_closing_writes_what_is_waiting_and_refuses_more(db: Database) -> None:
    signer = domain.Signer(Ed25519PrivateKey.generate(), "test/log")

    async def run() -> list[int]:
        sequencer = Sequencer(db, signer, max_batch=4)
        appends = [asyncio.ensure_future(sequencer.append(event(f"e{i}"), "gateway")) for i in range(10)]
        await asyncio.sleep(0)  # every append has joined the queue
        await sequencer.close()
        with pytest.raises(Unavailable):
            await sequencer.append(event("late"), "gateway")
        return list(await asyncio.gather(*appends))

    indexes = asyncio.run(run())
    assert sorted(indexes) == list(range(10))
    leaves, heads = stored(db)
    # At most 4 events a batch: at least 3 heads, the last over all 10.
    assert leaves == 10 and len(heads) >= 3 and heads[-1] == 10


def test_other_writers_and_a_second_replica_interleave_with_the_batches(db: Database) -> None:
    """On PostgreSQL the sequencer keeps the tree's size in memory between batches
    (`fast_append`): another writer (a `contactpoint audit` command, a second audit replica)
    moving the size on must make it plan again, never write over or beside it."""
    key = Ed25519PrivateKey.generate()
    signer = domain.Signer(key, "test/log")

    async def run() -> list[int]:
        first, second = Sequencer(db, signer), Sequencer(db, signer)
        try:
            indexes = [await first.append(event("a"), "gateway")]
            # A writer of the general way, between two batches of the first sequencer.
            indexes += db.run_sync(lambda c: domain.append_batch(c, [(event("cli"), "cli")], signer=signer))
            indexes.append(await first.append(event("b"), "gateway"))
            # Two replicas at once.
            indexes += await asyncio.gather(
                *(s.append(event(f"r{i}"), "gateway") for i in range(32) for s in (first, second))
            )
            return indexes
        finally:
            await first.close()
            await second.close()

    indexes = asyncio.run(run())
    assert sorted(indexes) == list(range(67))
    leaves, heads = stored(db)
    assert leaves == 67 and heads[-1] == 67
    state = db.run_sync(lambda c: c.execute(text("SELECT size FROM tree_state")).scalar_one())
    assert state == 67
    # Every head signed over exactly the leaves before it.
    report = verify_log(db.url, key.public_key().public_bytes_raw(), origin="test/log")
    assert report.ok and report.heads_checked == len(heads), report


def test_a_batch_that_keeps_losing_the_race_waits_its_turn(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by probing: with two audit replicas on PostgreSQL, a batch whose planned size another
    replica kept moving on failed UNAVAILABLE. It is now written the locking way."""
    key = Ed25519PrivateKey.generate()
    signer = domain.Signer(key, "test/log")

    async def always_beaten(*_args: object, **_kwargs: object) -> list[int]:
        raise TransactionConflict("other writers kept appending to the log; retry")

    monkeypatch.setattr(FastAppender, "append", always_beaten)

    async def run() -> list[int]:
        sequencer = Sequencer(db, signer)
        try:
            return list(
                await asyncio.gather(*(sequencer.append(event(f"e{i}"), "gateway") for i in range(8)))
            )
        finally:
            await sequencer.close()

    assert sorted(asyncio.run(run())) == list(range(8))
    leaves, heads = stored(db)
    assert leaves == 8 and heads[-1] == 8
    report = verify_log(db.url, key.public_key().public_bytes_raw(), origin="test/log")
    assert report.ok, report
