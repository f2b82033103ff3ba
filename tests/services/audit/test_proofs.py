"""Proofs from the stored nodes (SQLite and PostgreSQL) are exactly the proofs computed from every
leaf hash (the reference checked against RFC 6962's vectors in test_merkle), for every pair of
sizes of a log written in uneven batches; they verify against the signed roots; a log written
before the node table has its nodes filled by the migration; and a proof needs O(log n) nodes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform import merkle, migrate
from contactpoint.platform.db import Database
from services.audit import domain, proofs
from services.audit.main import MIGRATIONS

SIZE = 37


def write_in_batches(db: Database, size: int, seed: int = 7) -> None:
    signer = domain.Signer(Ed25519PrivateKey.generate(), "test/log")
    rng, written = random.Random(seed), 0
    while written < size:
        n = min(size - written, rng.choice([1, 1, 2, 3, 5, 8]))
        events = [
            pb.AuditEvent(actor=f"a{written + i}", action="GetChild", outcome="ALLOWED", severity="INFO")
            for i in range(n)
        ]
        batch = [(e, "gateway") for e in events]
        db.run_sync(lambda c, b=batch: domain.append_batch(c, b, signer=signer))
        written += n


def leaf_hashes(db: Database) -> list[bytes]:
    query = text("SELECT leaf_hash FROM leaves ORDER BY leaf_index")
    return db.run_sync(lambda c: [bytes(h) for h in c.execute(query).scalars()])


def assert_proofs_match(db: Database, leaves: list[bytes]) -> None:
    def check(conn: Connection) -> None:
        for n in range(1, len(leaves) + 1):
            root = merkle.root(leaves[:n])
            for m in range(n):
                proof = proofs.inclusion_proof(conn, m, n)
                assert proof == merkle.inclusion_proof(m, leaves[:n]), (m, n)
                assert merkle.verify_inclusion(m, n, leaves[m], proof, root)
            for m in range(1, n + 1):
                proof = proofs.consistency_proof(conn, m, n)
                assert proof == merkle.consistency_proof(m, leaves[:n]), (m, n)
                assert merkle.verify_consistency(m, n, merkle.root(leaves[:m]), root, proof)

    db.run_sync(check, write=False)


def test_stored_node_proofs_are_the_reference_proofs(db: Database) -> None:
    write_in_batches(db, SIZE)
    leaves = leaf_hashes(db)
    assert len(leaves) == SIZE
    # n - 1 interior nodes... minus the right edge's unfinished ones: one per merge of two peaks.
    stored = db.run_sync(lambda c: int(c.execute(text("SELECT count(*) FROM tree_nodes")).scalar_one()))
    assert stored == SIZE - bin(SIZE).count("1")
    assert_proofs_match(db, leaves)


def test_the_migration_fills_the_nodes_of_a_log_written_before_them(database_url: str, db: Database) -> None:
    write_in_batches(db, 21)
    leaves = leaf_hashes(db)
    migrate.downgrade("audit", MIGRATIONS, database_url, "0001")  # as before the node table
    migrate.upgrade("audit", MIGRATIONS, database_url)
    assert_proofs_match(db, leaves)


@pytest.mark.parametrize("size", [10_000, 10_000_000, 2**40 + 12345])
def test_a_proof_needs_a_logarithmic_number_of_nodes(size: int) -> None:
    rng, most = random.Random(size), 0
    for _ in range(200):
        needed: set[tuple[int, int]] = set()

        def note(level: int, index: int, needed: set[tuple[int, int]] = needed) -> bytes:
            needed.add((level, index))
            return bytes(32)

        m = rng.randrange(size)

        def mth(lo: int, hi: int, note: Callable[[int, int], bytes] = note) -> bytes:
            return merkle.subtree_from_nodes(lo, hi, note)

        merkle.inclusion_path(m, size, mth)
        merkle.consistency_path(m + 1, size, mth)
        most = max(most, len(needed))
    # Both proofs together: at most a few per level of the tree (about 41 levels at 2**40).
    assert most <= 4 * math.ceil(math.log2(size)), most
