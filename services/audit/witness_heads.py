"""What the audit service sends its witness: the signed head of the tree as stored, and the
AddCheckpoint request for it (C2SP tlog-witness), read from the log's database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, RowMapping

from contactpoint.platform import merkle
from contactpoint.platform.checkpoints import Checkpoint
from contactpoint.witness.v1 import witness_service_pb2 as witness_pb
from services.audit import keychain, proofs, repository, state_repository
from services.audit.witness_check import judge


@dataclass(frozen=True)
class Head:
    """A stored signed tree head."""

    size: int
    checkpoint: str
    signature: bytes

    @classmethod
    def of(cls, row: RowMapping) -> Head:
        return cls(int(row["tree_size"]), str(row["checkpoint"]), bytes(row["signature"]))


@dataclass(frozen=True)
class Tip:
    """The log's tree as stored: its size, the signed head of exactly that size when its root is
    the tree's (else None), and why it contradicts the witness's checkpoint, if it does."""

    size: int
    head: Head | None
    contradiction: str | None
    proof: list[bytes]  # the consistency proof from the witnessed size to `size`, when consistent


def tree_tip(conn: Connection, witnessed: Checkpoint) -> Tip:
    """The tree as stored now, judged against `witnessed` (one read of the state, one of the head,
    one proof, which the AddCheckpoint request then carries)."""
    # The tree state is what appends extend; a head row is only what was signed of it (found by
    # probing: a junk head of 2**40 entries made every push fail with a warning, and appends went
    # on past a cut). The newest head of any other size is not looked at.
    span = state_repository.state_and_span(conn)
    row = repository.tree_head_at(conn, size=span.size) if span.size else None
    head = Head.of(row) if row is not None else None
    if head is not None and _root(head) != merkle.root_from_peaks(span.peaks):
        head = None
    verdict = judge(conn, witnessed, span)
    return Tip(span.size, head, verdict.why, verdict.proof)


def _root(head: Head) -> bytes | None:
    try:
        return Checkpoint.parse(head.checkpoint).root
    except ValueError:
        return None


def rotation_indexes(conn: Connection) -> list[int]:
    return [index for index, _ in keychain.rotations(conn)]


def request_for(
    conn: Connection, *, old: int, head: Head, rotations: list[int], proof: list[bytes] | None = None
) -> witness_pb.AddCheckpointRequest:
    """The AddCheckpoint request for `head` from the witness's `old` size (with `proof`, the
    consistency proof from `old` to it, when already read), with the proof of the newest rotation
    inside `old` when `rotations` are to be offered."""
    if proof is None:
        proof = proofs.consistency_proof(conn, old, head.size) if 0 < old < head.size else []
    request = witness_pb.AddCheckpointRequest(
        old_size=old, consistency_proof=proof, checkpoint=head.checkpoint, log_signature=head.signature
    )
    inside = [index for index in rotations if index < old]
    if inside:
        index = inside[-1]
        read = proofs.inclusion(conn, index, old)
        assert read.leaf_data is not None and read.proof is not None  # an index below the size is stored
        request.key_rotation.CopyFrom(
            witness_pb.KeyRotation(leaf_index=index, leaf_data=read.leaf_data, inclusion_proof=read.proof)
        )
    return request
