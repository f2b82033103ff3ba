"""The witness (C2SP tlog-witness) on SQLite and PostgreSQL: it cosigns a checkpoint only when
the log's pinned key signed it and it is consistent with the one it last cosigned; it keeps the
newest; and it follows a rotation of the log's key only on proof that the rotation is logged."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform import merkle, migrate
from contactpoint.platform.checkpoints import (
    ROTATION_ACTION,
    ROTATION_ACTOR,
    ROTATION_APPENDED_BY,
    Checkpoint,
    Cosignature,
    KeyRotation,
    checkpoint_body,
    cosigned_message,
    endorsement_message,
    parse_rotation,
    witness_key_id,
)
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.witness import domain
from services.witness.main import MIGRATIONS

ORIGIN = "contactpoint.audit.v1"
NAME = "test.witness"


class Log:
    """A log in memory: its leaves, signed with its current key."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.leaves: list[bytes] = []

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes_raw()

    def add(self, *data: bytes) -> None:
        self.leaves.extend(merkle.leaf_hash(d) for d in data)

    def body(self, size: int | None = None) -> str:
        n = len(self.leaves) if size is None else size
        return checkpoint_body(ORIGIN, n, merkle.root(self.leaves[:n]))

    def request(self, old: int, size: int | None = None, **extra: object) -> domain.NewCheckpoint:
        n = len(self.leaves) if size is None else size
        proof = merkle.consistency_proof(old, self.leaves[:n]) if 0 < old < n else []
        body = self.body(n)
        return domain.NewCheckpoint(old, proof, body, self.key.sign(body.encode()), **extra)  # type: ignore[arg-type]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate.upgrade("witness", MIGRATIONS, database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def witness_for(log: Log) -> domain.Witness:
    return domain.Witness(Ed25519PrivateKey.generate(), NAME, ORIGIN, log.public)


def add(
    db: Database, witness: domain.Witness, request: domain.NewCheckpoint, now: int = 1_000
) -> Cosignature:
    return db.run_sync(lambda c: domain.add_checkpoint(c, request, witness=witness, now=now))


def newest_size(db: Database, witness: domain.Witness) -> int:
    last, _ = db.run_sync(lambda c: domain.newest(c, witness=witness, origin=ORIGIN))
    return last.tree_size


def test_cosigns_consistent_checkpoints_and_keeps_the_newest(db: Database) -> None:
    log = Log()
    witness = witness_for(log)
    with pytest.raises(NotFound):
        db.run_sync(lambda c: domain.newest(c, witness=witness, origin=ORIGIN))
    log.add(b"a", b"b", b"c")
    first = add(db, witness, log.request(0))
    public = witness.key.public_key().public_bytes_raw()
    # C2SP tlog-cosignature: Ed25519 over "cosignature/v1\ntime T\n" + body, key id of type 0x04.
    witness.key.public_key().verify(first.signature, cosigned_message(log.body(), first.timestamp))
    assert first.key_id == witness_key_id(NAME, public) and first.valid_for(log.body(), NAME, public)
    assert not first.valid_for(log.body(3 - 1), NAME, public)
    log.add(*(bytes([i]) for i in range(20)))
    second = add(db, witness, log.request(3), now=2_000)
    assert second.timestamp == 2_000 and newest_size(db, witness) == 23
    last, stored = db.run_sync(lambda c: domain.newest(c, witness=witness, origin=ORIGIN))
    assert last.checkpoint == log.body() and stored == second
    assert Checkpoint.parse(last.checkpoint).root == merkle.root(log.leaves)
    # The same checkpoint again is cosigned afresh; nothing moves.
    add(db, witness, log.request(23))
    assert newest_size(db, witness) == 23


def test_any_checkpoint_follows_an_empty_one(db: Database) -> None:
    """Every tree is consistent with the empty tree: a size-0 checkpoint (anyone may fetch one
    signed from an empty log) must not stop the witness from following the log as it grows."""
    log = Log()
    witness = witness_for(log)
    add(db, witness, log.request(0))  # size 0
    log.add(b"a", b"b", b"c")
    add(db, witness, log.request(0))
    assert newest_size(db, witness) == 3


def test_a_stale_old_size_is_told_the_witness_size(db: Database) -> None:
    log = Log()
    witness = witness_for(log)
    log.add(b"a", b"b")
    add(db, witness, log.request(0))
    log.add(b"c")
    with pytest.raises(FailedPrecondition) as refused:
        add(db, witness, log.request(0))
    assert refused.value.reason == "SIZE_MISMATCH" and refused.value.metadata == {"size": "2"}
    with pytest.raises(FailedPrecondition) as refused:
        add(db, witness, log.request(1))
    assert refused.value.metadata == {"size": "2"}


def test_a_cut_or_forked_log_is_never_cosigned(db: Database) -> None:
    log = Log()
    witness = witness_for(log)
    log.add(*(bytes([i]) for i in range(10)))
    add(db, witness, log.request(0))
    # A fork: the same key signs a log whose entry 4 was rewritten, grown to 12.
    fork = Log()
    fork.key = log.key
    fork.add(*(b"forged" if i == 4 else bytes([i]) for i in range(12)))
    with pytest.raises(FailedPrecondition) as refused:
        add(db, witness, fork.request(10))
    assert refused.value.reason == "INCONSISTENT"
    # The same size with another root is a fork too.
    with pytest.raises(FailedPrecondition) as refused:
        add(db, witness, fork.request(10, size=10))
    assert refused.value.reason == "INCONSISTENT"
    # A log cut to 6 cannot go below what was cosigned.
    with pytest.raises(InvalidArgument):
        add(db, witness, log.request(10, size=6))
    assert newest_size(db, witness) == 10


def test_only_the_logs_key_and_origin_are_cosigned(db: Database) -> None:
    log = Log()
    witness = witness_for(log)
    log.add(b"a")
    impostor = Log()
    impostor.add(b"a")
    with pytest.raises(PermissionDenied) as refused:
        add(db, witness, impostor.request(0))
    assert refused.value.reason == "BAD_LOG_SIGNATURE"
    other = checkpoint_body("someone.else", 1, merkle.root(log.leaves))
    with pytest.raises(NotFound):
        add(db, witness, domain.NewCheckpoint(0, [], other, log.key.sign(other.encode())))
    with pytest.raises(InvalidArgument):
        add(db, witness, domain.NewCheckpoint(0, [], log.body() + "extra\n", log.key.sign(b"x")))
    unpinned = domain.Witness(witness.key, NAME, ORIGIN, None)
    with pytest.raises(FailedPrecondition) as refused:
        add(db, unpinned, log.request(0))
    assert refused.value.reason == "NO_LOG_KEY"


def _rotation_entry(log: Log, new: Ed25519PrivateKey, *, endorser: Ed25519PrivateKey | None = None) -> bytes:
    """The entry rotating `log` from its key to `new`, after its leaves so far, endorsed by `new`
    (or, forged, by `endorser`)."""
    size, root = len(log.leaves), merkle.root(log.leaves)
    rotation = KeyRotation.endorsed(ORIGIN, log.public, new, size, root)
    if endorser is not None:
        message = endorsement_message(ORIGIN, log.public, rotation.new_key, size, root)
        rotation = dataclasses.replace(rotation, endorsement=endorser.sign(message))
    event = {
        "action": ROTATION_ACTION,
        "actor": ROTATION_ACTOR,
        "appendedBy": ROTATION_APPENDED_BY,
        "detail": rotation.detail(),
    }
    return json.dumps(event).encode()


def test_a_key_rotation_is_followed_only_when_it_is_logged(db: Database) -> None:
    log = Log()
    witness = witness_for(log)
    log.add(b"a", b"b")
    add(db, witness, log.request(0))
    old_key, new_key = log.key, Ed25519PrivateKey.generate()
    entry = _rotation_entry(log, new_key)
    # The same rotation, endorsed by someone other than the new key's holder: never followed.
    unendorsed = _rotation_entry(log, new_key, endorser=Ed25519PrivateKey.generate())
    log.leaves.append(merkle.leaf_hash(entry))  # index 2, signed by the old key
    add(db, witness, log.request(2))
    log.key = new_key
    log.add(b"c")
    # Signed by the new key with no rotation offered: refused.
    with pytest.raises(PermissionDenied):
        add(db, witness, log.request(3))
    # A rotation that is not in what the witness cosigned: refused.
    stray = unendorsed
    with pytest.raises(FailedPrecondition) as refused:
        add(
            db,
            witness,
            log.request(3, rotation=domain.Rotation(1, stray, merkle.inclusion_proof(1, log.leaves[:3]))),
        )
    assert refused.value.reason == "ROTATION_NOT_LOGGED"
    # An entry that says the same but was appended by an account (AppendEvent stamps its name)
    # is no rotation: refused.
    forged = json.loads(entry)
    forged["appendedBy"] = "gateway"
    assert parse_rotation(json.dumps(forged).encode()) is None and parse_rotation(entry) is not None
    # An entry of the log that is not a rotation: refused.
    with pytest.raises(FailedPrecondition) as refused:
        add(
            db,
            witness,
            log.request(3, rotation=domain.Rotation(0, b"a", merkle.inclusion_proof(0, log.leaves[:3]))),
        )
    assert refused.value.reason == "NOT_A_ROTATION"
    proof = merkle.inclusion_proof(2, log.leaves[:3])
    add(db, witness, log.request(3, rotation=domain.Rotation(2, entry, proof)))
    assert newest_size(db, witness) == 4
    # From now on the old key is refused, even for a consistent checkpoint.
    log.key = old_key
    log.add(b"d")
    with pytest.raises(PermissionDenied):
        add(db, witness, log.request(4))
    # Pinned to a key the log never signed with, the witness says so at start.
    assert db.run_sync(lambda c: domain.key_problem(c, witness=witness)) is None
    swapped = domain.Witness(
        witness.key, NAME, ORIGIN, Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    )
    assert "not a key the audit log has signed with so far" in str(
        db.run_sync(lambda c: domain.key_problem(c, witness=swapped))
    )


def test_a_rotation_its_new_key_did_not_endorse_is_never_followed(db: Database) -> None:
    """Whoever can write to the log's database can put a rotation entry in it and have the log's
    key sign a head over it; without the new key's endorsement of the tree it takes over, the
    witness does not follow it."""
    log = Log()
    witness = witness_for(log)
    log.add(b"a", b"b")
    add(db, witness, log.request(0))
    insiders = Ed25519PrivateKey.generate()
    entry = _rotation_entry(log, insiders, endorser=Ed25519PrivateKey.generate())
    log.leaves.append(merkle.leaf_hash(entry))
    add(db, witness, log.request(2))  # the log's own key signed the head over it
    log.key = insiders
    log.add(b"c")
    with pytest.raises(FailedPrecondition) as refused:
        add(
            db,
            witness,
            log.request(3, rotation=domain.Rotation(2, entry, merkle.inclusion_proof(2, log.leaves[:3]))),
        )
    assert refused.value.reason == "NOT_A_ROTATION"
    assert newest_size(db, witness) == 3
